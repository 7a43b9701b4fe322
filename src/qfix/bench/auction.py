"""``qfix bench auction``: call-auction clearing over many instruments, per backend, side by side.

The book is ENGINE.md §10's auction workload in array form: ``--instruments`` instruments
with Ref_s = 1,000,000 + 10·s, ``--orders`` orders spread uniformly over them, side random,
5 % market, else a limit at Ref_s + U{-50..50}, lots U{1..100}, priority = arrival order,
drawn from PCG64(seed); the report carries the BLAKE2b of the arrays.

Measured per backend, each the median of the repeats after an untimed warm-up (the first
call after the backend loaded, reported apart as ``{backend}.first_call_ms``; cupy
compiles its kernel and mlx checks its device when they load):

- ``{backend}.determine_ms``: ENGINE.md §8 rule 3 alone, host grids in, P, V and I of
  every instrument on the host out, copies included; ``{backend}.transfer_ms`` is the
  copies within it;
- ``{backend}.batch_match_ms`` and ``{backend}.batch_match_orders_per_s``: the wall time
  of the whole :func:`~qfix.engine.auction.batch_match` call over the arrays (checks,
  grids, determination, allocation, pairing into trades); ``grid_ms`` and ``allocate_ms``
  are its host parts.

- ``{backend}.uncross_ms`` and ``{backend}.orders_per_s`` (ENGINE.md §10): the engine's own
  uncross of the same book, entered as NewOrderSingles into instruments in PreOpen (untimed,
  a fresh engine each repeat), timed as one ``set_phase(all, Continuous)`` with the
  backend as ``EngineConfig.auction_backend``: gathering the book, the determination,
  allocation, and every execution report and market-data record; ``uncross_records``
  counts those.

Every backend's prices, volumes and imbalances must equal the cpu reference's in the same
run, and every backend's engine must end in the same state, or the command fails.
"""

from __future__ import annotations

import hashlib
import time
from typing import Final

import click
import numpy as np

from qfix.bench import _common
from qfix.engine import Engine, EngineConfig, InstrumentConfig, output_buffer
from qfix.engine.auction import Orders, batch_match, build_grid
from qfix.engine.backends import NAMES, Backend, BackendUnavailable, load
from qfix.engine.config import PHASE_CONTINUOUS, PHASE_PRE_OPEN
from qfix.engine.contract import STATUS_OK
from qfix.errors import BenchmarkError
from qfix.wire import codes, schema

REF_BASE: Final = 1_000_000
REF_STEP: Final = 10
PRICE_SPREAD: Final = 50
MARKET_SHARE: Final = 0.05
MAX_LOTS: Final = 100
#: the auction issue's targets: the whole uncross at 20M orders/s on one CPU core, and the
#: determination of 1M orders over 10,000 instruments in 2 ms on an H100, copies included
CPU_TARGET_ORDERS_PER_S: Final = 20e6
DEVICE_TARGET_DETERMINE_MS: Final = 2.0
#: sessions entering the engine workload's orders (ENGINE.md §10: 1,000 accounts)
SESSIONS: Final = 1_000
#: records per ``process`` call while the book is built
BOOK_BATCH: Final = 4_096
#: the uncross's ``now``: after every order's RecvTime
T_UNCROSS: Final = 2**40
#: the order counts of the --plot sweep (quick: the first two)
SWEEP: Final = (10_000, 100_000, 1_000_000)


def workload(n_instruments: int, n_orders: int, seed: int = 1) -> tuple[Orders, Orders, np.ndarray, str]:
    """(bids, asks, ref, blake2b of the arrays) of the auction workload."""
    inst, buy, market, price, qty, ref = _draw(n_instruments, n_orders, seed)
    priority = np.arange(n_orders, dtype=np.int64)
    digest = hashlib.blake2b()
    for array in (ref, inst, buy, market, price, qty):
        digest.update(np.ascontiguousarray(array).tobytes())

    def side(mask: np.ndarray) -> Orders:
        return Orders.from_arrays(inst[mask], price[mask], qty[mask], market[mask], priority[mask])

    return side(buy), side(~buy), ref, digest.hexdigest()


