"""Shared instruments and engine factory for the reference-engine unit tests (imported by name)."""

from __future__ import annotations

from qfix.engine.config import PHASE_CLOSED, PHASE_PRE_OPEN, EngineConfig, InstrumentConfig
from qfix.testing import ReferenceEngine
from qfix.wire import codes as C  # noqa: N812

#: tick 1, Ref 100, band [50, 150], collar 5, CancelPassive
A = InstrumentConfig(security_id=1, symbol="A", tick_size_p9=1, ref=100, band_width=50, collar=5)
#: tick 10, Ref 1000 ticks, band ±100 ticks, MaxOrderQty 1000, MaxNotional 50,000 (50 lots at 1000)
B = InstrumentConfig(
    security_id=2, symbol="B", tick_size_p9=10, ref=1000, band_width=100, max_order_qty=1000,
    max_notional=50_000, default_stp=C.SMP_CANCEL_AGGRESSIVE,
)  # fmt: skip
CLOSED = InstrumentConfig(security_id=3, symbol="X", tick_size_p9=1, ref=100, band_width=50, phase=PHASE_CLOSED)
PRE = InstrumentConfig(security_id=4, symbol="P", tick_size_p9=1, ref=100, band_width=50, phase=PHASE_PRE_OPEN)
FBA = InstrumentConfig(security_id=5, symbol="F", tick_size_p9=1, ref=100, band_width=50, fba_interval_ns=0)
ALL = (A, B, CLOSED, PRE, FBA)

DAY0 = 20_454  # 2026-01-01
T0 = DAY0 * 86_400 * 10**9


def make_engine(*, instruments: tuple[InstrumentConfig, ...] = ALL, **config: object) -> ReferenceEngine:
    cfg = EngineConfig(event_hash=True, **config)  # type: ignore[arg-type]
    return ReferenceEngine(instruments, cfg, check=True)
