"""``qfix bench engine``: the fast engine on the ENGINE.md §10 workloads (BENCHMARKS.md).

Each workload is a saved stream file (generated once, closed-loop through the fast
engine, then only replayed); the timed call is the real ``Engine.process`` writing every
report and market-data record into a drained output buffer, in batches of ``--batch``.
Every timed run is checked against an untimed run of the same file with other batch and
buffer sizes: their final state hashes must be equal. The reference engine replays a
slice of the same mix stream in the same run for the speed-up figure.

Unless ``--no-liquibook``, liquibook's C++ order book replays the same streams in the same
run (``qfix.bench._liquibook``): one run after each timed fast-engine run, giving
``liquibook.<workload>.ops_per_s``, the ratio ``<workload>.over_liquibook`` and both
sides' trade counts and traded quantity. Without a C++ compiler or liquibook's headers
the baseline is skipped and the report says why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import click
import numpy as np

from qfix.bench import _common, _liquibook
from qfix.engine import Engine, EngineConfig, InstrumentConfig
from qfix.engine.buffers import output_buffer
from qfix.engine.contract import OUTPUT_FULL
from qfix.errors import BenchmarkError

TARGETS = {"mix": 8e6, "insert": 9e6, "multi": 3e6}
#: beyond the target: mix's stretch goal
STRETCH = {"mix": 15e6}
_OUT_RECORDS = 1 << 16


def _instruments(name: str) -> tuple[InstrumentConfig, ...]:
    from qfix.testing import generators as gen

    count = 10_000 if name == "multi" else 1
    return tuple(gen._wl_instrument(s) for s in range(1, count + 1))


def _stream(name: str, quick: bool, directory: Path) -> tuple[np.ndarray, int, Path, str]:
    """(records, prefill, file, digest) of the saved workload, generating it once."""
    from qfix.testing import generators as gen

    path = _stream_path(name, quick, directory)
    meta = path.with_suffix(".json")
    if not path.exists() or not meta.exists():
        directory.mkdir(parents=True, exist_ok=True)
        driver = Engine(_instruments(name), EngineConfig())
        wl = gen.workload(name, quick=quick, engine=driver)
        gen.save_stream(path, wl.records)
        meta.write_text(json.dumps({"prefill": wl.prefill, "count": len(wl.records)}) + "\n", encoding="utf-8")
    prefill = int(json.loads(meta.read_text(encoding="utf-8"))["prefill"])
    return gen.load_stream(path), prefill, path, gen.stream_digest(path)


def _stream_path(name: str, quick: bool, directory: Path) -> Path:
    return directory / f"{name}{'-quick' if quick else ''}-seed1.qfs"


def _check_streams(workloads: list[str], quick: bool, directory: Path) -> None:
    """Fail before any measuring if a stream still to be generated could not be saved."""
    for name in dict.fromkeys([*workloads, "mix"]):
        path = _stream_path(name, quick, directory)
        if not path.exists() or not path.with_suffix(".json").exists():
            _common.check_output_path(path, "--streams")


def _drain(engine: Any, records: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Process ``records`` fully, draining ``out`` on OUTPUT_FULL.

    ENGINE.md §2.4's bound grows with the instrument's live orders, so a deep book needs
    a big buffer; the (possibly grown) buffer is returned for the caller to keep.
    """
    i = 0
    while i < len(records):
        # bounded slices: each call re-checks the headers of what it is given
        res = engine.process(records[i : i + 4096], out)
        i += res.consumed
        if res.status == OUTPUT_FULL and res.consumed == 0 and res.written == 0:
            out = output_buffer(max(2 * len(out), res.needed))
    return out