def _draw(n_instruments: int, n_orders: int, seed: int) -> tuple[np.ndarray, ...]:
    """The workload's columns in arrival order: instrument index, buy, market, price
    (ticks), lots; and each instrument's Ref."""
    rng = np.random.Generator(np.random.PCG64(seed))
    security = np.arange(1, n_instruments + 1, dtype=np.int64)
    ref = REF_BASE + REF_STEP * security
    inst = rng.integers(0, n_instruments, n_orders)
    buy = rng.random(n_orders) < 0.5
    market = rng.random(n_orders) < MARKET_SHARE
    price = ref[inst] + rng.integers(-PRICE_SPREAD, PRICE_SPREAD + 1, n_orders)
    qty = rng.integers(1, MAX_LOTS + 1, n_orders)
    return inst, buy, market, price, qty, ref


def engine_book(n_instruments: int, n_orders: int, seed: int = 1) -> tuple[tuple[InstrumentConfig, ...], np.ndarray]:
    """The same workload as an engine input (ENGINE.md §10 ``auction``): the instruments
    in PreOpen (tick 1, band ±100,000, Collar 1,000) and one NewOrderSingle (Day) per
    order, from 1,000 sessions, in arrival order."""
    inst, buy, market, price, qty, ref = _draw(n_instruments, n_orders, seed)
    instruments = tuple(
        InstrumentConfig(
            security_id=k + 1, symbol=f"A{k + 1}", tick_size_p9=1, ref=int(ref[k]), band_width=100_000,
            collar=1_000, phase=PHASE_PRE_OPEN,
        )
        for k in range(n_instruments)
    )  # fmt: skip
    recs = np.zeros(n_orders, schema.INBOUND_NEW_ORDER_SINGLE)
    idx = np.arange(n_orders)
    sessions = idx % SESSIONS
    recs["blockLength"] = codes.BLOCK_LENGTH
    recs["templateId"] = codes.TEMPLATE_NEW_ORDER_SINGLE
    recs["schemaId"] = codes.SCHEMA_ORDER_ENTRY
    recs["ClOrdID"] = idx + 1
    recs["Price"] = np.where(market, codes.NULL_PRICE, price)
    recs["OrderQty"] = qty
    recs["SecurityID"] = inst + 1
    recs["Account"] = codes.NULL_U32
    recs["MinQty"] = codes.NULL_U32
    recs["MaxFloor"] = codes.NULL_U32
    recs["Side"] = np.where(buy, codes.SIDE_BUY, codes.SIDE_SELL)
    recs["OrdType"] = np.where(market, codes.ORD_TYPE_MARKET, codes.ORD_TYPE_LIMIT)
    recs["TimeInForce"] = codes.TIF_DAY
    recs["SelfMatchPreventionInstruction"] = codes.SMP_DEFAULT
    recs["ExpireDate"] = codes.NULL_DATE
    recs["SessionID"] = sessions
    recs["SessionAccount"] = sessions + 1
    recs["RecvTime"] = idx + 1
    return instruments, recs.view(schema.INBOUND).copy()


def _booked_engine(instruments: tuple[InstrumentConfig, ...], records: np.ndarray, backend: str) -> Engine:
    """A fresh engine holding the workload's book in PreOpen (untimed)."""
    config = EngineConfig(
        max_orders=max(1, records.size),
        max_levels=max(1, records.size),
        max_instruments=len(instruments),
        max_sessions=SESSIONS,
        reserve_orders=records.size,
        auction_backend=backend,
    )
    engine = Engine(instruments, config)
    out = output_buffer(4 * BOOK_BATCH)
    for at in range(0, records.size, BOOK_BATCH):
        res = engine.process(records[at : at + BOOK_BATCH], out)
        if res.status != STATUS_OK:
            raise BenchmarkError(f"building the auction book: status {res.status} at record {at + res.consumed}")
    if engine.resting_orders != records.size:
        raise BenchmarkError(f"the auction book holds {engine.resting_orders} of {records.size} orders (rejects?)")
    return engine


