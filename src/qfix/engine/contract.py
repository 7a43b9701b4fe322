"""What every engine implementation promises its caller (ENGINE.md §2.1, §2.4, §4).

The fast Numba engine (``qfix.engine``) and the plain-Python reference engine
(``qfix.testing.reference``) both satisfy :class:`MatchingEngine`, so differential
tests, benchmarks and the server treat them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple, Protocol

import numpy as np

from qfix.errors import QfixError

STATUS_OK: Final = 0  #: every inbound record (or the command) was processed
OUTPUT_FULL: Final = 1  #: stopped before a record whose bound U exceeded the free space


class EngineInvariantError(QfixError, RuntimeError):
    """An ENGINE.md §6 invariant failed; the server must stop taking orders."""


class ProcessResult(NamedTuple):
    """Outcome of one engine call.

    status: STATUS_OK or OUTPUT_FULL.
    consumed: inbound records completed (all of them when STATUS_OK; 0 or 1 for commands).
    written: output records written to ``out[0:written]``.
    needed: the bound U of the record (or command) that did not start; 0 when STATUS_OK.
    """

    status: int
    consumed: int
    written: int
    needed: int


class MatchingEngine(Protocol):
    """Entry points of ENGINE.md §2.1. Arrays: ``batch`` has dtype ``wire.schema.INBOUND``
    (1-D, C-contiguous), ``out`` has dtype ``wire.schema.OUTPUT`` (1-D); outputs go to
    ``out[0:written]`` and the caller owns both arrays."""

    def process(self, batch: np.ndarray, out: np.ndarray) -> ProcessResult: ...

    def set_phase(self, now: int, security_ids: Sequence[int], phase: int, out: np.ndarray) -> ProcessResult: ...

    def set_reference(self, now: int, security_id: int, px_ticks: int) -> None: ...

    def auction_tick(self, now: int, out: np.ndarray) -> ProcessResult: ...

    def publish_indicative(self, now: int, out: np.ndarray) -> ProcessResult: ...

    def expire(self, now: int, out: np.ndarray) -> ProcessResult: ...

    def end_of_day(self, now: int, out: np.ndarray) -> ProcessResult: ...

    def cancel_sessions(self, now: int, session_ids: Sequence[int], out: np.ndarray) -> ProcessResult: ...

    def cancel_accounts(self, now: int, accounts: Sequence[int], out: np.ndarray) -> ProcessResult: ...

    def state_hash(self) -> bytes: ...

    def event_hash(self) -> bytes: ...

    def check_invariants(self) -> None: ...
