"""``qfix bench wire``: encode, decode and decode+validate throughput against a baseline.

The baseline, measured in the same run on the same bytes, is what any NumPy reader must
do at least: ``np.frombuffer`` into the NewOrderSingle dtype plus copying Price,
OrderQty and SecurityID into contiguous arrays. A batch of more than 1,091 messages
(the frame maximum) is handled as the server would receive it: consecutive full frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click
import numpy as np

from qfix.bench import _common
from qfix.wire import codec, codes, schema

BATCHES = (1, 100, 1000, 10000)


def _orders(n: int, seed: int = 1) -> bytes:
    """n valid NewOrderSingles with varied fields, as consecutive 60-byte messages."""
    rng = np.random.default_rng(seed)
    records = codec.new_records(codes.TEMPLATE_NEW_ORDER_SINGLE, n)
    records["ClOrdID"] = np.arange(1, n + 1)
    records["Price"] = (1_000_000 + rng.integers(-500, 500, n)) * 10_000_000
    records["OrderQty"] = rng.integers(1, 100, n)
    records["SecurityID"] = rng.integers(1, 100, n)
    records["Account"] = codes.NULL_U32
    records["MinQty"] = codes.NULL_U32
    records["MaxFloor"] = codes.NULL_U32
    records["Side"] = np.where(rng.random(n) < 0.5, codes.SIDE_BUY, codes.SIDE_SELL)
    records["OrdType"] = codes.ORD_TYPE_LIMIT
    records["TimeInForce"] = codes.TIF_DAY
    records["SelfMatchPreventionInstruction"] = codes.SMP_DEFAULT
    records["ExpireDate"] = codes.NULL_DATE
    return records.tobytes()


def _frames(data: bytes) -> list[bytes]:
    step = codes.MAX_MSGS_PER_FRAME * codes.MESSAGE_SIZE
    return [data[i : i + step] for i in range(0, len(data), step)]


def _reports(n: int) -> np.ndarray:
    records = codec.new_records(codes.TEMPLATE_EXECUTION_REPORT, n)
    records["ExecID"] = np.arange(1, n + 1)
    return records


_FUNCTIONS = ("decode_validate", "decode", "encode", "baseline")
#: progress steps of one run: the first validate call, then each function at each batch size
STEPS = 1 + len(BATCHES) * len(_FUNCTIONS)


def run(quick: bool, progress: _common.Progress | None = None) -> _common.Report:
    """Measure; ``progress`` is advanced between timed runs (``STEPS`` steps)."""
    progress = progress if progress is not None else _common.Progress(STEPS, quiet=True)
    report = _common.Report("wire", quick)
    repeats = 3 if quick else 5
    min_seconds = 0.05 if quick else 0.2
    medians: dict[str, dict[int, float]] = {"decode_validate": {}, "decode": {}, "encode": {}, "baseline": {}}
    # First call compiles the stage-H kernel (or loads it from Numba's cache): reported, not timed below.
    progress.step("validate: first call (JIT compile or cache load)")
    started = time.perf_counter()
    codec.validate(_orders(1), 0)
    report.add(
        _common.single(
            "validate.first_call_s",
            time.perf_counter() - started,
            "s",
            "JIT compile or cache load; excluded from the rates",
        )
    )
    for batch in BATCHES:
        frames = _frames(_orders(batch))
        reports = [_reports(len(f) // codes.MESSAGE_SIZE) for f in frames]
        now = 1_767_225_600_000_000_000

        def decode_validate(frames: list[bytes] = frames, now: int = now) -> None:
            for frame in frames:
                result = codec.validate(frame, now)
                if not result.all_accepted:
                    raise AssertionError("benchmark frames must all be accepted")

        def decode(frames: list[bytes] = frames) -> None:
            for frame in frames:
                codec.decode(frame).view(codes.TEMPLATE_NEW_ORDER_SINGLE)

        def encode(reports: list[np.ndarray] = reports) -> None:
            for records in reports:
                codec.encode(records)

        def baseline(frames: list[bytes] = frames) -> None:
            for frame in frames:
                view = np.frombuffer(frame, dtype=schema.NEW_ORDER_SINGLE)
                view["Price"].copy()
                view["OrderQty"].copy()
                view["SecurityID"].copy()

        functions: dict[str, Callable[[], None]] = {
            "decode_validate": decode_validate,
            "decode": decode,
            "encode": encode,
            "baseline": baseline,
        }
        for name in _FUNCTIONS:
            fn = functions[name]
            progress.step(f"{name}, batch {batch}")
            result = report.add(
                _common.from_samples(
                    f"{name}.batch{batch}.msgs_per_s",
                    _common.rate_samples(fn, batch, repeats, warmup=2, min_seconds=min_seconds),
                    "msgs/s",
                )
            )
            medians[name][batch] = result.value
    for batch in BATCHES:
        report.add(
            _common.ratio(
                f"decode_validate_over_baseline.batch{batch}",
                _find(report, f"decode_validate.batch{batch}.msgs_per_s"),
                _find(report, f"baseline.batch{batch}.msgs_per_s"),
            )
        )
    report.extra["notes"] = (
        "batches above 1,091 messages (the frame maximum) are consecutive full frames, one validate call each"
    )
    report.plot_data = {k: {str(b): v for b, v in d.items()} for k, d in medians.items()}
    return report


def _find(report: _common.Report, name: str) -> _common.Result:
    return next(r for r in report.results if r.name == name)


def plot(report: _common.Report, path: str) -> None:
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, series in report.plot_data.items():
        xs = sorted(int(b) for b in series)
        ax.plot(xs, [series[str(x)] for x in xs], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages per batch")
    ax.set_ylabel("messages/s (median)")
    ax.set_title("qfix bench wire" + (" (quick)" if report.quick else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _common.save_figure(fig, path)


@click.command("wire")
@click.option("--quick", is_flag=True, help="Fewer repeats, finishes in well under a minute.")
@_common.output_options
def command(quick: bool, json_path: str | None, plot_path: str | None, quiet: bool) -> None:
    """Encode, decode and decode+validate messages/s for batches of 1 to 10,000."""
    _common.check_outputs(json_path, plot_path)
    with _common.Progress(STEPS, quiet=quiet) as progress:
        report = run(quick, progress)
    _common.finish(report, json_path, plot_path, plot)
