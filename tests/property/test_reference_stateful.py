"""Hypothesis state machine over the reference engine (ENGINE.md §6 after every step).

Two engines take the same inputs: ``main`` with an unbounded output buffer and
``twin`` with a small one that it drains and grows on OUTPUT_FULL (§2.4). Their outputs
and state hashes must agree after every step, and ``check=True`` runs the invariants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qfix.engine.config import PHASE_CLOSED, PHASE_PRE_OPEN, EngineConfig, InstrumentConfig
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK
from qfix.testing import ReferenceEngine, cancel, mass_cancel, new_order, replace
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

INSTRUMENTS = (
    InstrumentConfig(security_id=1, symbol="A", tick_size_p9=1, ref=100, band_width=20, collar=3),
    InstrumentConfig(
        security_id=2,
        symbol="B",
        tick_size_p9=5,
        ref=50,
        band_width=20,
        collar=2,
        max_notional=3_000,
        default_stp=C.SMP_DECREMENT,
    ),
    InstrumentConfig(security_id=3, symbol="C", tick_size_p9=1, ref=10, band_width=5, phase=PHASE_CLOSED),
    InstrumentConfig(security_id=4, symbol="F", tick_size_p9=1, ref=30, band_width=5, fba_interval_ns=0),
)
SESSIONS = {0: 10, 1: 10, 2: 11, 3: 12}
DAY = 86_400 * 10**9
T0 = 20_454 * DAY
KINDS = ("day", "gtc", "gtd", "ioc", "fok", "market", "market_ioc", "post", "iceberg", "minqty")


def _drain_twin(twin: ReferenceEngine, call: Any, size: int) -> list[bytes]:
    """Run ``call(out)`` until it completes, growing the buffer on OUTPUT_FULL."""
    got: list[bytes] = []
    while True:
        out = np.zeros(size, dtype=schema.OUTPUT)
        res = call(out)
        got.append(out[: res.written].tobytes())
        if res.status == STATUS_OK:
            return got
        assert res.status == OUTPUT_FULL
        size = max(size, res.needed)


class ReferenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        cfg = EngineConfig(max_orders=25, max_levels=12, stp_groups={12: 11}, event_hash=True)
        self.main = ReferenceEngine(INSTRUMENTS, cfg, check=True)
        self.twin = ReferenceEngine(INSTRUMENTS, cfg, check=True)
        self.clordid = dict.fromkeys(SESSIONS, 0)
        self.now = T0
        self.main_out: list[bytes] = []
        self.twin_out: list[bytes] = []
        self._phase3 = PHASE_CLOSED

    # -- plumbing
    def _next(self, session: int, dup: bool) -> int:
        if dup and self.clordid[session]:
            return self.clordid[session]
        self.clordid[session] += 1
        return self.clordid[session]

    def _feed(self, record: np.ndarray) -> None:
        """Feed a batch: main in one call, twin through a small draining buffer."""
        out = np.zeros(1 << 14, dtype=schema.OUTPUT)
        res = self.main.process(record, out)
        assert res.status == STATUS_OK
        self.main_out.append(out[: res.written].tobytes())
        pending = [record]

        def call(buf: np.ndarray) -> Any:
            res = self.twin.process(pending[0], buf)
            pending[0] = pending[0][res.consumed :]
            return res

        self.twin_out.extend(_drain_twin(self.twin, call, 24))

    def _command(self, name: str, *args: Any) -> None:
        out = np.zeros(1 << 14, dtype=schema.OUTPUT)
        res = getattr(self.main, name)(*args, out)
        assert res.status == STATUS_OK
        self.main_out.append(out[: res.written].tobytes())
        self.twin_out.extend(_drain_twin(self.twin, lambda buf: getattr(self.twin, name)(*args, buf), 8))

    def _live(self) -> list[dict[str, int]]:
        return self.main.live_orders()

    # -- rules
    @rule(
        orders=st.lists(
            st.tuples(
                st.sampled_from(sorted(SESSIONS)),
                st.sampled_from([1, 1, 2, 3, 4]),
                st.booleans(),
                st.integers(-3, 8),
                st.integers(1, 30),
                st.sampled_from(KINDS),
                st.sampled_from([C.SMP_DEFAULT, 1, 2, 3, 4]),
                st.integers(0, 30),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def new(self, orders: list[tuple[int, int, bool, int, int, str, int, int]]) -> None:
        self._feed(np.concatenate([self._new_order(*o) for o in orders]))

    def _new_order(
        self, session: int, sec: int, buy: bool, offset: int, qty: int, kind: str, smp: int, spoil: int
    ) -> np.ndarray:
        inst = INSTRUMENTS[sec - 1]
        side = C.SIDE_BUY if buy else C.SIDE_SELL
        ticks = inst.ref - offset if buy else inst.ref + offset
        kw: dict[str, Any] = {"price": ticks * inst.tick_size_p9, "tif": C.TIF_DAY, "smp": smp}
        if kind == "gtc":
            kw["tif"] = C.TIF_GTC
        elif kind == "gtd":
            kw["tif"], kw["expire_date"] = C.TIF_GTD, self.now // DAY + offset % 3
        elif kind == "ioc":
            kw["tif"] = C.TIF_IOC
        elif kind == "fok":
            kw["tif"] = C.TIF_FOK
        elif kind in ("market", "market_ioc"):
            kw["price"], kw["tif"] = None, C.TIF_DAY if kind == "market" else C.TIF_IOC
        elif kind == "post":
            kw["exec_inst"] = C.EXEC_INST_POST_ONLY
        elif kind == "iceberg":
            kw["max_floor"] = 1 + offset % 5
        elif kind == "minqty":
            kw["min_qty"] = 1 + offset % qty
        if spoil == 0:
            kw["tif"] = 0x39
        elif spoil == 1:
            qty = 0
        return new_order(
            self._next(session, spoil == 2), side=side, qty=qty, sec=sec, session=session,
            session_account=SESSIONS[session], recv_time=self.now, **kw,
        )  # fmt: skip

    @precondition(lambda self: len(self._live()) > 0)
    @rule(data=st.data(), session=st.sampled_from(sorted(SESSIONS)), by_id=st.booleans())
    def cancel_one(self, data: st.DataObject, session: int, by_id: bool) -> None:
        o = data.draw(st.sampled_from(self._live()))
        kw = {"order_id": o["order_id"]} if by_id else {"orig_clordid": o["clordid"]}
        rec = cancel(
            self._next(session, False), side=o["side"], sec=o["security_id"], session=session,
            session_account=SESSIONS[session], recv_time=self.now, **kw,
        )  # fmt: skip
        self._feed(rec)

    @precondition(lambda self: len(self._live()) > 0)
    @rule(data=st.data(), offset=st.integers(-4, 4), dqty=st.integers(-12, 6), floor=st.integers(0, 6))
    def replace_one(self, data: st.DataObject, offset: int, dqty: int, floor: int) -> None:
        o = data.draw(st.sampled_from(self._live()))
        inst = INSTRUMENTS[o["security_id"] - 1]
        session = o["session"]
        max_floor = o["display"] or None
        if floor == 1:
            max_floor = None
        elif floor == 2:
            max_floor = 2
        rec = replace(
            self._next(session, False), o["clordid"], price=(o["price"] + offset) * inst.tick_size_p9,
            qty=max(1, o["qty"] + dqty), side=o["side"], sec=o["security_id"], session=session,
            session_account=SESSIONS[session], max_floor=max_floor, recv_time=self.now,
            tif=o["tif"], exec_inst=o["post_only"],
        )  # fmt: skip
        self._feed(rec)

    @rule(
        session=st.sampled_from(sorted(SESSIONS)),
        sec=st.sampled_from([None, 1, 2, 4]),
        side=st.sampled_from([0x30, 0x31, 0x32]),
    )
    def mass(self, session: int, sec: int | None, side: int) -> None:
        rec = mass_cancel(
            self._next(session, False), sec=sec, side=side, session=session, session_account=SESSIONS[session],
            recv_time=self.now,
        )  # fmt: skip
        self._feed(rec)

    @rule(step=st.sampled_from([0, 1, 1_000, DAY // 2, DAY]))
    def advance(self, step: int) -> None:
        self.now += step

    @rule(
        which=st.sampled_from(["expire", "end_of_day", "cancel_sessions", "cancel_accounts"]),
        ids=st.lists(st.sampled_from([0, 1, 2, 3, 10, 11, 12, 99]), max_size=2),
    )
    def bulk(self, which: str, ids: list[int]) -> None:
        if which in ("expire", "end_of_day"):
            self._command(which, self.now)
        else:
            self._command(which, self.now, ids)

    @rule()
    def toggle_closed_instrument(self) -> None:
        # instrument 3 alternates Closed <-> PreOpen (no uncross either way)
        phase = PHASE_PRE_OPEN if self._phase3 == PHASE_CLOSED else PHASE_CLOSED
        self._command("set_phase", self.now, [3], phase)
        self._phase3 = phase

    @invariant()
    def twins_agree(self) -> None:
        assert b"".join(self.main_out) == b"".join(self.twin_out)
        assert self.main.state_hash() == self.twin.state_hash()
        self.main.check_invariants()


ReferenceMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestReferenceMachine = ReferenceMachine.TestCase
