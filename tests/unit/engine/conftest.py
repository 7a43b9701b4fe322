"""Engine test fixtures: one session-wide JIT warm-up, small engine factories."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _engine_records import SMALL, batch, cancel, instrument, new_out, nos

from qfix.engine.config import EngineConfig, InstrumentConfig
from qfix.engine.engine import Engine


@pytest.fixture(scope="session", autouse=True)
def warm_kernels() -> None:
    """Compile (or load from NUMBA_CACHE_DIR) every kernel once per session."""
    eng = Engine([instrument(1)], SMALL)
    out = new_out(256)
    eng.process(batch(nos(1, "buy", 100, 5), nos(2, "sell", 100, 2, session=2), cancel(3, orig=1)), out)
    eng.cancel_sessions(0, [1], out)
    eng.end_of_day(0, out)
    eng.check_invariants()
    eng.state_hash()


@pytest.fixture
def make_engine() -> Callable[..., Engine]:
    def factory(*instruments: InstrumentConfig, config: EngineConfig = SMALL) -> Engine:
        return Engine(list(instruments) or [instrument(1)], config)

    return factory