def _measure_uncross(
    report: _common.Report,
    backends: list[Backend],
    n_instruments: int,
    n_orders: int,
    repeats: int,
    progress: _common.Progress,
) -> None:
    """ENGINE.md §10's timed call: one ``set_phase(all, Continuous)`` on the engine's own
    book (determination on the backend, allocation, execution reports and market data),
    on a fresh book each repeat; every backend must leave the same state."""
    instruments, records = engine_book(n_instruments, n_orders)
    ids = [i.security_id for i in instruments]
    out: np.ndarray | None = None
    reference: bytes | None = None
    for backend in backends:
        name = backend.name
        progress.step(f"{name}: engine uncross x{repeats}")
        wall, written = [], 0
        for k in range(repeats + 1):  # the first is an untimed warm-up
            engine = _booked_engine(instruments, records, name)
            if out is None:
                # ENGINE.md §2.4's bound of this set_phase: 16 + 8 per order + 2 per instrument
                out = output_buffer(16 + 8 * records.size + 2 * len(instruments))
            start = time.perf_counter()
            res = engine.set_phase(T_UNCROSS, ids, PHASE_CONTINUOUS, out)
            elapsed = time.perf_counter() - start
            if res.status != STATUS_OK:
                raise BenchmarkError(f"{name}: the uncross returned status {res.status}")
            if k:
                wall.append(elapsed)
            written = res.written
        state = engine.state_hash()
        if reference is None:
            reference = state
        elif state != reference:
            raise BenchmarkError(f"{name}: the engine's state after the uncross differs from {backends[0].name}'s")
        report.add(_common.from_samples(f"{name}.uncross_ms", [w * 1e3 for w in wall], "ms"))
        report.add(_common.from_samples(f"{name}.orders_per_s", [n_orders / w for w in wall], "orders/s"))
        report.add(_common.single(f"{name}.uncross_records", float(written), "records"))


def _backends(names: list[str]) -> tuple[list[Backend], dict[str, str]]:
    loaded, skipped = [], {}
    for name in names:
        try:
            loaded.append(load(name))
        except BackendUnavailable as exc:
            skipped[name] = str(exc)
    return loaded, skipped


def _measure(
    report: _common.Report,
    backends: list[Backend],
    bids: Orders,
    asks: Orders,
    ref: np.ndarray,
    repeats: int,
    progress: _common.Progress,
) -> dict[str, float]:
    """Time every backend on one book; returns the median determine_ms per backend."""
    n_orders = len(bids) + len(asks)
    reference = load("cpu").determine(build_grid(bids, asks, ref)).clearing
    medians: dict[str, float] = {}
    for backend in backends:
        name = backend.name
        grid = build_grid(bids, asks, ref, backend.host_empty)
        progress.step(f"{name}: warm-up")
        first = backend.determine(grid)
        if not first.clearing.equals(reference):
            raise BenchmarkError(f"{name}: clearing prices differ from the cpu reference on the same grid")
        note = "the first call after loading (cupy compiles its kernel at load)"
        report.add(_common.single(f"{name}.first_call_ms", first.total_s * 1e3, "ms", note))
        progress.step(f"{name}: determination x{repeats}")
        runs = [backend.determine(grid) for _ in range(repeats)]
        if not all(run.clearing.equals(reference) for run in runs):
            raise BenchmarkError(f"{name}: clearing prices differ from the cpu reference on the same grid")
        determine = report.add(_common.from_samples(f"{name}.determine_ms", [r.total_s * 1e3 for r in runs], "ms"))
        report.add(_common.from_samples(f"{name}.transfer_ms", [r.transfer_s * 1e3 for r in runs], "ms"))
        medians[name] = determine.value
        progress.step(f"{name}: batch_match x{repeats}")
        batch_match(bids, asks, ref, backend=backend)
        matches, wall = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            matches.append(batch_match(bids, asks, ref, backend=backend))
            wall.append(time.perf_counter() - start)
        report.add(_common.from_samples(f"{name}.batch_match_ms", [w * 1e3 for w in wall], "ms"))
        report.add(_common.from_samples(f"{name}.batch_match_orders_per_s", [n_orders / w for w in wall], "orders/s"))
        report.add(_common.from_samples(f"{name}.grid_ms", [m.grid_s * 1e3 for m in matches], "ms", "host"))
        report.add(_common.from_samples(f"{name}.allocate_ms", [m.allocate_s * 1e3 for m in matches], "ms", "host"))
        report.add(_common.single(f"{name}.trades", float(len(matches[0].trades)), "trades"))
    return medians


def steps(n_backends: int, sweep: int) -> int:
    return 3 * n_backends * (1 + sweep) + n_backends


