"""Hypothesis state machine: the fast engine against the reference oracle (ENGINE.md §9).

``fast`` (``qfix.engine.Engine``) and ``ref`` (``ReferenceEngine(check=True)``, so the §6
invariants run after every message) take exactly the same calls: batches of 1..N inbound
records (new orders of every kind, cancels, replaces, mass cancels, some with invalid
fields or duplicate ClOrdIDs) flushed through a randomly sized output buffer that is
drained and resumed on OUTPUT_FULL (grown to ``needed`` when a record does not fit,
§2.4), and the commands ``expire``, ``end_of_day``, ``cancel_sessions``,
``cancel_accounts``, ``set_reference``, ``set_phase`` (auction transitions with real
uncrosses included), ``auction_tick`` and ``publish_indicative``. Tiny
instrument bands make books cross often; a tiny EngineConfig makes CapacityFull
reachable. After every call the output bytes + dest and the ProcessResult must be
identical; after every step both hashes (§5) and ``fast.check_invariants()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from qfix.engine import Engine
from qfix.engine.config import (
    ALLOCATION_PRO_RATA,
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
    EngineConfig,
    InstrumentConfig,
)
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK, ProcessResult
from qfix.testing import builders as b
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

DAY = 86_400 * 10**9
T0 = 20_454 * DAY + 3_600 * 10**9  # 2026-01-01 01:00 UTC

INSTRUMENTS = (
    # tick 1, 13 valid prices, CancelPassive default, small MaxOrderQty
    InstrumentConfig(security_id=1, symbol="A", tick_size_p9=1, ref=100, band_width=6, collar=2, max_order_qty=40),
    # tick 5 (off-tick prices possible), NotionalOverMax above 18 lots at 40, Decrement default
    InstrumentConfig(
        security_id=2, symbol="B", tick_size_p9=5, ref=40, band_width=4, collar=1, max_notional=720,
        default_stp=C.SMP_DECREMENT,
    ),
    # negative/zero prices, CancelBoth default; wanders through the plain phase transitions
    InstrumentConfig(
        security_id=3, symbol="C", tick_size_p9=1, ref=-3, band_width=3, collar=1, default_stp=C.SMP_CANCEL_BOTH,
    ),
    # frequent batch auctions every 5 us of engine time, pro-rata margins: orders (IOC and
    # market included) rest in Continuous until ``fba_tick`` uncrosses them
    InstrumentConfig(
        security_id=4, symbol="D", tick_size_p9=2, ref=50, band_width=3, collar=2, fba_interval_ns=5_000,
        allocation=ALLOCATION_PRO_RATA,
    ),
)  # fmt: skip
TICK = {i.security_id: i.tick_size_p9 for i in INSTRUMENTS}
REF = {i.security_id: i.ref for i in INSTRUMENTS}
#: SessionID -> SessionAccount: sessions 0/1 share account 10 (cross-session cancels
#: allowed, STP across sessions); account 12 is mapped into STP group 11.
SESSIONS = {0: 10, 1: 10, 2: 11, 3: 12}
STP_GROUPS = {12: 11}
ACCOUNTS = (10, 11, 12)
#: the transitions of ENGINE.md §7.1 for instruments 3 and 4; the two auction ones
#: (PreOpen -> Continuous, PreClose -> Closed) uncross
MOVES = {
    PHASE_CONTINUOUS: (PHASE_HALTED, PHASE_PRE_CLOSE, PHASE_CLOSED),
    PHASE_HALTED: (PHASE_CLOSED, PHASE_PRE_OPEN),
    PHASE_PRE_OPEN: (PHASE_CLOSED, PHASE_HALTED, PHASE_CONTINUOUS, PHASE_CONTINUOUS),
    PHASE_CLOSED: (PHASE_PRE_OPEN,),
    PHASE_PRE_CLOSE: (PHASE_HALTED, PHASE_CLOSED, PHASE_CLOSED),
}
UNCROSS_MOVES = {(PHASE_PRE_OPEN, PHASE_CONTINUOUS), (PHASE_PRE_CLOSE, PHASE_CLOSED)}
KINDS = (
    "day", "day", "gtc", "gtd", "ioc", "fok", "market", "market_ioc", "market_fok", "post", "iceberg",
    "minqty", "minqty_ioc",
)  # fmt: skip
SMPS = (C.SMP_DEFAULT, C.SMP_DEFAULT, C.SMP_CANCEL_AGGRESSIVE, C.SMP_CANCEL_PASSIVE, C.SMP_CANCEL_BOTH, C.SMP_DECREMENT)
OUT_SIZES = (1, 8, 16, 17, 24, 40, 64, 4096)
MAX_PENDING = 12

#: spoilers for a new order: (field, value) overrides, most of them invalid (WIRE.md §5.2,
#: §5.3; ENGINE.md §3.1), a few valid-but-odd
SPOILERS: tuple[dict[str, Any], ...] = (
    {"tif": 0x39},
    {"tif": 0x32},
    {"qty": 0},
    {"qty": 41},  # over A's MaxOrderQty
    {"qty": 2**32 - 1},
    {"side": 0x33},
    {"ord_type": C.ORD_TYPE_STOP},
    {"ord_type": 0x35},
    {"exec_inst": C.EXEC_INST_ALL_OR_NONE},
    {"exec_inst": 0x04},
    {"smp": 0},
    {"smp": 5},
    {"sec": 99},
    {"price_delta": 1},  # off tick on B
    {"price": C.NULL_PRICE, "ord_type": C.ORD_TYPE_LIMIT},
    {"ord_type": C.ORD_TYPE_MARKET},  # market with a price
    {"price": None, "tif": C.TIF_GTC},
    {"price": None, "tif": C.TIF_GTD},
    {"price": None, "exec_inst": C.EXEC_INST_POST_ONLY},
    {"price": None, "max_floor": 2},
    {"tif": C.TIF_IOC, "exec_inst": C.EXEC_INST_POST_ONLY},
    {"tif": C.TIF_FOK, "min_qty": 1},
    {"tif": C.TIF_IOC, "max_floor": 1},
    {"min_qty": 0},
    {"min_qty_over": 1},
    {"max_floor": 0},
    {"exec_inst": C.EXEC_INST_POST_ONLY, "min_qty": 1},
    {"tif": C.TIF_GTD, "expire_days": -1},
    {"tif": C.TIF_GTD, "expire_days": None},
    {"tif": C.TIF_DAY, "expire_days": 1},
    {"price_ticks": 30},  # far outside every band
    {"account": 11},  # explicit Account (server-authorised): other STP group
    {"account": 12},
)


def _clean(o: ProcessResult) -> tuple[int, int, int, int]:
    return (int(o.status), int(o.consumed), int(o.written), int(o.needed))


def _diff(step: str, o_ref: np.ndarray, n_ref: int, o_fast: np.ndarray, n_fast: int) -> str:
    for k in range(max(n_ref, n_fast)):
        a = (int(o_ref[k]["dest"]), o_ref[k]["message"].tobytes()) if k < n_ref else None
        c = (int(o_fast[k]["dest"]), o_fast[k]["message"].tobytes()) if k < n_fast else None
        if a != c:
            da = b.decode(a[1], a[0]) if a else None
            dc = b.decode(c[1], c[0]) if c else None
            return f"{step}: output record {k} differs\nref  {da}\nfast {dc}"
    return f"{step}: outputs differ"


class EngineMachine(RuleBasedStateMachine):
    sent = Bundle("sent")  # (session, clordid, sec, side) of every new order sent

    def __init__(self) -> None:
        super().__init__()
        self.fast: Engine | None = None
        self.ref: ReferenceEngine | None = None
        self.pending: list[np.ndarray] = []
        self.clordid = dict.fromkeys(SESSIONS, 0)
        self.now = T0
        self.phase = {i.security_id: i.phase for i in INSTRUMENTS}
        self.stats = {"calls": 0, "output_full": 0}
        self.broken = False  # a check failed: teardown must not pile a second error on it

    # ------------------------------------------------------------------ setup and plumbing
    @initialize(
        max_orders=st.one_of(st.integers(3, 16), st.integers(17, 60)),
        max_levels=st.one_of(st.integers(2, 8), st.integers(9, 24)),
    )
    def setup(self, max_orders: int, max_levels: int) -> None:
        cfg = EngineConfig(
            max_orders=max_orders, max_levels=max_levels, max_instruments=4, max_sessions=8,
            stp_groups=STP_GROUPS, event_hash=True,
        )  # fmt: skip
        self.fast = Engine(INSTRUMENTS, cfg)
        self.ref = ReferenceEngine(INSTRUMENTS, cfg, check=True)

    def _clordid(self, session: int, dup: int) -> int:
        """Next ClOrdID of ``session``; ``dup`` 1 repeats the last one, 2 goes below it."""
        last = self.clordid[session]
        if dup == 1 and last:
            return last
        if dup == 2 and last > 1:
            return last - 1
        self.clordid[session] = last + 1 + (dup == 3) * 5  # dup 3: a gap (still increasing)
        return self.clordid[session]

    def _live(self) -> list[dict[str, int]]:
        assert self.ref is not None
        live: list[dict[str, int]] = self.ref.live_orders()
        return live

    def _push(self, rec: np.ndarray, flush_now: bool, out_size: int) -> None:
        self.pending.append(rec)
        if flush_now or len(self.pending) >= MAX_PENDING:
            self._flush(out_size)

    def _flush(self, out_size: int) -> None:
        """Process the pending batch on both engines, draining and resuming on OUTPUT_FULL."""
        try:
            self._flush_checked(out_size)
        except BaseException:
            self.broken = True
            raise

    def _flush_checked(self, out_size: int) -> None:
        assert self.fast is not None and self.ref is not None
        if not self.pending:
            return
        rest = b.batch(*self.pending)
        self.pending = []
        first = 0
        while True:
            o_ref = np.zeros(out_size, schema.OUTPUT)
            o_fast = np.zeros(out_size, schema.OUTPUT)
            r_ref = self.ref.process(rest, o_ref)
            r_fast = self.fast.process(rest, o_fast)
            self._compare(f"records {first}.. of the batch (out {out_size})", r_ref, o_ref, r_fast, o_fast)
            if r_ref.status == STATUS_OK:
                return
            assert r_ref.status == OUTPUT_FULL and r_ref.consumed < len(rest)
            self.stats["output_full"] += 1
            rest = rest[r_ref.consumed :]
            first += r_ref.consumed
            if r_ref.consumed == 0:
                out_size = max(out_size, r_ref.needed)

    def _command(self, name: str, args: tuple[Any, ...], out_size: int) -> None:
        self._flush(4096)
        try:
            self._command_checked(name, args, out_size)
        except BaseException:
            self.broken = True
            raise

    def _command_checked(self, name: str, args: tuple[Any, ...], out_size: int) -> None:
        assert self.fast is not None and self.ref is not None
        while True:
            o_ref = np.zeros(out_size, schema.OUTPUT)
            o_fast = np.zeros(out_size, schema.OUTPUT)
            r_ref = getattr(self.ref, name)(*args, o_ref)
            r_fast = getattr(self.fast, name)(*args, o_fast)
            self._compare(f"{name}{args} (out {out_size})", r_ref, o_ref, r_fast, o_fast)
            if r_ref.status == STATUS_OK:
                return
            assert r_ref.consumed == 0 and r_ref.written == 0 and r_ref.needed > out_size
            self.stats["output_full"] += 1
            out_size = r_ref.needed

    def _compare(
        self, step: str, r_ref: ProcessResult, o_ref: np.ndarray, r_fast: ProcessResult, o_fast: np.ndarray
    ) -> None:
        assert self.fast is not None and self.ref is not None
        self.stats["calls"] += 1
        assert _clean(r_fast) == _clean(r_ref), f"{step}: result fast {r_fast} != ref {r_ref}"
        if o_ref[: r_ref.written].tobytes() != o_fast[: r_fast.written].tobytes():
            raise AssertionError(_diff(step, o_ref, r_ref.written, o_fast, r_fast.written))
        assert self.fast.event_hash() == self.ref.event_hash(), f"{step}: event hash"

    # ------------------------------------------------------------------ rules: inbound records
    _ORDER = st.tuples(
        st.sampled_from(sorted(SESSIONS)),
        st.sampled_from([1, 1, 2, 2, 3, 4]),
        st.booleans(),
        st.integers(-3, 4),
        st.one_of(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12), st.integers(13, 25)),
        st.sampled_from(KINDS),
        st.sampled_from(SMPS),
        st.integers(0, 40),
        st.one_of(st.none(), st.none(), st.none(), st.none(), st.none(), st.sampled_from(SPOILERS)),
        st.sampled_from([0] * 20 + [1, 2, 3]),
    )

    @rule(
        target=sent,
        orders=st.lists(_ORDER, min_size=1, max_size=4),
        flush_now=st.integers(0, 3),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def new(self, orders: list[tuple[Any, ...]], flush_now: int, out_size: int) -> Any:
        sent = [self._new_order(*o) for o in orders]
        self._push(b.batch(*(rec for rec, _ in sent)), flush_now == 0, out_size)
        return multiple(*(key for _, key in sent))

    @rule(
        target=sent,
        order=_ORDER,
        aggressive=st.integers(0, 3),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def new_crossing(self, order: tuple[Any, ...], aggressive: int, out_size: int) -> tuple[int, int, int, int]:
        """One order priced through the reference price, flushed at once (trades, STP)."""
        args = list(order)
        args[3] = -aggressive
        rec, key = self._new_order(*args)
        self._push(rec, True, out_size)
        return key

    def _new_order(
        self, session: int, sec: int, buy: bool, offset: int, qty: int, kind: str, smp: int, aux: int,
        spoil: dict[str, Any] | None, dup: int,
    ) -> tuple[np.ndarray, tuple[int, int, int, int]]:  # fmt: skip
        side = C.SIDE_BUY if buy else C.SIDE_SELL
        # positive offset = passive (away from the other side), negative = aggressive
        ticks = REF[sec] - offset if buy else REF[sec] + offset
        f: dict[str, Any] = {"price": ticks * TICK[sec], "tif": C.TIF_DAY, "smp": smp}
        day = self.now // DAY
        if kind == "gtc":
            f["tif"] = C.TIF_GTC
        elif kind == "gtd":
            f["tif"], f["expire_date"] = C.TIF_GTD, day + aux % 3
        elif kind == "ioc":
            f["tif"] = C.TIF_IOC
        elif kind == "fok":
            f["tif"] = C.TIF_FOK
        elif kind.startswith("market"):
            f["price"] = None
            f["tif"] = {"market": C.TIF_DAY, "market_ioc": C.TIF_IOC, "market_fok": C.TIF_FOK}[kind]
        elif kind == "post":
            f["exec_inst"] = C.EXEC_INST_POST_ONLY
            f["tif"] = C.TIF_GTC if aux % 2 else C.TIF_DAY
        elif kind == "iceberg":
            f["max_floor"] = 1 + aux % (qty + 1)  # sometimes >= qty: not an iceberg
            f["tif"] = C.TIF_GTC if aux % 3 == 0 else C.TIF_DAY
        elif kind == "minqty":
            f["min_qty"] = 1 + aux % qty
        elif kind == "minqty_ioc":
            f["min_qty"], f["tif"] = 1 + aux % qty, C.TIF_IOC
        f["qty"] = qty
        sec_wire = sec
        if spoil:
            for key, value in spoil.items():
                if key == "price_delta":
                    f["price"] = (f["price"] if f["price"] is not None else REF[sec] * TICK[sec]) + value
                elif key == "price_ticks":
                    f["price"] = (REF[sec] + (value if buy else -value)) * TICK[sec]
                elif key == "min_qty_over":
                    f["min_qty"] = qty + value
                elif key == "expire_days":
                    f["expire_date"] = None if value is None else day + value
                elif key == "sec":
                    sec_wire = value
                elif key == "price" and value == C.NULL_PRICE:
                    f["price"] = None
                    f["ord_type"] = spoil["ord_type"]
                else:
                    f[key] = value
        clordid = self._clordid(session, dup)
        rec = b.new_order(
            clordid, sec=sec_wire, session=session, session_account=SESSIONS[session], recv_time=self.now,
            **{"side": side} | f,
        )  # fmt: skip
        return rec, (session, clordid, sec, side)

    @rule(
        target_order=sent,
        session=st.sampled_from(sorted(SESSIONS)),
        how=st.sampled_from(["id", "orig", "orig", "wrong_side", "wrong_sec"]),
        dup=st.sampled_from([0] * 12 + [1, 2]),
        flush_now=st.integers(0, 2),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def cancel_sent(
        self, target_order: tuple[int, int, int, int], session: int, how: str, dup: int, flush_now: int,
        out_size: int,
    ) -> None:  # fmt: skip
        """Cancel by (owner or other) session's OrigClOrdID of an order sent earlier (maybe gone,
        maybe replaced since, maybe still pending in this batch)."""
        owner, orig, sec, side = target_order
        s = owner if how != "id" and session % 2 == 0 else session
        live = {(o["session"], o["clordid"]): o for o in self._live()}
        kw: dict[str, Any] = {"orig_clordid": orig}
        if how == "id" and (owner, orig) in live:
            kw["order_id"] = live[(owner, orig)]["order_id"]
        if how == "wrong_side":
            side = C.SIDE_SELL if side == C.SIDE_BUY else C.SIDE_BUY
        if how == "wrong_sec":
            sec = 1 + sec % 3
        rec = b.cancel(
            self._clordid(s, dup), side=side, sec=sec, session=s, session_account=SESSIONS[s],
            recv_time=self.now, **kw,
        )  # fmt: skip
        self._push(rec, flush_now == 0, out_size)

    @precondition(lambda self: self.ref is not None and len(self._live()) > 0)
    @rule(
        data=st.data(),
        session=st.sampled_from([None, None, 0, 1, 2, 3]),
        by_id=st.booleans(),
        bogus=st.sampled_from([None] * 8 + ["id", "orig", "both", "side", "invalid_side"]),
        flush_now=st.integers(0, 2),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def cancel_live(
        self, data: st.DataObject, session: int | None, by_id: bool, bogus: str | None, flush_now: int,
        out_size: int,
    ) -> None:  # fmt: skip
        """Cancel a live order, from its owner (None) or any session (OtherAccount or allowed)."""
        o = data.draw(st.sampled_from(self._live()))
        s = o["session"] if session is None else session
        order_id: int | None = o["order_id"] if by_id else None
        orig: int | None = o["clordid"] if not by_id or data.draw(st.booleans()) else None
        side = o["side"]
        if bogus == "id":
            order_id = o["order_id"] + 1000
        elif bogus == "orig":
            order_id, orig = None, o["clordid"] + 1000
        elif bogus == "both":
            order_id, orig = None, None
        elif bogus == "side":
            side = C.SIDE_SELL if side == C.SIDE_BUY else C.SIDE_BUY
        elif bogus == "invalid_side":
            side = 0x35
        rec = b.cancel(
            self._clordid(s, 0), order_id=order_id, orig_clordid=orig, side=side, sec=o["security_id"],
            session=s, session_account=SESSIONS[s], recv_time=self.now,
        )  # fmt: skip
        self._push(rec, flush_now == 0, out_size)

    @precondition(lambda self: self.ref is not None and len(self._live()) > 0)
    @rule(
        data=st.data(),
        offset=st.integers(-4, 4),
        dqty=st.integers(-30, 8),
        floor=st.sampled_from(["keep", "keep", "none", "small", "big"]),
        odd=st.sampled_from([None] * 8 + ["session", "tif", "market", "min_qty", "post", "off_tick", "qty0", "to_cum"]),
        dup=st.sampled_from([0] * 12 + [1]),
        flush_now=st.integers(0, 2),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def replace_live(
        self, data: st.DataObject, offset: int, dqty: int, floor: str, odd: str | None, dup: int,
        flush_now: int, out_size: int,
    ) -> None:  # fmt: skip
        """Replace a live order: price, OrderQty (maybe <= CumQty) and MaxFloor changes."""
        o = data.draw(st.sampled_from(self._live()))
        sec = o["security_id"]
        session = o["session"]
        max_floor: int | None = o["display"] or None
        if floor == "none":
            max_floor = None
        elif floor == "small":
            max_floor = 1 + abs(offset)
        elif floor == "big":
            max_floor = 100
        qty = max(1, o["qty"] + dqty)
        price: int | None = (o["price"] + offset) * TICK[sec]
        kw: dict[str, Any] = {
            "ord_type": C.ORD_TYPE_MARKET if o["market"] else C.ORD_TYPE_LIMIT,
            "tif": o["tif"], "exec_inst": o["post_only"],
        }  # fmt: skip
        if o["market"]:
            price = None
        if odd == "session":
            session = (session + 1) % len(SESSIONS)
        elif odd == "tif":
            kw["tif"] = C.TIF_GTC if o["tif"] != C.TIF_GTC else C.TIF_DAY
        elif odd == "market":
            kw["ord_type"], price = C.ORD_TYPE_MARKET, None
        elif odd == "min_qty":
            kw["min_qty"] = 1
        elif odd == "post":
            kw["exec_inst"] = 1 - o["post_only"]
        elif odd == "off_tick" and price is not None:
            price += 1
        elif odd == "qty0":
            qty = 0
        elif odd == "to_cum":  # new OrderQty <= CumQty: cancelled (§3.8 rule 2)
            qty = max(1, o["cum"] - offset % 2)
        rec = b.replace(
            self._clordid(session, dup), o["clordid"], price=price, qty=qty, side=o["side"], sec=sec,
            session=session, session_account=SESSIONS[session], max_floor=max_floor, recv_time=self.now, **kw,
        )  # fmt: skip
        self._push(rec, flush_now == 0, out_size)

    @rule(
        target_order=sent,
        dqty=st.integers(-5, 5),
        offset=st.integers(-3, 3),
        flush_now=st.integers(0, 2),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def replace_sent(
        self, target_order: tuple[int, int, int, int], dqty: int, offset: int, flush_now: int, out_size: int
    ) -> None:
        """Replace by an OrigClOrdID sent earlier (maybe dead, rejected, or still pending)."""
        session, orig, sec, side = target_order
        rec = b.replace(
            self._clordid(session, 0), orig, price=(REF[sec] + offset) * TICK[sec], qty=max(1, 5 + dqty),
            side=side, sec=sec, session=session, session_account=SESSIONS[session], recv_time=self.now,
        )  # fmt: skip
        self._push(rec, flush_now == 0, out_size)

    @rule(
        session=st.sampled_from(sorted(SESSIONS)),
        sec=st.sampled_from([None, None, 1, 2, 3, 99]),
        side=st.sampled_from([C.MASS_CANCEL_SIDE_BOTH, C.SIDE_BUY, C.SIDE_SELL, 0x33]),
        account=st.sampled_from([None, None, None, 10, 11, 12, 77]),
        rtype=st.sampled_from([None, None, None, C.MASS_CANCEL_TYPE_ALL, C.MASS_CANCEL_TYPE_SECURITY, 0x35]),
        dup=st.sampled_from([0] * 8 + [1]),
        flush_now=st.integers(0, 2),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def mass(
        self, session: int, sec: int | None, side: int, account: int | None, rtype: int | None, dup: int,
        flush_now: int, out_size: int,
    ) -> None:  # fmt: skip
        rec = b.mass_cancel(
            self._clordid(session, dup), sec=sec, side=side, account=account, request_type=rtype,
            session=session, session_account=SESSIONS[session], recv_time=self.now,
        )  # fmt: skip
        self._push(rec, flush_now == 0, out_size)

    @rule(out_size=st.sampled_from(OUT_SIZES))
    def flush(self, out_size: int) -> None:
        self._flush(out_size)

    # ------------------------------------------------------------------ rules: time and commands
    @rule(step=st.sampled_from([0, 1, 1_000, 3_600 * 10**9, DAY // 2, DAY, 3 * DAY]))
    def advance(self, step: int) -> None:
        self.now += step

    @rule(
        which=st.sampled_from(["expire", "expire", "end_of_day", "cancel_sessions", "cancel_accounts"]),
        ids=st.lists(st.sampled_from([0, 1, 2, 3, 5, 10, 11, 12, 99]), max_size=3),
        ahead=st.sampled_from([0, 0, 1, DAY, 2 * DAY]),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def command(self, which: str, ids: list[int], ahead: int, out_size: int) -> None:
        self._flush(4096)
        self.now += ahead
        if which in ("expire", "end_of_day"):
            self._command(which, (self.now,), out_size)
        else:
            self._command(which, (self.now, ids), out_size)

    def _trivial_uncross(self, sec: int) -> bool:
        """Whether an uncross of ``sec`` outputs nothing (no market/IOC order, book not
        crossed), judged here from the reference's live orders."""
        live = [o for o in self._live() if o["security_id"] == sec]
        if any(o["market"] or o["tif"] == C.TIF_IOC for o in live):
            return False
        bids = [o["price"] for o in live if o["side"] == C.SIDE_BUY]
        asks = [o["price"] for o in live if o["side"] == C.SIDE_SELL]
        return not bids or not asks or max(bids) < min(asks)

    @rule(data=st.data(), sec=st.sampled_from([3, 3, 4]), out_size=st.sampled_from(OUT_SIZES))
    def phase_c(self, data: st.DataObject, sec: int, out_size: int) -> None:
        """Instrument 3, or the batch-auction instrument 4, through the transitions of §7.1,
        reopening included; the auction transitions uncross (fills, rule 6 cancels) or, on a
        book that does not cross, only change the phase."""
        assert self.fast is not None and self.ref is not None
        to = data.draw(st.sampled_from(MOVES[self.phase[sec]]))
        if (self.phase[sec], to) in UNCROSS_MOVES:
            self._flush(4096)
            kind = "trivial" if self._trivial_uncross(sec) else "real"
            event(f"set_phase {sec}: {kind} uncross to {to}")
        self._command("set_phase", (self.now, [sec], to), out_size)
        self.phase[sec] = to

    @precondition(lambda self: self.phase[3] in (PHASE_PRE_OPEN, PHASE_PRE_CLOSE))
    @rule(
        target=sent,
        market=st.booleans(),
        overlap=st.integers(0, 2),
        qty=st.integers(1, 12),
        out_size=st.sampled_from(OUT_SIZES),
    )
    def call_phase_cross(self, market: bool, overlap: int, qty: int, out_size: int) -> Any:
        """Instrument 3 in a call phase: a bid and an offer that lock or cross (or a market
        order), so that the next auction transition needs a real uncross."""
        kind = "market" if market else "day"
        sent = [
            self._new_order(0, 3, True, -overlap, qty, kind, C.SMP_DEFAULT, 0, None, 0),
            self._new_order(2, 3, False, 0, qty, "day", C.SMP_DEFAULT, 0, None, 0),
        ]
        self._push(b.batch(*(rec for rec, _ in sent)), True, out_size)
        return multiple(*(key for _, key in sent))

    @rule(step=st.sampled_from([0, 1_000, 5_000, 20_000]), out_size=st.sampled_from(OUT_SIZES))
    def fba_tick(self, step: int, out_size: int) -> None:
        """A frequent-batch tick (§7.6): uncrosses instrument 4 when it is due."""
        assert self.fast is not None
        self.now += step
        before = self.fast.live_orders(3).size
        self._command("auction_tick", (self.now,), out_size)
        event(
            "auction_tick: orders left the book"
            if self.fast.live_orders(3).size < before
            else "auction_tick: none left"
        )

    @rule(out_size=st.sampled_from(OUT_SIZES))
    def indicative(self, out_size: int) -> None:
        """IndicativeAuction records (§7.3) for instrument 3 in a call phase and 4."""
        self._command("publish_indicative", (self.now,), out_size)

    @rule(sec=st.sampled_from([1, 2, 3, 4]), shift=st.integers(-2, 2))
    def reference(self, sec: int, shift: int) -> None:
        assert self.fast is not None and self.ref is not None
        self._flush(4096)
        px = REF[sec] + shift
        self.ref.set_reference(self.now, sec, px)
        self.fast.set_reference(self.now, sec, px)

    # ------------------------------------------------------------------ checks after every step
    @invariant()
    def engines_agree(self) -> None:
        if self.fast is None or self.ref is None:
            return
        try:
            assert self.fast.state_hash() == self.ref.state_hash(), "state hash"
            assert self.fast.event_hash() == self.ref.event_hash(), "event hash"
            self.fast.check_invariants()
        except BaseException:
            self.broken = True
            raise

    def teardown(self) -> None:
        """Records still pending at the end of a run are flushed and compared too."""
        if self.fast is not None and self.ref is not None and not self.broken:
            self._flush(4096)
            self.engines_agree()


_SUPPRESS = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(
    max_examples=500, stateful_step_count=50, deadline=None, suppress_health_check=_SUPPRESS
)


@pytest.mark.slow
def test_engine_machine_many_examples() -> None:
    """The same machine with ten times the examples and longer runs (minutes)."""
    run_state_machine_as_test(
        EngineMachine,
        settings=settings(max_examples=3000, stateful_step_count=100, deadline=None, suppress_health_check=_SUPPRESS),
    )