def _replay(
    records: np.ndarray,
    prefill: int,
    insts: tuple[InstrumentConfig, ...],
    batch: int,
    *,
    event_hash: bool = False,
    out_records: int = _OUT_RECORDS,
    lat: list[float] | None = None,
) -> tuple[float, bytes]:
    """Seconds in ``process`` for the timed part (after the untimed prefill), final state hash."""
    eng = Engine(insts, EngineConfig(event_hash=event_hash))
    out = output_buffer(out_records)
    out = _drain(eng, records[:prefill], out)
    body = records[prefill:]
    total = 0
    clock = time.perf_counter_ns
    for i in range(0, len(body), batch):
        chunk = body[i : i + batch]
        start = clock()
        out = _drain(eng, chunk, out)
        took = clock() - start
        total += took
        if lat is not None:
            lat.append(took / 1e3)
    return total / 1e9, eng.state_hash()


#: a fresh interpreter's start up to the first ``process`` return; prints its seconds
WARMUP_CODE: Final = (
    "import time; t0 = time.perf_counter()\n"
    "import numpy as np\n"
    "from qfix.engine import Engine, InstrumentConfig, EngineConfig\n"
    "from qfix.wire.schema import INBOUND, OUTPUT\n"
    "cfg = EngineConfig()  # default capacity: allocation is part of a real start\n"
    "e = Engine([InstrumentConfig(1, 'W', 1, ref=1000, band_width=10)], cfg)\n"
    "e.process(np.zeros(0, INBOUND), np.zeros(16, OUTPUT))\n"
    "print(time.perf_counter() - t0)\n"
)


