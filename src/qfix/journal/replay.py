"""Running journal entries on an engine: one code path for the live server and for replay.

Theory of operation. :class:`EngineDriver` owns the output buffer and its growth rule,
and applies one engine entry (a batch or a command) the way the server always has:
a batch is resumed after ``OUTPUT_FULL`` with the remaining records, the buffer grown
when the engine asks for more; a command that meets ``OUTPUT_FULL`` did nothing, so
it is repeated with a bigger buffer. The live server and recovery both go through
:meth:`EngineDriver.apply`, so the same entries with the same starting buffer size stop
at the same places, and the event-hash chain (ENGINE.md §5), which depends on those
stops, comes out the same.

A command the engine refuses (a phase transition it does not allow, a reference price
outside the band) raises and changes nothing; the server journals a command before it
runs it, so replay meets the same refusal and skips it just the same
(:data:`REFUSED`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy.typing as npt

from qfix.engine import OUTPUT_FULL, Engine, output_buffer
from qfix.journal.entries import (
    AuctionTick,
    Batch,
    CancelAccounts,
    CancelSessions,
    EndOfDay,
    Entry,
    Expire,
    PublishIndicative,
    SetPhase,
    SetReference,
)

__all__ = ["INITIAL_OUTPUT", "REFUSED", "EngineDriver", "is_engine_entry"]

Array = npt.NDArray[Any]

INITIAL_OUTPUT: Final = 1 << 16  #: output records allocated at start; grown on demand
#: what an engine refuses without changing anything (the caller reports it)
REFUSED: Final = (ValueError, NotImplementedError)
_ENGINE_ENTRIES: Final = (
    Batch,
    CancelSessions,
    CancelAccounts,
    SetPhase,
    Expire,
    EndOfDay,
    SetReference,
    AuctionTick,
    PublishIndicative,
)


def is_engine_entry(entry: Entry) -> bool:
    return isinstance(entry, _ENGINE_ENTRIES)


class EngineDriver:
    """Applies engine entries with a growing output buffer (never past ``worst_case``)."""

    def __init__(self, engine: Engine, out_size: int = INITIAL_OUTPUT) -> None:
        self.engine = engine
        self.worst_case = engine.worst_case_records()
        self.out = output_buffer(max(1, min(out_size, self.worst_case)))

    @property
    def out_size(self) -> int:
        return int(self.out.size)

    def _grow(self, needed: int) -> None:
        size = min(max(needed, 2 * self.out.size), self.worst_case)
        if size < needed:
            raise RuntimeError(
                f"engine needs {needed} output records, over the configured worst case {self.worst_case}"
            )
        self.out = output_buffer(size)

    def reserve(self, records: int) -> None:
        """Grow the output buffer towards ``records`` (never past ``worst_case``), for a
        caller whose whole batch's output should fit one call (the server's record path)."""
        size = min(records, self.worst_case)
        if size > self.out.size:
            self.out = output_buffer(size)

    def apply(self, entry: Entry, dispatch: Callable[[Array], None]) -> None:
        """Run ``entry`` on the engine, handing each stretch of output to ``dispatch``.

        Raises one of :data:`REFUSED` (having changed nothing) if the engine refuses a
        command; TypeError for an entry that is not the engine's.
        """
        if isinstance(entry, Batch):
            self._process(entry.records, dispatch)
            return
        engine = self.engine
        call: Callable[[Array], Any]
        if isinstance(entry, CancelSessions):
            call = lambda out: engine.cancel_sessions(entry.now, list(entry.session_ids), out)  # noqa: E731
        elif isinstance(entry, CancelAccounts):
            call = lambda out: engine.cancel_accounts(entry.now, list(entry.accounts), out)  # noqa: E731
        elif isinstance(entry, SetPhase):
            call = lambda out: engine.set_phase(entry.now, list(entry.security_ids), entry.phase, out)  # noqa: E731
        elif isinstance(entry, Expire):
            call = lambda out: engine.expire(entry.now, out)  # noqa: E731
        elif isinstance(entry, EndOfDay):
            call = lambda out: engine.end_of_day(entry.now, out)  # noqa: E731
        elif isinstance(entry, AuctionTick):
            call = lambda out: engine.auction_tick(entry.now, out)  # noqa: E731
        elif isinstance(entry, PublishIndicative):
            call = lambda out: engine.publish_indicative(entry.now, out)  # noqa: E731
        elif isinstance(entry, SetReference):
            engine.set_reference(entry.now, entry.security_id, entry.px_ticks)
            return
        else:
            raise TypeError(f"not an engine entry: {entry!r}")
        while True:
            res = call(self.out)
            if res.status != OUTPUT_FULL:
                break
            self._grow(res.needed)
        dispatch(self.out[: res.written])

    def _process(self, batch: Array, dispatch: Callable[[Array], None]) -> None:
        engine = self.engine
        while True:
            res = engine.process(batch, self.out)
            dispatch(self.out[: res.written])
            if res.status != OUTPUT_FULL:
                return
            batch = batch[res.consumed :]
            if res.needed > self.out.size:
                self._grow(res.needed)