def run(
    names: list[str],
    n_instruments: int,
    n_orders: int,
    quick: bool,
    plot: bool,
    progress: _common.Progress | None = None,
) -> _common.Report:
    backends, skipped = _backends(names)
    if not backends:
        raise BenchmarkError("no backend could run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    sweep_sizes = [n for n in SWEEP[: 2 if quick else 3] if n != n_orders] if plot else []
    progress = (
        progress if progress is not None else _common.Progress(steps(len(backends), len(sweep_sizes)), quiet=True)
    )
    repeats = 3 if quick else 5
    gpu = next((b.device for b in backends if getattr(b, "on_gpu", False)), None)
    report = _common.Report("auction", quick, gpu=gpu)
    bids, asks, ref, digest = workload(n_instruments, n_orders)
    grid = build_grid(bids, asks, ref)
    report.extra["workloads"] = {
        "auction": {
            "file": None,
            "form": "arrays (qfix.bench.auction.workload, seed 1)",
            "blake2b": digest,
            "instruments": n_instruments,
            "orders": n_orders,
            "grid_points": grid.n_points,
            "grid_bytes": grid.nbytes(),
        }
    }
    report.extra["backends"] = {b.name: b.device for b in backends} | {k: f"skipped: {v}" for k, v in skipped.items()}
    medians = _measure(report, backends, bids, asks, ref, repeats, progress)
    _measure_uncross(report, backends, n_instruments, n_orders, repeats, progress)
    if "cpu" in medians:
        for name, value in medians.items():
            if name != "cpu":
                report.add(_common.single(f"{name}.determine_speedup_over_cpu", medians["cpu"] / value, "ratio"))
    cpu_rate = next((r.value for r in report.results if r.name == "cpu.orders_per_s"), None)
    if cpu_rate is not None:
        note = "the engine's whole uncross against the 20M orders/s target"
        report.add(_common.single("cpu.orders_per_s_over_target", cpu_rate / CPU_TARGET_ORDERS_PER_S, "ratio", note))
    series: dict[str, list[tuple[int, float]]] = {b.name: [(n_orders, medians[b.name])] for b in backends}
    for size in sweep_sizes:
        sub = _common.Report("auction", quick)
        sb, sa, sref, _ = workload(max(1, min(n_instruments, size // 100)), size)
        for name, value in _measure(sub, backends, sb, sa, sref, repeats, progress).items():
            series[name].append((size, value))
    report.plot_data["series"] = {k: sorted(v) for k, v in series.items()}
    if sweep_sizes:
        report.extra["sweep"] = {
            "what": "median determine_ms per backend at each order count (instruments = orders / 100, at most "
            "--instruments)",
            "series": {k: [[n, ms] for n, ms in sorted(v)] for k, v in series.items()},
        }
    return report


def _plot(report: _common.Report, path: str) -> None:
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in report.plot_data["series"].items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("orders (instruments = orders / 100, at most --instruments)")
    ax.set_ylabel("determine ms (median, copies included)")
    ax.axhline(DEVICE_TARGET_DETERMINE_MS, color="tab:red", linestyle="--", label="device target at 1M")
    ax.legend()
    ax.set_title("qfix bench auction: clearing-price determination" + (" (quick)" if report.quick else ""))
    _common.save_figure(fig, path)


@click.command("auction")
@click.option("--instruments", default=10_000, show_default=True, help="Instruments in the book.")
@click.option("--orders", default=None, type=int, help="Orders in the book [default: 1,000,000; quick 100,000].")
@click.option(
    "--backend",
    "backend",
    type=click.Choice([*NAMES, "all"]),
    default="all",
    show_default=True,
    help="Backends to run; with 'all' the ones that cannot load here are listed as skipped.",
)
@click.option("--quick", is_flag=True, help="100,000 orders and 3 repeats.")
@_common.output_options
def command(
    instruments: int,
    orders: int | None,
    backend: str,
    quick: bool,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Clearing prices and whole array auctions for many instruments, per backend."""
    _common.check_outputs(json_path, plot_path)
    if instruments < 1:
        raise click.BadParameter("must be at least 1", param_hint="--instruments")
    n_orders = orders if orders is not None else (100_000 if quick else 1_000_000)
    if n_orders < 0:
        raise click.BadParameter("must not be negative", param_hint="--orders")
    names = list(NAMES) if backend == "all" else [backend]
    if backend != "all":
        try:
            load(backend)  # a backend asked for by name must run: fail now, saying why
        except BackendUnavailable as exc:
            raise BenchmarkError(f"--backend {backend}: {exc}") from None
    sweep = len([n for n in SWEEP[: 2 if quick else 3] if n != n_orders]) if plot_path else 0
    with _common.Progress(steps(len(names), sweep), quiet=quiet) as progress:
        report = run(names, instruments, n_orders, quick, bool(plot_path), progress)
    _common.finish(report, json_path, plot_path, _plot)
    for name, why in report.extra["backends"].items():
        if str(why).startswith("skipped"):
            click.echo(f"note: {name} {why}", err=True)