def _warmup(cache_dir: str) -> float:
    """Seconds from a fresh interpreter to the first ``process`` return."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run([sys.executable, "-c", WARMUP_CODE], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _repeats(quick: bool) -> tuple[int, int]:
    """(timed runs, timed runs with the event hash on) per workload."""
    return (3, 1) if quick else (5, 3)


def steps(workloads: list[str], quick: bool, liquibook: bool = True) -> int:
    """Progress steps of :func:`run`: per workload its stream, the proof run and every
    timed run (with liquibook: the command file, a warm-up driver run and a driver run per
    timed run, plus building the driver once); then the mix stream if not measured, two
    latency runs, the reference engine and two warm-up measurements."""
    repeats, hashed = _repeats(quick)
    per = 2 + repeats + hashed + ((2 + repeats) if liquibook else 0)
    return len(workloads) * per + ("mix" not in workloads) + 5 + int(liquibook)


def _target_note(name: str) -> str:
    note = f"target {TARGETS[name]:.0f}"
    return f"{note}, stretch {STRETCH[name]:.0f}" if name in STRETCH else note


class _Baseline:
    """The liquibook side of one run: the built driver, or why there is none."""

    def __init__(self, enabled: bool, streams: Path, progress: _common.Progress) -> None:
        self.driver: _liquibook.Driver | None = None
        self.skipped: str | None = None if enabled else "--no-liquibook"
        self.workloads: dict[str, dict[str, Any]] = {}
        if enabled:
            progress.step("liquibook: build the C++ driver (cached)")
            try:
                self.driver = _liquibook.build(streams / "liquibook")
            except _liquibook.Unavailable as exc:
                self.skipped = str(exc)

    def prepare(
        self,
        name: str,
        data: tuple[np.ndarray, int, Path, str],
        insts: tuple[InstrumentConfig, ...],
        progress: _common.Progress,
    ) -> tuple[Path, dict[str, Any]] | None:
        """The workload's command file and note, after one untimed warm-up driver run."""
        if self.driver is None:
            return None
        records, prefill, path, digest = data
        progress.step(f"{name}: liquibook command file (made once per stream)")
        try:
            commands, note = _liquibook.commands(path, digest, records, prefill, insts)
        except _liquibook.Unavailable as exc:
            self.workloads[name] = {"skipped": str(exc)}
            return None
        except OSError as exc:
            self.workloads[name] = {"skipped": f"cannot write its command file: {exc}"}
            return None
        progress.step(f"{name}: liquibook warm-up run")
        _liquibook.run(self.driver, commands)
        return commands, note

    def measure(self, name: str, commands: Path, messages: int) -> tuple[float, dict[str, Any]]:
        assert self.driver is not None
        done = _liquibook.run(self.driver, commands)
        if done["messages"] != messages:
            raise BenchmarkError(f"{name}: liquibook replayed {done['messages']} messages, expected {messages}")
        return done["messages"] / max(done["seconds"], 1e-9), done

    def report(
        self,
        report: _common.Report,
        name: str,
        ops: _common.Result,
        rates: list[float],
        note: dict[str, Any],
        runs: list[dict[str, Any]],
    ) -> _common.Result:
        """Add the liquibook rate, the ratio and both sides' trade counts; the rate's Result."""
        if any((r["trades"], r["volume"]) != (runs[0]["trades"], runs[0]["volume"]) for r in runs):
            raise BenchmarkError(f"{name}: liquibook's trades differ between runs of the same file")
        lq = report.add(
            _common.from_samples(f"liquibook.{name}.ops_per_s", rates, "ops/s", "liquibook OrderBook, same stream")
        )
        report.add(_common.ratio(f"{name}.over_liquibook", ops, lq, "fast engine / liquibook medians; target >= 1"))
        trades, volume = note["engine_trades"], note["engine_volume"]
        lq_trades, lq_volume = runs[0]["trades"], runs[0]["volume"]
        report.add(_common.single(f"{name}.trades", trades, "trades", "fast engine, measured part"))
        report.add(_common.single(f"liquibook.{name}.trades", lq_trades, "trades", _diff(lq_trades, trades)))
        report.add(_common.single(f"{name}.traded_qty", volume, "lots", "fast engine, measured part"))
        report.add(_common.single(f"liquibook.{name}.traded_qty", lq_volume, "lots", _diff(lq_volume, volume)))
        self.workloads[name] = {
            "commands": note["kinds"],
            "engine_trades": trades,
            "engine_traded_qty": volume,
            "engine_rejected": note["engine_rejected"],
            "engine_self_match_cancels": note["engine_self_match_cancels"],
            "liquibook_trades": lq_trades,
            "liquibook_traded_qty": lq_volume,
            "liquibook_live_orders_at_end": runs[0]["live_orders"],
            "liquibook_missing_cancels": runs[0]["missing_cancels"],
            "liquibook_missing_replaces": runs[0]["missing_replaces"],
            "liquibook_cancel_rejects": runs[0]["cancel_rejects"],
            "liquibook_replace_rejects": runs[0]["replace_rejects"],
        }
        return lq

    def extra(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.skipped is not None:
            doc["skipped"] = self.skipped
        if self.driver is not None:
            doc.update(self.driver.describe())
        if self.workloads:
            doc["workloads"] = self.workloads
        return doc


def _diff(value: int, reference: int) -> str:
    if reference == 0:
        return "fast engine: 0"
    return f"{(value - reference) / reference:+.3%} against the fast engine"


def run(
    workloads: list[str],
    quick: bool,
    batch: int,
    streams: Path,
    progress: _common.Progress | None = None,
    liquibook: bool = True,
) -> _common.Report:
    """Measure; ``progress`` is advanced between timed runs (``steps(...)`` steps)."""
    progress = progress if progress is not None else _common.Progress(steps(workloads, quick, liquibook), quiet=True)
    report = _common.Report("engine", quick)
    baseline = _Baseline(liquibook, streams, progress)
    repeats, hashed_repeats = _repeats(quick)
    files: dict[str, dict[str, str]] = {}
    plot: dict[str, Any] = {"ops": {}, "lq": {}, "lat": []}
    mix_data: tuple[np.ndarray, int] | None = None
    for name in workloads:
        progress.step(f"{name}: stream (generated once, then loaded)")
        data = _stream(name, quick, streams)
        records, prefill, path, digest = data
        files[name] = {"file": str(path), "blake2b": digest}
        insts = _instruments(name)
        lq = baseline.prepare(name, data, insts, progress)
        if name == "mix":
            mix_data = (records, prefill)
        progress.step(f"{name}: untimed proof run")
        _, expected = _replay(records, prefill, insts, 257, out_records=64)  # untimed proof run
        messages = len(records) - prefill
        rates = []
        lq_rates: list[float] = []
        lq_runs: list[dict[str, Any]] = []
        for i in range(repeats):
            progress.step(f"{name}: timed run {i + 1}/{repeats}")
            seconds, state = _replay(records, prefill, insts, batch)
            if state != expected:
                raise BenchmarkError(f"{name}: state hash differs from the untimed run")
            rates.append(messages / seconds)
            if lq is not None:
                progress.step(f"{name}: liquibook run {i + 1}/{repeats}")
                rate, done = baseline.measure(name, lq[0], messages)
                lq_rates.append(rate)
                lq_runs.append(done)
        ops = report.add(_common.from_samples(f"{name}.ops_per_s", rates, "ops/s", _target_note(name)))
        report.add(_common.from_samples(f"{name}.ns_per_op", [1e9 / r for r in rates], "ns"))
        if lq is not None:
            plot["lq"][name] = baseline.report(report, name, ops, lq_rates, lq[1], lq_runs).value
        hashed = []
        for i in range(hashed_repeats):
            progress.step(f"{name}: timed run with the event hash {i + 1}/{hashed_repeats}")
            seconds, state = _replay(records, prefill, insts, batch, event_hash=True)
            if state != expected:
                raise BenchmarkError(f"{name}: state hash differs with event_hash on")
            hashed.append(messages / seconds)
        report.add(_common.from_samples(f"{name}.ops_per_s_hashed", hashed, "ops/s"))
        plot["ops"][name] = ops.value
    if mix_data is None:
        progress.step("mix: stream (generated once, then loaded)")
        mix_data = _stream("mix", quick, streams)[:2]
    records, prefill = mix_data
    insts = _instruments("mix")
    # per-batch latency of 1024-message mix batches, and one message per call
    lat: list[float] = []
    progress.step("mix: latency of 1024-message batches")
    _replay(records, prefill, insts, 1024, lat=lat)
    report.add(_common.single("batch.p50_us", float(np.percentile(lat, 50)), "us"))
    report.add(_common.single("batch.p99_us", float(np.percentile(lat, 99)), "us", "1024-message mix batches"))
    report.add(_common.single("batch.p999_us", float(np.percentile(lat, 99.9)), "us"))
    singles = records[: prefill + (20_000 if quick else 100_000)]
    one: list[float] = []
    progress.step("mix: latency of single messages")
    _replay(singles, prefill, insts, 1, lat=one)
    report.add(_common.single("single.p50_ns", float(np.percentile(one, 50)) * 1e3, "ns", "target <= 2000"))
    report.add(_common.single("single.p99_ns", float(np.percentile(one, 99)) * 1e3, "ns"))
    plot["lat"] = lat
    default = Engine(insts, EngineConfig())
    per_order = default.state_bytes() / default.config.max_orders
    report.add(_common.single("bytes_per_resting_order", per_order, "B", "target <= 128; order+level+maps+indices"))
    del default
    # reference engine on a slice of the same mix stream, same run
    from qfix.testing.reference import ReferenceEngine

    n_ref = 10_000 if quick else 100_000
    progress.step(f"reference engine beside the fast one, {n_ref} mix messages")
    body = records[prefill : prefill + n_ref]
    ref = ReferenceEngine(insts, EngineConfig())
    fast = Engine(insts, EngineConfig())
    out = output_buffer(_OUT_RECORDS)
    out = _drain(ref, records[:prefill], out)
    out = _drain(fast, records[:prefill], out)
    ref_s = fast_s = 0.0
    for i in range(0, len(body), batch):
        start = time.perf_counter()
        out = _drain(ref, body[i : i + batch], out)
        ref_s += time.perf_counter() - start
        start = time.perf_counter()
        out = _drain(fast, body[i : i + batch], out)
        fast_s += time.perf_counter() - start
    if ref.state_hash() != fast.state_hash():
        raise BenchmarkError("reference and fast engine disagree on the mix slice")
    report.add(_common.single("reference.ops_per_s", len(body) / ref_s, "ops/s", f"first {n_ref} mix messages"))
    report.add(_common.single("reference_speedup", (len(body) / fast_s) / (len(body) / ref_s), "ratio"))
    progress.step("warm-up from the Numba cache (2 fresh interpreters)")
    cached = [_warmup(os.environ.get("NUMBA_CACHE_DIR", str(Path.cwd() / ".numba_cache"))) for _ in range(2)]
    report.add(_common.from_samples("warmup_cached_s", cached[1:], "s", "target <= 1"))
    progress.step("warm-up from an empty cache (JIT compile)")
    with tempfile.TemporaryDirectory() as empty:
        report.add(_common.single("warmup_cold_s", _warmup(empty), "s", "JIT compile from an empty cache"))
    report.extra["workloads"] = files
    report.extra["liquibook"] = baseline.extra()
    report.extra["batch"] = batch
    report.plot_data = plot
    return report


def _plot(report: _common.Report, path: str) -> None:
    plt = _common.pyplot()
    data = report.plot_data
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = list(data["ops"])
    if data["lq"]:
        x = np.arange(len(names))
        ax1.bar(x - 0.2, [data["ops"][n] / 1e6 for n in names], 0.4, color="tab:blue", label="fast engine")
        ax1.bar(x + 0.2, [data["lq"].get(n, 0) / 1e6 for n in names], 0.4, color="tab:orange", label="liquibook")
        ax1.set_xticks(x, names)
    else:
        ax1.bar(names, [data["ops"][n] / 1e6 for n in names], color="tab:blue", label="measured")
    ax1.scatter(names, [TARGETS[n] / 1e6 for n in names], color="tab:red", marker="_", s=600, label="target")
    ax1.set_ylabel("M ops/s (median)")
    ax1.set_title("throughput per workload")
    ax1.legend()
    if data["lat"]:
        ax2.hist(data["lat"], bins=60, color="tab:green")
        ax2.set_xlabel("us per 1024-message mix batch")
        ax2.set_ylabel("batches")
        ax2.set_title("batch latency")
    fig.suptitle("qfix bench engine" + (" (quick)" if report.quick else ""))
    _common.save_figure(fig, path)


@click.command("engine")
@click.option("--workload", type=click.Choice(["mix", "insert", "multi", "all"]), default="all", show_default=True)
@click.option("--quick", is_flag=True, help="Quick stream sizes and 3 repeats.")
@click.option("--batch", default=1024, show_default=True, help="Messages per process() call.")
@click.option(
    "--streams",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-out/streams"),
    show_default=True,
    help="Where workload stream files are saved and replayed from (and the liquibook driver is built).",
)
@click.option(
    "--no-liquibook",
    "no_liquibook",
    is_flag=True,
    help="Skip the liquibook (C++) baseline replayed beside the fast engine.",
)
@_common.output_options
def command(
    workload: str,
    quick: bool,
    batch: int,
    streams: Path,
    no_liquibook: bool,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Fast-engine throughput, latency, memory and warm-up on the ENGINE.md §10 workloads,
    beside liquibook's C++ order book on the same streams."""
    _common.check_outputs(json_path, plot_path)
    names = ["mix", "insert", "multi"] if workload == "all" else [workload]
    _check_streams(names, quick, streams)
    liquibook = not no_liquibook
    with _common.Progress(steps(names, quick, liquibook), quiet=quiet) as progress:
        report = run(names, quick, batch, streams, progress, liquibook)
    _common.finish(report, json_path, plot_path, _plot)
    lq = report.extra.get("liquibook", {})
    if liquibook and "skipped" in lq:
        click.echo(f"note: the liquibook baseline was skipped: {lq['skipped']}", err=True)
    for name, doc in lq.get("workloads", {}).items():
        if "skipped" in doc:
            click.echo(f"note: the liquibook baseline was skipped for {name}: {doc['skipped']}", err=True)


__all__ = ["command", "replace"]
