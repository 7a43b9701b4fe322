"""Auctions, differentially: the fast engine against the reference engine (ENGINE.md §7, §2.4).

Every test builds the same instruments in ``qfix.engine.Engine`` (the Numba engine) and in
``qfix.testing.reference.ReferenceEngine`` (plain Python written from ENGINE.md; created with
``check=True``, so it also verifies the §6 invariants and the §7.5 uncross properties on
itself) and drives both with the same calls: inbound batches, ``set_phase``,
``auction_tick``, ``publish_indicative`` and ``set_reference``. After every call
:meth:`Pair.run` requires

* equal ``ProcessResult`` tuples (status, consumed, written, needed), hence the same
  OUTPUT_FULL stops and the same bound U;
* equal output bytes: each 60-byte record and its ``dest``, in order;
* equal state hashes (§5: Phase, Ref, NextUncross, the last published §7.3 values and every
  live order with its Leaves, Shown and PrioSeq) and equal event-stream hashes;
* ``Engine.check_invariants()`` passing.

Why: an uncross is a batch computation (clearing price over the whole book, then margin
allocation, pairing, Shown updates, remainder cancels, the end-of-event block), very unlike
continuous matching, and a fast implementation can be wrong in ways that leave the book
plausible: a different tie-break of §7.4, left-over lots handed out by OrderID instead of
PrioSeq, an MD record for a market order, a stale NextUncross. Any of these changes the
bytes or a hash. The reference is the oracle; where ENGINE.md states a number (the §7.7
ladders' P and V and their fills, the pro-rata examples, the NextUncross formula, the bound
U of §2.4) the tests also assert it directly, so that a mistake shared by both engines there
still fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from _engine_records import TICK, batch, cancel, decode, instrument, new_out, nos
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qfix.engine import Engine
from qfix.engine.config import (
    ALLOCATION_PRO_RATA,
    ALLOCATION_TIME,
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
    EngineConfig,
    InstrumentConfig,
)
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK, ProcessResult
from qfix.testing.reference import ReferenceEngine
from qfix.wire import codes

#: room for the random books (several instruments, a level per order) without CapacityFull
CONFIG = EngineConfig(max_orders=512, max_levels=256, max_instruments=8, max_sessions=64, event_hash=True)
BIG = 4096
ER = "ExecutionReport"
OE = "OrderExecuted"
TRADE = codes.EXEC_TYPE_TRADE
NEW = codes.EXEC_TYPE_NEW
CANCELED = codes.EXEC_TYPE_CANCELED
REJECTED = codes.EXEC_TYPE_REJECTED
PRO_RATA = ALLOCATION_PRO_RATA
TIME = ALLOCATION_TIME

Row = dict[str, Any]


# ---------------------------------------------------------------------------- the pair of engines


class Pair:
    """The fast engine and the reference over the same instruments, called alike."""

    def __init__(self, *instruments: InstrumentConfig, config: EngineConfig = CONFIG) -> None:
        self.fast = Engine(list(instruments), config)
        self.ref = ReferenceEngine(list(instruments), config, check=True)
        self._clordid: dict[int, int] = {}

    def clordid(self, session: int) -> int:
        """The next ClOrdID of ``session`` (strictly increasing per session, ENGINE.md §1.2)."""
        self._clordid[session] = self._clordid.get(session, 0) + 1
        return self._clordid[session]

    def order(self, side: str, price: int | None, qty: int, *, session: int = 1, sec: int = 1, **kw: Any) -> np.ndarray:
        """A NewOrderSingle (price in ticks, None = market) with the session's next ClOrdID."""
        return nos(self.clordid(session), side, price, qty, sec=sec, session=session, **kw)

    def cancel(self, order_id: int, side: str, *, session: int, sec: int = 1) -> np.ndarray:
        return cancel(self.clordid(session), order_id=order_id, side=side, sec=sec, session=session)

    def run(self, name: str, *args: Any, size: int = BIG) -> tuple[ProcessResult, bytes, list[Row]]:
        """Call ``name`` on both engines with ``size``-record buffers and compare everything."""
        o_f, o_r = new_out(size), new_out(size)
        if name == "process":
            r_f, r_r = self.fast.process(args[0], o_f), self.ref.process(args[0], o_r)
            what = f"process of {len(args[0])} records"
        else:
            r_f, r_r = getattr(self.fast, name)(*args, o_f), getattr(self.ref, name)(*args, o_r)
            what = f"{name}{tuple(args)}"
        assert tuple(r_f) == tuple(r_r), f"{what}: fast {r_f} != reference {r_r}"
        raw_f, raw_r = o_f[: r_f.written].tobytes(), o_r[: r_r.written].tobytes()
        if raw_f != raw_r:
            _explain_difference(what, decode(o_f[: r_f.written]), decode(o_r[: r_r.written]))
        assert self.fast.state_hash() == self.ref.state_hash(), f"{what}: state hashes differ"
        assert self.fast.event_hash() == self.ref.event_hash(), f"{what}: event hashes differ"
        self.fast.check_invariants()
        return r_r, raw_r, decode(o_r[: r_r.written])

    def call(self, name: str, *args: Any, size: int = BIG) -> list[Row]:
        res, _, rows = self.run(name, *args, size=size)
        assert res.status == STATUS_OK, res
        return rows

    def send(self, *records: np.ndarray) -> list[Row]:
        """One batch of inbound records."""
        return self.call("process", batch(*records))

    def set_reference(self, now: int, sec: int, px: int) -> None:
        self.fast.set_reference(now, sec, px)
        self.ref.set_reference(now, sec, px)
        assert self.fast.state_hash() == self.ref.state_hash()
        assert self.fast.event_hash() == self.ref.event_hash()
        self.fast.check_invariants()

    def live(self, sec: int | None = None) -> list[dict[str, int]]:
        """The reference's live orders (equal to the fast engine's: the state hashes agree)."""
        return [o for o in self.ref.live_orders() if sec is None or o["security_id"] == sec]


def _explain_difference(what: str, fast: list[Row], ref: list[Row]) -> None:
    for k, (a, b) in enumerate(zip(fast, ref, strict=False)):
        if a != b:
            raise AssertionError(f"{what}: output record {k} differs:\nfast {a}\nref  {b}")
    raise AssertionError(f"{what}: fast wrote {len(fast)} records, the reference {len(ref)}")


# ---------------------------------------------------------------------------- reading outputs


def _new_ids(rows: list[Row]) -> list[int]:
    """OrderIDs of the ER New records, in order."""
    return [r["OrderID"] for r in rows if r["t"] == ER and r["ExecType"] == NEW]


def _fills(rows: list[Row]) -> dict[int, int]:
    """Lots filled per OrderID, from the ER Trade records."""
    got: dict[int, int] = {}
    for r in rows:
        if r["t"] == ER and r["ExecType"] == TRADE:
            got[r["OrderID"]] = got.get(r["OrderID"], 0) + r["LastQty"]
    return got


def _trades(rows: list[Row], sec: int | None = None) -> list[Row]:
    return [r for r in rows if r["t"] == "Trade" and (sec is None or r["SecurityID"] == sec)]


def _cancels(rows: list[Row]) -> list[tuple[int, int]]:
    """(OrderID, LastQty) of the ER Canceled records, in order."""
    return [(r["OrderID"], r["LastQty"]) for r in rows if r["t"] == ER and r["ExecType"] == CANCELED]


def _statuses(rows: list[Row]) -> list[tuple[int, int]]:
    return [(r["SecurityID"], r["TradingStatus"]) for r in rows if r["t"] == "SecurityStatus"]


def _indicative(rows: list[Row]) -> list[tuple[int, int, int, int, int]]:
    """(SecurityID, IndicativePx in ticks or NULL_PRICE, MatchedQty, ImbalanceQty, ImbalanceSide)."""
    out = []
    for r in rows:
        assert r["t"] == "IndicativeAuction", r
        px = r["IndicativePx"] if r["IndicativePx"] == codes.NULL_PRICE else r["IndicativePx"] // TICK
        out.append((r["SecurityID"], px, r["MatchedQty"], r["ImbalanceQty"], r["ImbalanceSide"]))
    return out


def _imbalance_side(i: int) -> int:
    return codes.IMBALANCE_BUY if i > 0 else codes.IMBALANCE_SELL if i < 0 else codes.IMBALANCE_NONE


def _assert_auction_prints(rows: list[Row], sec: int, p: int, v: int) -> None:
    """The instrument's Trades print at P (ticks) and add up to V, all TradeCondition Auction
    without an aggressor (§2.3, §7.5 rule 4)."""
    trades = _trades(rows, sec)
    assert {r["LastPx"] for r in trades} == {p * TICK}
    assert sum(r["LastQty"] for r in trades) == v
    assert all(r["TradeCondition"] == codes.TRADE_CONDITION_AUCTION for r in trades)
    assert all(r["AggressorSide"] == codes.AGGRESSOR_NONE for r in trades)


def _no_md_for(rows: list[Row], order_ids: set[int]) -> None:
    """§2.3: market orders get no AddOrder, OrderExecuted or OrderDelete."""
    md = [r for r in rows if r["t"] in ("AddOrder", OE, "OrderDelete") and r["OrderID"] in order_ids]
    assert md == []


# ---------------------------------------------------------------------------- §7.7 golden ladders


@dataclass(frozen=True)
class Ladder:
    buys: str  # "price:lots ..." in time order, M = market
    sells: str
    ref: int
    p: int
    v: int
    i: int
    buy_fills: tuple[int, ...]  # lots each buy gets, in the order of ``buys``
    sell_fills: tuple[int, ...]


#: ENGINE.md §7.7; the fills follow from its "Time fills" line and from P, V, I (I = 0: both
#: sides' eligible orders fill completely)
LADDERS = {
    "cme1": Ladder(
        "51:10 50:20 49:30 48:40 47:50 46:70 45:100 44:1 43:30",
        "51:30 50:100 49:1 48:25 47:1 46:100 45:90 44:4 43:6", 46, 46, 200, 20,
        (10, 20, 30, 40, 50, 50, 0, 0, 0), (0, 0, 0, 0, 0, 100, 90, 4, 6),
    ),
    "cme2": Ladder(
        "51:10 50:20 49:30 48:40 47:50 46:30 45:100 44:1 43:30",
        "51:30 50:100 49:1 48:25 46:50 45:90 44:4 43:6", 46, 47, 150, 0,
        (10, 20, 30, 40, 50, 0, 0, 0, 0), (0, 0, 0, 0, 50, 90, 4, 6),
    ),
    "buy_pressure": Ladder("12:50 12:70", "10:100", 10, 12, 100, 20, (50, 50), (100,)),
    "sell_pressure": Ladder("12:100", "10:50 10:70", 12, 10, 100, -20, (100,), (50, 50)),
    "ref_inside": Ladder("12:100", "10:100", 11, 11, 100, 0, (100,), (100,)),
    "ref_above": Ladder("12:100", "10:100", 15, 12, 100, 0, (100,), (100,)),
    "gap": Ladder("52:10 50:5", "50:10 52:5", 40, 51, 10, 0, (10, 0), (10, 0)),
    "mixed": Ladder("52:10 51:5", "50:10 52:5", 45, 50, 10, 5, (10, 0), (10, 0)),
    "market_mix": Ladder("M:25 101:10", "99:20 100:10 102:30", 100, 101, 30, 5, (25, 5), (20, 10, 0)),
    "market_only": Ladder("M:30", "M:20", 100, 100, 20, 10, (20,), (20,)),
}  # fmt: skip


def _parse(text: str) -> list[tuple[int | None, int]]:
    out: list[tuple[int | None, int]] = []
    for item in text.split():
        price, lots = item.split(":")
        out.append((None if price == "M" else int(price), int(lots)))
    return out


def _load(pair: Pair, buys: str, sells: str, *, sec: int = 1) -> tuple[list[int], list[int]]:
    """Submit ``buys`` (session 1) then ``sells`` (session 2), each in time order, in one batch;
    returns their OrderIDs."""
    recs = [pair.order("buy", px, q, session=1, sec=sec) for px, q in _parse(buys)]
    recs += [pair.order("sell", px, q, session=2, sec=sec) for px, q in _parse(sells)]
    ids = _new_ids(pair.send(*recs))
    assert len(ids) == len(recs)
    n_buys = len(_parse(buys))
    return ids[:n_buys], ids[n_buys:]


@pytest.mark.parametrize("name", sorted(LADDERS))
def test_golden_ladder_opening_auction_clears_at_the_stated_price_volume_and_fills(name: str) -> None:
    lad = LADDERS[name]
    pair = Pair(instrument(1, ref=lad.ref, band_width=100, phase=PHASE_PRE_OPEN))
    buy_ids, sell_ids = _load(pair, lad.buys, lad.sells)
    ind = _indicative(pair.call("publish_indicative", 1))
    assert ind == [(1, lad.p, lad.v, abs(lad.i), _imbalance_side(lad.i))]
    rows = pair.call("set_phase", 2, [1], PHASE_CONTINUOUS)
    _assert_auction_prints(rows, 1, lad.p, lad.v)
    fills = _fills(rows)
    assert [fills.get(oid, 0) for oid in buy_ids] == list(lad.buy_fills)
    assert [fills.get(oid, 0) for oid in sell_ids] == list(lad.sell_fills)
    assert all(
        r["LastLiquidityInd"] == codes.LIQUIDITY_AUCTION for r in rows if r["t"] == ER and r["ExecType"] == TRADE
    )
    # §7.5 rule 6: what is left of a market order is cancelled, ascending OrderID; limits rest
    orders = list(zip(buy_ids + sell_ids, _parse(lad.buys) + _parse(lad.sells), strict=True))
    left = [(oid, q - fills.get(oid, 0)) for oid, (px, q) in orders if px is None and q > fills.get(oid, 0)]
    assert _cancels(rows) == sorted(left)
    _no_md_for(rows, {oid for oid, (px, _) in orders if px is None})
    assert _statuses(rows) == [(1, codes.TRADING_STATUS_CONTINUOUS)] and rows[-1]["t"] == "SecurityStatus"
    assert pair.ref.auction_state(1)["ref"] == lad.p  # V > 0: Ref := P (in both state hashes)


# ---------------------------------------------------------------------------- closing auction, reopening


def test_closing_auction_uncrosses_the_continuous_book_with_pre_close_orders() -> None:
    pair = Pair(instrument(1))
    ids = _new_ids(pair.send(
        pair.order("buy", 99, 5, session=1),
        pair.order("sell", 101, 5, session=2),
        pair.order("sell", 103, 12, session=2, max_floor=4),
        pair.order("buy", 101, 3, session=3),  # trades 3 on entry (Continuous)
    ))  # fmt: skip
    o_b99, o_s101, o_ice = ids[0], ids[1], ids[2]
    rows = pair.call("set_phase", 10, [1], PHASE_PRE_CLOSE)
    assert [r["t"] for r in rows] == ["SecurityStatus"] and _statuses(rows) == [(1, codes.TRADING_STATUS_PRE_CLOSE)]
    rows = pair.send(
        pair.order("buy", 104, 10, session=3),  # crosses, rests
        pair.order("sell", None, 4, session=4),  # market Day rests
        pair.order("sell", 100, 1, session=4, tif=codes.TIF_IOC),  # §7.2: rejected in PreClose
        pair.order("sell", 100, 1, session=4, tif=codes.TIF_FOK),  # rejected
        pair.order("buy", 98, 1, session=4, exec_inst=codes.EXEC_INST_POST_ONLY),  # rejected
    )
    assert _trades(rows) == []
    o_b104, o_mkt = _new_ids(rows)
    rejected = [r["ExecReason"] for r in rows if r["t"] == ER and r["ExecType"] == REJECTED]
    assert rejected == [codes.EXEC_REASON_TRADING_STATE_NOT_OPEN] * 3
    # D = 10 at 103-104, S = 4 + 2 + 12 = 18 there: V = 10, I = -8 at both, sell pressure: 103
    assert _indicative(pair.call("publish_indicative", 11)) == [(1, 103, 10, 8, codes.IMBALANCE_SELL)]
    rows = pair.call("set_phase", 12, [1], PHASE_CLOSED)
    _assert_auction_prints(rows, 1, 103, 10)
    assert _fills(rows) == {o_b104: 10, o_mkt: 4, o_s101: 2, o_ice: 4}
    # the iceberg's fill of 4 >= Shown 4: Shown = min(Display 4, Leaves 8) (§7.5 rule 5)
    assert [(r["OrderID"], r["LastQty"], r["LeavesQty"]) for r in rows if r["t"] == OE and r["OrderID"] == o_ice] == [
        (o_ice, 4, 4)
    ]
    _no_md_for(rows, {o_mkt})
    assert _statuses(rows) == [(1, codes.TRADING_STATUS_CLOSED)] and rows[-1]["t"] == "SecurityStatus"
    # Closed: no indicative, new orders rejected, cancels accepted
    assert pair.call("publish_indicative", 13) == []
    rows = pair.send(pair.order("buy", 100, 1, session=5))
    assert [r["ExecType"] for r in rows] == [REJECTED]
    rows = pair.send(pair.cancel(o_ice, "sell", session=2))
    assert _cancels(rows) == [(o_ice, 8)]
    assert {o["order_id"] for o in pair.live()} == {o_b99}


@pytest.mark.parametrize(("allocation", "want"), [(TIME, (5, 1)), (PRO_RATA, (3, 3))], ids=["time", "pro_rata"])
def test_margin_priority_is_prio_seq_not_order_id_after_a_continuous_iceberg_refill(
    allocation: int, want: tuple[int, int]
) -> None:
    """An iceberg refilled in Continuous gets a new PrioSeq behind a later order (§3.6); the
    closing auction's margin then serves the later order first (Time), and ProRata gives it
    the left-over lot: Rm 6 over (5, 8) -> floors (2, 3), left-over 1 to the first by PrioSeq."""
    pair = Pair(instrument(1, allocation=allocation))
    o_ice, o_plain = _new_ids(pair.send(
        pair.order("sell", 100, 10, session=1, max_floor=2),
        pair.order("sell", 100, 5, session=2),
    ))  # fmt: skip
    rows = pair.send(pair.order("buy", 100, 2, session=3))  # takes the iceberg's 2 shown: refill
    assert [r["OrderID"] for r in rows if r["t"] == "AddOrder"] == [o_ice]
    pair.call("set_phase", 1, [1], PHASE_PRE_CLOSE)
    (o_buy,) = _new_ids(pair.send(pair.order("buy", 100, 6, session=3)))
    rows = pair.call("set_phase", 2, [1], PHASE_CLOSED)
    _assert_auction_prints(rows, 1, 100, 6)
    fills = _fills(rows)
    assert (fills[o_plain], fills[o_ice]) == want and fills[o_buy] == 6
    # the pairing follows priority: the plain order (earlier PrioSeq) trades first
    assert [r["OrderID"] for r in rows if r["t"] == OE and r["OrderID"] != o_buy] == [o_plain, o_ice]


def test_halted_instrument_reopens_through_pre_open_and_uncrosses_its_crossed_book() -> None:
    pair = Pair(instrument(1), instrument(2))
    o_b98, o_s102 = _new_ids(pair.send(pair.order("buy", 98, 4, session=1), pair.order("sell", 102, 6, session=2)))
    pair.send(pair.order("buy", 99, 1, session=1, sec=2))
    rows = pair.call("set_phase", 5, [1], PHASE_HALTED)
    assert [(r["t"], r["TradingStatus"], r["HaltReason"]) for r in rows] == [
        ("SecurityStatus", codes.TRADING_STATUS_HALT, codes.HALT_REASON_OPERATOR)
    ]
    rows = pair.send(pair.order("buy", 100, 1, session=3))
    assert [(r["ExecType"], r["ExecReason"]) for r in rows] == [(REJECTED, codes.EXEC_REASON_TRADING_STATE_NOT_OPEN)]
    assert _cancels(pair.send(pair.cancel(o_b98, "buy", session=1))) == [(o_b98, 4)]  # cancels work when Halted
    assert _statuses(pair.call("set_phase", 6, [1], PHASE_PRE_OPEN)) == [(1, codes.TRADING_STATUS_PRE_OPEN)]
    o_b103, o_mkt, o_s101 = _new_ids(pair.send(
        pair.order("buy", 103, 5, session=3),
        pair.order("buy", None, 2, session=3),
        pair.order("sell", 101, 4, session=4),
    ))  # fmt: skip
    # D = 7 up to 103, S = 4 at 101, 10 from 102: V = 7 at 102-103, I = -3: the lowest, 102
    assert _indicative(pair.call("publish_indicative", 6)) == [(1, 102, 7, 3, codes.IMBALANCE_SELL)]
    rows = pair.call("set_phase", 7, [1], PHASE_CONTINUOUS)
    _assert_auction_prints(rows, 1, 102, 7)
    assert _fills(rows) == {o_b103: 5, o_mkt: 2, o_s101: 4, o_s102: 3}
    assert all(r["SecurityID"] == 1 for r in rows if "SecurityID" in r)  # instrument 2 not listed
    assert _statuses(rows) == [(1, codes.TRADING_STATUS_CONTINUOUS)]
    # Continuous again: a crossing order matches on entry against the remainder
    rows = pair.send(pair.order("buy", 102, 1, session=5))
    assert [(r["OrderID"], r["LastLiquidityInd"]) for r in rows if r["t"] == ER and r["ExecType"] == TRADE][1] == (
        o_s102,
        codes.LIQUIDITY_ADDED,
    )


# ---------------------------------------------------------------------------- several instruments


def test_one_set_phase_uncrosses_several_instruments_in_ascending_security_id_order() -> None:
    pair = Pair(
        instrument(1, phase=PHASE_PRE_OPEN),
        instrument(2, phase=PHASE_PRE_OPEN),
        instrument(3, phase=PHASE_PRE_OPEN),
        instrument(4, phase=PHASE_PRE_OPEN, allocation=PRO_RATA),
        instrument(5),
    )
    recs = [
        (4, pair.order("buy", None, 6, session=3, sec=4)),
        (1, pair.order("buy", 101, 5, session=1, sec=1)),
        (4, pair.order("buy", 100, 4, session=1, sec=4, max_floor=2)),
        (2, pair.order("buy", 99, 2, session=1, sec=2)),
        (1, pair.order("sell", 100, 3, session=2, sec=1)),
        (4, pair.order("sell", 99, 3, session=2, sec=4)),
        (2, pair.order("sell", 101, 2, session=2, sec=2)),
        (5, pair.order("buy", 99, 1, session=1, sec=5)),
        (4, pair.order("sell", 100, 5, session=4, sec=4)),
    ]
    ids = _new_ids(pair.send(*(r for _, r in recs)))
    sec_of = {oid: sec for oid, (sec, _) in zip(ids, recs, strict=True)}
    rows = pair.call("set_phase", 9, [4, 2, 3, 1], PHASE_CONTINUOUS)
    assert _statuses(rows) == [(s, codes.TRADING_STATUS_CONTINUOUS) for s in (1, 2, 3, 4)]
    secs = [r["SecurityID"] if "SecurityID" in r else sec_of[r["OrderID"]] for r in rows]
    assert secs == sorted(secs), "one chain per instrument, ascending SecurityID"
    for sec in (1, 2, 3, 4):
        last = max(k for k, s in enumerate(secs) if s == sec)
        assert rows[last]["t"] == "SecurityStatus", f"instrument {sec}: its SecurityStatus must end its chain"
    assert 5 not in secs
    assert [r["t"] for r, s in zip(rows, secs, strict=True) if s in (2, 3)] == ["SecurityStatus"] * 2
    # 1: V = 3 at 100-101 with I = +2: the highest, 101
    _assert_auction_prints(rows, 1, 101, 3)
    # 4: D = 10 at 100, S = 8: V = 8, P = 100; the market fills first, the iceberg gets the rest
    _assert_auction_prints(rows, 4, 100, 8)
    fills = _fills(rows)
    assert [fills.get(oid, 0) for oid in ids] == [6, 3, 2, 0, 3, 3, 0, 0, 5]


def test_set_phase_with_one_disallowed_transition_raises_and_changes_nothing() -> None:
    pair = Pair(instrument(1, phase=PHASE_PRE_OPEN), instrument(2, phase=PHASE_CLOSED))
    pair.send(pair.order("buy", 101, 5, session=1), pair.order("sell", 100, 3, session=2))
    state, ev = pair.ref.state_hash(), pair.ref.event_hash()
    for secs in ([1, 2], [1, 99]):  # Closed -> Continuous is not in §7.1; 99 is not configured
        for eng in (pair.fast, pair.ref):
            with pytest.raises(ValueError):
                eng.set_phase(5, secs, PHASE_CONTINUOUS, new_out())
            assert (eng.state_hash(), eng.event_hash()) == (state, ev)
    rows = pair.call("set_phase", 5, [1], PHASE_CONTINUOUS)
    _assert_auction_prints(rows, 1, 101, 3)


def test_set_phase_to_closed_uncrosses_only_instruments_in_pre_close() -> None:
    pair = Pair(
        instrument(1),
        instrument(2, phase=PHASE_PRE_OPEN),
        instrument(3),
        instrument(4),
    )
    pair.send(
        pair.order("buy", 99, 3, session=1, sec=1),
        pair.order("sell", 102, 3, session=2, sec=1),
        pair.order("buy", 99, 2, session=1, sec=3),
        pair.order("sell", 101, 2, session=2, sec=3),
        pair.order("buy", 98, 1, session=1, sec=4),
    )
    pair.call("set_phase", 1, [1], PHASE_PRE_CLOSE)
    pair.call("set_phase", 2, [4], PHASE_HALTED)
    o_b102, o_mkt, o_s100, o_b101 = _new_ids(pair.send(
        pair.order("buy", 102, 2, session=3, sec=1),
        pair.order("buy", None, 3, session=3, sec=2),
        pair.order("sell", 100, 2, session=4, sec=2),
        pair.order("buy", 101, 1, session=1, sec=2),
    ))  # fmt: skip
    rows = pair.call("set_phase", 3, [4, 3, 2, 1], PHASE_CLOSED)
    assert _statuses(rows) == [(s, codes.TRADING_STATUS_CLOSED) for s in (1, 2, 3, 4)]
    _assert_auction_prints(rows, 1, 102, 2)  # the closing auction of 1
    assert _trades(rows) == _trades(rows, 1) and _cancels(rows) == []  # PreOpen -> Closed: no auction
    assert {o["order_id"] for o in pair.live(2)} == {o_mkt, o_s100, o_b101}
    # 2 opens later: its book (market order included) uncrosses then; D = 4, S = 2: the highest, 101
    pair.call("set_phase", 4, [2], PHASE_PRE_OPEN)
    rows = pair.call("set_phase", 5, [2], PHASE_CONTINUOUS)
    _assert_auction_prints(rows, 2, 101, 2)
    assert _fills(rows) == {o_mkt: 2, o_s100: 2}
    assert _cancels(rows) == [(o_mkt, 1)]
    assert o_b102 not in {o["order_id"] for o in pair.live()}


# ---------------------------------------------------------------------------- market orders, IOC, icebergs, STP


@pytest.mark.parametrize(("allocation", "want"), [(TIME, (12, 3)), (PRO_RATA, (9, 6))], ids=["time", "pro_rata"])
def test_market_orders_on_both_sides_fill_first_and_their_remainders_are_cancelled(
    allocation: int, want: tuple[int, int]
) -> None:
    """Buys M:12 M:9 100:3, sells M:4 99:6 101:5, Ref 100: V = 15 at 101 only. The buy
    markets form the margin level (Time: 12 then 3; ProRata: floors 8 and 6, the left-over lot
    to the first); what they do not get is cancelled (rule 6), ascending OrderID."""
    pair = Pair(instrument(1, phase=PHASE_PRE_OPEN, allocation=allocation))
    rows = pair.send(
        pair.order("buy", None, 12, session=1),
        pair.order("buy", None, 9, session=2),
        pair.order("buy", 100, 3, session=1),
        pair.order("sell", None, 4, session=3),
        pair.order("sell", 99, 6, session=4),
        pair.order("sell", 101, 5, session=4),
    )
    m1, m2, b100, m_sell, s99, s101 = _new_ids(rows)
    _no_md_for(rows, {m1, m2, m_sell})
    rows = pair.call("set_phase", 1, [1], PHASE_CONTINUOUS)
    _assert_auction_prints(rows, 1, 101, 15)
    fills = _fills(rows)
    assert (fills[m1], fills[m2]) == want and b100 not in fills
    assert (fills[m_sell], fills[s99], fills[s101]) == (4, 6, 5)
    assert _cancels(rows) == [(oid, q - f) for oid, q, f in ((m1, 12, want[0]), (m2, 9, want[1])) if q > f]
    assert all(r["ExecReason"] == codes.EXEC_REASON_IOC_FOK_REMAINDER for r in rows
               if r["t"] == ER and r["ExecType"] == CANCELED)  # fmt: skip
    _no_md_for(rows, {m1, m2, m_sell})
    assert [o["order_id"] for o in pair.live()] == [b100]


def test_markets_only_book_clears_at_ref_moved_by_set_reference() -> None:
    pair = Pair(instrument(1, phase=PHASE_PRE_OPEN))
    m_buy, m_sell = _new_ids(pair.send(pair.order("buy", None, 30, session=1), pair.order("sell", None, 20, session=2)))
    pair.set_reference(1, 1, 97)
    # every candidate is Ref alone: P = 97, V = 20, I = +10
    assert _indicative(pair.call("publish_indicative", 2)) == [(1, 97, 20, 10, codes.IMBALANCE_BUY)]
    rows = pair.call("set_phase", 3, [1], PHASE_CONTINUOUS)
    _assert_auction_prints(rows, 1, 97, 20)
    assert _cancels(rows) == [(m_buy, 10)]
    _no_md_for(rows, {m_buy, m_sell})
    # no limit order ever rested: no BookLevel or BestBidOffer either
    assert [r["t"] for r in rows if r["dest"] == codes.MD_DEST] == ["Trade", "SecurityStatus"]
    assert pair.live() == []


def test_ioc_orders_left_by_fba_are_filled_then_cancelled_by_the_closing_auction() -> None:
    pair = Pair(instrument(1, fba_interval_ns=1_000))
    rows = pair.send(
        pair.order("buy", 99, 3, session=1, tif=codes.TIF_IOC),
        pair.order("buy", 98, 1, session=1, tif=codes.TIF_IOC),
        pair.order("sell", None, 2, session=2, tif=codes.TIF_IOC),
        pair.order("sell", 101, 4, session=2),
    )
    i99, i98, m_sell, s101 = _new_ids(rows)
    assert _trades(rows) == [] and _cancels(rows) == []  # FBA Continuous: IOCs rest until the next tick
    pair.call("set_phase", 1, [1], PHASE_PRE_CLOSE)  # no auction: the IOCs stay
    assert len(pair.live(1)) == 4
    rows = pair.call("set_phase", 2, [1], PHASE_CLOSED)
    # D = 4 at 98, 3 at 99; S = 2 below 101: V = 2 at 98-99, |I| least at 99
    _assert_auction_prints(rows, 1, 99, 2)
    assert _fills(rows) == {i99: 2, m_sell: 2}
    assert _cancels(rows) == [(i99, 1), (i98, 1)]
    # an IOC limit also leaves the MD book (OrderDelete); the market order has no MD record
    assert [r["OrderID"] for r in rows if r["t"] == "OrderDelete"] == [i99, i98]
    _no_md_for(rows, {m_sell})
    assert [o["order_id"] for o in pair.live()] == [s101]
    assert rows[-1]["t"] == "SecurityStatus"


@pytest.mark.parametrize(
    ("buys", "sells", "want_v", "want_oe"),
    [
        # iceberg 20 (Display 5) then a plain 4 at 100; buys 102:4 100:5 100:3: P = 100, V = 12,
        # more than the 9 shown lots. Fills 4 < Shown 5 -> Shown 1; 5 >= 1 -> min(5, 11) = 5;
        # 3 < 5 -> 2 (§7.5 rule 5); OrderExecuted LeavesQty carries Shown after each fill
        pytest.param([(102, 4, 0), (100, 5, 0), (100, 3, 0)], [(100, 20, 5), (100, 4, 0)], 12,
                     [(4, 1), (5, 5), (3, 2)], id="shown_cut_then_reset"),
        # a fill leaving Leaves under Display: Shown = Leaves
        pytest.param([(100, 7, 0)], [(100, 10, 6)], 7, [(7, 3)], id="leaves_under_display"),
        # the iceberg fills completely: LeavesQty 0
        pytest.param([(101, 9, 0)], [(100, 9, 2)], 9, [(9, 0)], id="filled_completely"),
        # a buy iceberg against two sells: 3 < Shown 4 -> 1; then 2 >= 1 -> min(4, 7) = 4
        pytest.param([(100, 12, 4)], [(99, 3, 0), (100, 2, 0)], 5, [(3, 1), (2, 4)], id="buy_iceberg"),
    ],
)  # fmt: skip
def test_iceberg_hidden_lots_take_part_and_order_executed_carries_shown_after_the_fill(
    buys: list[tuple[int, int, int]], sells: list[tuple[int, int, int]], want_v: int, want_oe: list[tuple[int, int]]
) -> None:
    pair = Pair(instrument(1, phase=PHASE_PRE_OPEN))
    recs = [pair.order("buy", px, q, session=1, **({"max_floor": f} if f else {})) for px, q, f in buys]
    recs += [pair.order("sell", px, q, session=2, **({"max_floor": f} if f else {})) for px, q, f in sells]
    ids = _new_ids(pair.send(*recs))
    ice = next(oid for oid, (_, _, f) in zip(ids, buys + sells, strict=True) if f)
    prio_before = {o["order_id"]: o["prio"] for o in pair.live()}
    rows = pair.call("set_phase", 1, [1], PHASE_CONTINUOUS)
    assert sum(r["LastQty"] for r in _trades(rows)) == want_v
    assert [(r["LastQty"], r["LeavesQty"]) for r in rows if r["t"] == OE and r["OrderID"] == ice] == want_oe
    assert not any(r["t"] == "AddOrder" for r in rows)  # no refill record in an uncross
    for o in pair.live():
        assert o["prio"] == prio_before[o["order_id"]]  # queue place kept
    # continuous trading then takes over on the same book (refills included)
    side = "sell" if any(o["side"] == codes.SIDE_BUY for o in pair.live()) else "buy"
    pair.send(pair.order(side, None, 15, session=5))


def test_same_account_and_stp_group_on_both_sides_still_trade_in_the_uncross() -> None:
    config = EngineConfig(
        max_orders=64, max_levels=32, max_instruments=2, max_sessions=16, event_hash=True, stp_groups={1: 9, 2: 9}
    )
    pair = Pair(instrument(1, phase=PHASE_PRE_OPEN), config=config)
    both = codes.SMP_CANCEL_BOTH
    buy, own_sell, group_sell = _new_ids(pair.send(
        pair.order("buy", 101, 5, session=1, smp=both),
        pair.order("sell", 100, 3, session=1, smp=both),  # same session and account
        pair.order("sell", 100, 2, session=2, smp=both),  # another account, same STP group
    ))  # fmt: skip
    rows = pair.call("set_phase", 1, [1], PHASE_CONTINUOUS)
    # V = 5 at 100-101 with I = 0 at both: the one closest to Ref, 100
    _assert_auction_prints(rows, 1, 100, 5)
    assert _fills(rows) == {buy: 5, own_sell: 3, group_sell: 2}
    assert _cancels(rows) == []
    first = [r for r in rows if r["t"] == ER][:2]
    assert [(r["OrderID"], r["dest"]) for r in first] == [(buy, 1), (own_sell, 1)]


@pytest.mark.parametrize("via", ["opening", "fba_tick"])
@pytest.mark.parametrize(
    ("buys", "sells", "allocation", "want"),
    [
        # §7.7: Rm 10 over (7, 5, 3) -> (5, 3, 2); Rm 7 over (4, 4, 4) -> (3, 2, 2)
        pytest.param("10:7 10:5 10:3", "10:10", PRO_RATA, [5, 3, 2], id="pro_rata_7_5_3"),
        pytest.param("10:4 10:4 10:4", "10:7", PRO_RATA, [3, 2, 2], id="pro_rata_4_4_4"),
        # five left-over lots: every floor is 0
        pytest.param("10:1 10:1 10:1 10:1 10:1 10:1 10:1", "10:5", PRO_RATA, [1, 1, 1, 1, 1, 0, 0],
                     id="pro_rata_all_left_over"),
        pytest.param("10:3 10:3 10:3", "10:4", PRO_RATA, [2, 1, 1], id="pro_rata_3_3_3"),
        # a whole better level first, then the margin
        pytest.param("11:2 10:7 10:5 10:3", "10:12", PRO_RATA, [2, 5, 3, 2], id="pro_rata_after_a_full_level"),
        pytest.param("11:2 10:7 10:5 10:3", "10:12", TIME, [2, 7, 3, 0], id="time_after_a_full_level"),
        pytest.param("10:4 10:6 10:5", "10:12", TIME, [4, 6, 2], id="time_4_6_5"),
        # market orders are the first level, also under ProRata
        pytest.param("M:6 M:4 10:5", "10:5", PRO_RATA, [3, 2, 0], id="pro_rata_markets"),
        pytest.param("M:6 M:4 10:5", "10:5", TIME, [5, 0, 0], id="time_markets"),
    ],
)  # fmt: skip
def test_margin_level_allocation_time_and_pro_rata_with_left_over_lots(
    via: str, buys: str, sells: str, allocation: int, want: list[int]
) -> None:
    if via == "opening":
        pair = Pair(instrument(1, ref=10, band_width=5, phase=PHASE_PRE_OPEN, allocation=allocation))
    else:
        pair = Pair(instrument(1, ref=10, band_width=5, fba_interval_ns=0, allocation=allocation))
    buy_ids, sell_ids = _load(pair, buys, sells)
    if via == "opening":
        rows = pair.call("set_phase", 1, [1], PHASE_CONTINUOUS)
    else:
        rows = pair.call("auction_tick", 1)
        assert _statuses(rows) == []  # a tick emits no SecurityStatus
    fills = _fills(rows)
    assert [fills.get(oid, 0) for oid in buy_ids] == want
    assert all(fills.get(oid, 0) == q for oid, (_, q) in zip(sell_ids, _parse(sells), strict=True))


# ---------------------------------------------------------------------------- frequent batch auctions (§7.6)


def _next_uncross(pair: Pair, sec: int) -> int | None:
    return pair.ref.auction_state(sec)["next_uncross"]


def test_fba_orders_rest_without_matching_and_ticks_uncross_only_when_due() -> None:
    interval = 1_000_000
    pair = Pair(instrument(1, fba_interval_ns=0), instrument(2, fba_interval_ns=interval), instrument(3))
    rows = pair.send(
        pair.order("buy", 100, 3, session=1, sec=1),
        pair.order("sell", 100, 2, session=2, sec=1),
        pair.order("buy", 101, 4, session=1, sec=2, tif=codes.TIF_IOC),  # rests until the tick
        pair.order("sell", 100, 4, session=2, sec=2),
        pair.order("buy", 100, 1, session=1, sec=3),
        pair.order("sell", 100, 1, session=2, sec=3),  # plain Continuous: trades on entry
    )
    assert {r["SecurityID"] for r in _trades(rows)} == {3}
    assert _cancels(rows) == []
    assert [s for s, *_ in _indicative(pair.call("publish_indicative", 1))] == [1, 2]
    # NextUncross starts at 0: both are due on the first tick
    t1 = 5_300_000
    rows = pair.call("auction_tick", t1)
    _assert_auction_prints(rows, 1, 100, 2)
    _assert_auction_prints(rows, 2, 100, 4)  # V = 4 at 100-101, I = 0: closest to Ref
    assert _statuses(rows) == []
    assert (_next_uncross(pair, 1), _next_uncross(pair, 2)) == (0, (t1 // interval + 1) * interval)
    assert _next_uncross(pair, 2) == 6_000_000
    pair.send(
        pair.order("sell", 99, 1, session=2, sec=1),  # crosses the buy left in 1
        pair.order("buy", 100, 1, session=1, sec=2),
        pair.order("sell", 100, 1, session=2, sec=2),
    )
    rows = pair.call("auction_tick", 5_999_999)  # 2 is not due; 1 (interval 0) always is
    assert {r["SecurityID"] for r in _trades(rows)} == {1}
    assert _next_uncross(pair, 2) == 6_000_000
    rows = pair.call("auction_tick", 6_000_000)
    assert {r["SecurityID"] for r in _trades(rows)} == {2}
    assert _next_uncross(pair, 2) == 7_000_000
    # t = max(now, LastTime): an earlier `now` runs at 6_000_000, not due
    assert pair.call("auction_tick", 1) == []
    assert _next_uncross(pair, 2) == 7_000_000
    # an uncross without orders emits nothing but still moves NextUncross (in the state hash)
    assert pair.call("auction_tick", 9_500_000) == []
    assert _next_uncross(pair, 2) == 10_000_000
    # only Continuous FBA instruments tick
    pair.call("set_phase", 9_500_000, [2], PHASE_HALTED)
    pair.call("auction_tick", 20_000_000)
    assert _next_uncross(pair, 2) == 10_000_000


def test_fba_interval_zero_uncrosses_on_every_tick_at_the_same_time() -> None:
    pair = Pair(instrument(1, fba_interval_ns=0))
    for _ in range(3):
        pair.send(pair.order("buy", 100, 2, session=1), pair.order("sell", 100, 2, session=2))
        rows = pair.call("auction_tick", 7)
        _assert_auction_prints(rows, 1, 100, 2)
        assert _next_uncross(pair, 1) == 0
    assert pair.call("auction_tick", 7) == []


def test_fba_tick_cancels_market_and_ioc_remainders_in_order_id_order() -> None:
    pair = Pair(instrument(1, fba_interval_ns=0))
    s100, i101, m_buy, i105 = _new_ids(pair.send(
        pair.order("sell", 100, 3, session=2),
        pair.order("buy", 101, 5, session=1, tif=codes.TIF_IOC),
        pair.order("buy", None, 4, session=1, tif=codes.TIF_IOC),
        pair.order("sell", 105, 2, session=2, tif=codes.TIF_IOC),
    ))  # fmt: skip
    # D = 9 up to 101 and 4 above, S = 3 below 105 and 5 at 105: V = 4 at 102-105, I = -1 at 105
    rows = pair.call("auction_tick", 1)
    _assert_auction_prints(rows, 1, 105, 4)
    assert _fills(rows) == {m_buy: 4, s100: 3, i105: 1}
    assert _cancels(rows) == [(i101, 5), (i105, 1)]
    assert [r["OrderID"] for r in rows if r["t"] == "OrderDelete"] == [i101, i105]
    assert _statuses(rows) == [] and pair.live() == []


# ---------------------------------------------------------------------------- indicative (§7.3)


def test_publish_indicative_only_for_call_phases_and_fba_only_on_change_and_reset_by_phase_changes() -> None:
    pair = Pair(
        instrument(1, phase=PHASE_PRE_OPEN),
        instrument(2),  # -> PreClose
        instrument(3, fba_interval_ns=0),
        instrument(4),  # Continuous without FBA: never
        instrument(5, phase=PHASE_CLOSED),  # never
    )
    assert pair.call("publish_indicative", 1) == []  # no cross: the initial values
    pair.call("set_phase", 1, [2], PHASE_PRE_CLOSE)
    ids = _new_ids(pair.send(
        pair.order("buy", 101, 8, session=1, sec=1),
        pair.order("sell", 100, 5, session=2, sec=1),
        pair.order("buy", 100, 2, session=1, sec=2),
        pair.order("sell", 100, 2, session=2, sec=2),
        pair.order("buy", 99, 4, session=1, sec=3),
        pair.order("sell", 99, 1, session=2, sec=3),
        pair.order("buy", 99, 1, session=1, sec=4),
        pair.order("sell", 101, 1, session=2, sec=4),
        pair.order("buy", 100, 1, session=1, sec=5),  # rejected: Closed
    ))  # fmt: skip
    assert len(ids) == 8
    rows = pair.call("publish_indicative", 2)
    assert _indicative(rows) == [
        (1, 101, 5, 3, codes.IMBALANCE_BUY),
        (2, 100, 2, 0, codes.IMBALANCE_NONE),
        (3, 99, 1, 3, codes.IMBALANCE_BUY),
    ]
    assert all(r["MatchEventIndicator"] == codes.MEI_END_OF_EVENT and r["TransactTime"] == 2 for r in rows)
    assert pair.call("publish_indicative", 3) == []  # unchanged: not again
    (b100,) = _new_ids(pair.send(pair.order("buy", 100, 1, session=1, sec=1)))  # (P, V, |I|, side) unchanged
    assert pair.call("publish_indicative", 3) == []
    pair.send(pair.order("sell", 100, 1, session=2, sec=2))
    assert _indicative(pair.call("publish_indicative", 3)) == [(2, 100, 2, 1, codes.IMBALANCE_SELL)]
    pair.send(pair.cancel(ids[0], "buy", session=1, sec=1), pair.cancel(b100, "buy", session=1, sec=1))
    assert _indicative(pair.call("publish_indicative", 3)) == [(1, codes.NULL_PRICE, 0, 0, codes.IMBALANCE_NONE)]
    # a phase change resets the published values without output
    pair.call("set_phase", 4, [3], PHASE_HALTED)
    assert pair.ref.auction_state(3)["ind_v"] == 0
    assert pair.call("publish_indicative", 4) == []  # Halted: nothing
    pair.call("set_phase", 5, [3], PHASE_PRE_OPEN)
    assert _indicative(pair.call("publish_indicative", 5)) == [(3, 99, 1, 3, codes.IMBALANCE_BUY)]
    pair.call("set_phase", 6, [2], PHASE_CLOSED)  # the closing auction of 2
    pair.call("set_phase", 7, [1], PHASE_CONTINUOUS)  # no cross in 1 any more
    assert pair.call("publish_indicative", 8) == []  # 1: Continuous without FBA; 2: Closed; 3: unchanged
    pair.send(pair.order("sell", 99, 2, session=2, sec=3))
    assert _indicative(pair.call("publish_indicative", 9)) == [(3, 99, 3, 1, codes.IMBALANCE_BUY)]


# ---------------------------------------------------------------------------- OUTPUT_FULL (§2.4)


def _u(pair: Pair, secs: list[int]) -> int:
    """§2.4 U of set_phase / auction_tick over ``secs``: 16 + sum(8 x live orders + 2)."""
    return 16 + sum(8 * len(pair.live(s)) + 2 for s in secs)


def _case_set_phase() -> tuple[tuple[InstrumentConfig, ...], Any]:
    insts = (
        instrument(1, ref=46, band_width=100, phase=PHASE_PRE_OPEN),
        instrument(2, phase=PHASE_PRE_OPEN, allocation=PRO_RATA),
        instrument(3, phase=PHASE_PRE_OPEN),
    )

    def build(pair: Pair) -> tuple[str, tuple[Any, ...], int]:
        lad = LADDERS["cme1"]
        _load(pair, lad.buys, lad.sells, sec=1)
        pair.send(
            pair.order("sell", None, 7, session=3, sec=1),
            pair.order("sell", 45, 30, session=3, sec=1, max_floor=4),
            pair.order("buy", 47, 12, session=3, sec=1, max_floor=5),
            pair.order("buy", 101, 3, session=1, sec=2),
            pair.order("sell", 100, 4, session=2, sec=2),
            pair.order("buy", None, 2, session=1, sec=2),
            pair.order("buy", 100, 1, session=1, sec=3),
            pair.order("sell", 100, 1, session=2, sec=3),
        )
        return "set_phase", (50, [2, 1], PHASE_CONTINUOUS), _u(pair, [1, 2])

    return insts, build


def _case_auction_tick() -> tuple[tuple[InstrumentConfig, ...], Any]:
    insts = (
        instrument(1, fba_interval_ns=0),
        instrument(2, fba_interval_ns=1_000, allocation=PRO_RATA),
        instrument(3, fba_interval_ns=1_000_000),
        instrument(4),
    )

    def build(pair: Pair) -> tuple[str, tuple[Any, ...], int]:
        pair.send(
            *(pair.order(side, 100, 1, session=s, sec=sec) for sec in (2, 3) for side, s in (("buy", 1), ("sell", 2)))
        )
        pair.call("auction_tick", 1_000_500)  # NextUncross: 2 -> 1_001_000, 3 -> 2_000_000
        pair.send(
            pair.order("buy", 100, 5, session=1, sec=1, max_floor=2),
            pair.order("sell", 99, 3, session=2, sec=1),
            pair.order("sell", None, 1, session=2, sec=1),
            pair.order("buy", 101, 2, session=1, sec=1, tif=codes.TIF_IOC),
            pair.order("buy", 100, 2, session=1, sec=2),
            pair.order("buy", 100, 3, session=3, sec=2),
            pair.order("sell", 100, 4, session=2, sec=2),
            pair.order("sell", 98, 1, session=3, sec=2, tif=codes.TIF_IOC),
            pair.order("buy", 100, 1, session=1, sec=3),
            pair.order("sell", 100, 1, session=2, sec=3),
            pair.order("buy", 99, 1, session=1, sec=4),
        )
        # at 1_500_000 instruments 1 and 2 are due, 3 is not: U counts 1 and 2 only
        return "auction_tick", (1_500_000,), _u(pair, [1, 2])

    return insts, build


def _case_indicative() -> tuple[tuple[InstrumentConfig, ...], Any]:
    insts = (instrument(1, phase=PHASE_PRE_OPEN), instrument(2, fba_interval_ns=0), instrument(3))

    def build(pair: Pair) -> tuple[str, tuple[Any, ...], int]:
        for sec in (1, 2):
            pair.send(pair.order("buy", 101, 3, session=1, sec=sec), pair.order("sell", 100, 2, session=2, sec=sec))
        return "publish_indicative", (5,), 16 + 3  # 16 + configured instruments

    return insts, build


OUTPUT_FULL_CASES = {"set_phase": _case_set_phase, "auction_tick": _case_auction_tick, "indicative": _case_indicative}


@pytest.mark.parametrize("case", sorted(OUTPUT_FULL_CASES))
def test_output_full_changes_nothing_and_the_retry_matches_an_unbounded_run(case: str) -> None:
    insts, build = OUTPUT_FULL_CASES[case]()
    twin = Pair(*insts)
    name, args, u = build(twin)
    _, want, rows = twin.run(name, *args, size=BIG)
    assert len(rows) > 1 and len(rows) <= u
    pair = Pair(*insts)
    assert build(pair) == (name, args, u)
    state = pair.ref.state_hash()
    for size in (1, 8, 16, 17, u - 1):
        if size >= u:
            continue
        link = pair.ref.event_hash()
        res, raw, _ = pair.run(name, *args, size=size)  # both engines alike, hashes included
        assert tuple(res) == (OUTPUT_FULL, 0, 0, u) and raw == b""
        assert pair.ref.state_hash() == state  # nothing changed (LastTime included)
        assert pair.ref.event_hash() != link  # but the call is one (empty) §5 link
    res, raw, _ = pair.run(name, *args, size=u)
    assert res.status == STATUS_OK and res.consumed == 1 and res.written <= u
    assert raw == want
    assert pair.ref.state_hash() == twin.ref.state_hash()


# ---------------------------------------------------------------------------- random books (Hypothesis)


def _price_offset(width: int) -> st.SearchStrategy[int | None]:
    """None (a market order) about one time in six, else a limit price offset in [-width, width]."""
    return st.tuples(st.integers(0, 5), st.integers(-width, width)).map(lambda t: None if t[0] == 5 else t[1])


_CALL_ORDER = st.tuples(
    st.integers(0, 2),  # instrument index (mod the instrument count)
    st.booleans(),  # buy
    _price_offset(6),  # None = market, else price - Ref
    st.integers(1, 30),  # OrderQty
    st.sampled_from([0, 0, 0, 1, 3, 8, 40]),  # MaxFloor (0 = none; >= OrderQty acts as none)
    st.sampled_from([codes.TIF_DAY, codes.TIF_DAY, codes.TIF_GTC]),
    st.integers(1, 4),  # session
)


def _random_order(pair: Pair, secs: list[int], refs: dict[int, int], spec: tuple[Any, ...], now: int) -> np.ndarray:
    k, buy, offset, qty, floor, tif, session = spec
    sec = secs[k % len(secs)]
    kw: dict[str, Any] = {"recv": now}
    if offset is None:
        price = None  # market Day: resting in call phases and FBA (§7.2)
    else:
        price = refs[sec] + offset
        kw["tif"] = tif
        if floor:
            kw["max_floor"] = floor
    return pair.order("buy" if buy else "sell", price, qty, session=session, sec=sec, **kw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    n=st.integers(1, 3),
    refs=st.lists(st.integers(60, 140), min_size=3, max_size=3),
    allocations=st.lists(st.sampled_from([TIME, PRO_RATA]), min_size=3, max_size=3),
    orders=st.lists(_CALL_ORDER, min_size=4, max_size=30),
    splits=st.lists(st.integers(1, 8), min_size=1, max_size=30),
    moves=st.lists(st.tuples(st.integers(0, 2), st.integers(-4, 4)), max_size=2),
    first=st.sets(st.integers(0, 2), min_size=1),
    size=st.sampled_from([1, 16, 40, BIG]),
)
def test_random_call_phase_books_uncross_alike(
    n: int,
    refs: list[int],
    allocations: list[int],
    orders: list[tuple[Any, ...]],
    splits: list[int],
    moves: list[tuple[int, int]],
    first: set[int],
    size: int,
) -> None:
    """1-3 instruments in PreOpen with random books (sides, limits around Ref inside the band,
    markets, icebergs), random Refs (some moved by set_reference before the open), sent in
    random batches; the indicative, the opening uncross of some instruments (through a small
    buffer, resumed on OUTPUT_FULL), then of the others, then continuous orders on the result."""
    secs = list(range(1, n + 1))
    ref_of = {s: refs[s - 1] for s in secs}
    pair = Pair(*(instrument(s, ref=ref_of[s], band_width=8, phase=PHASE_PRE_OPEN, allocation=allocations[s - 1])
                  for s in secs))  # fmt: skip
    recs = [_random_order(pair, secs, ref_of, spec, 0) for spec in orders]
    k = 0
    for cut in splits * (len(recs) // len(splits) + 1):
        if k >= len(recs):
            break
        pair.send(*recs[k : k + cut])
        k += cut
    for j, d in moves:
        sec = secs[j % n]
        pair.set_reference(0, sec, ref_of[sec] + d)
    pair.call("publish_indicative", 1)
    first_secs = sorted({secs[j % n] for j in first}, reverse=True)
    res, _, rows = pair.run("set_phase", 2, first_secs, PHASE_CONTINUOUS, size=size)
    if res.status == OUTPUT_FULL:
        assert res.needed == _u(pair, first_secs)
        rows = pair.call("set_phase", 2, first_secs, PHASE_CONTINUOUS, size=res.needed)
    rest = [s for s in secs if s not in first_secs]
    if rest:
        rows += pair.call("set_phase", 3, rest, PHASE_CONTINUOUS)
    event("uncrosses with fills" if _trades(rows) else "uncrosses without fills")
    if _cancels(rows):
        event("market remainders cancelled")
    for sec in secs:
        pair.send(pair.order("buy", None, 7, session=5, sec=sec), pair.order("sell", None, 7, session=6, sec=sec))


_FBA_ORDER = st.tuples(
    st.just("order"),
    st.integers(0, 1),  # instrument index
    st.booleans(),  # buy
    _price_offset(3),  # None = market, else price - 100
    st.integers(1, 20),  # OrderQty
    st.sampled_from([0, 0, 0, 2, 5]),  # MaxFloor (limit Day/GTC only)
    st.sampled_from([codes.TIF_DAY, codes.TIF_GTC, codes.TIF_IOC, codes.TIF_IOC]),
    st.integers(1, 4),  # session
)
_FBA_OTHER = {
    "cancel": st.tuples(st.just("cancel"), st.integers(0, 50)),  # which live order
    # time step, then the output buffer (resumed with `needed` on OUTPUT_FULL)
    "tick": st.tuples(st.just("tick"), st.sampled_from([0, 1, 499, 1_000, 250_000, 1_000_000]),
                      st.sampled_from([1, 8, BIG])),
    "indicative": st.tuples(st.just("indicative"), st.sampled_from([1, 17, BIG])),
}  # fmt: skip
#: orders about half the steps
_FBA_STEP = st.sampled_from(["order"] * 4 + ["cancel", "tick", "tick", "indicative"]).flatmap(
    lambda kind: _FBA_ORDER if kind == "order" else _FBA_OTHER[kind]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    intervals=st.lists(st.sampled_from([0, 1_000, 1_000_000]), min_size=2, max_size=2),
    allocations=st.lists(st.sampled_from([TIME, PRO_RATA]), min_size=2, max_size=2),
    steps=st.lists(_FBA_STEP, min_size=12, max_size=50),
    close=st.booleans(),
)
def test_random_fba_streams_with_ticks_indicatives_orders_and_cancels_agree(
    intervals: list[int], allocations: list[int], steps: list[tuple[Any, ...]], close: bool
) -> None:
    """Two FBA instruments in Continuous (beside a plain one that ticks and indicatives must
    skip): new orders (limits, markets, IOCs, icebergs), cancels of live orders, auction ticks
    as time moves and indicative publications, commands sometimes through small buffers
    (resumed on OUTPUT_FULL); at the end PreClose and the closing auction, or a halt and a
    reopening auction."""
    insts = [instrument(s + 1, fba_interval_ns=intervals[s], allocation=allocations[s]) for s in range(2)]
    pair = Pair(*insts, instrument(3))
    secs = [1, 2]
    refs = {1: 100, 2: 100}
    now = 1_000
    for step in steps:
        kind = step[0]
        if kind == "order":
            _, k, buy, offset, qty, floor, tif, session = step
            spec_tif = tif if offset is not None or tif == codes.TIF_IOC else codes.TIF_DAY
            if offset is None:
                rec = pair.order("buy" if buy else "sell", None, qty, session=session, sec=secs[k], tif=spec_tif,
                                 recv=now)  # fmt: skip
            else:
                kw: dict[str, Any] = {"tif": tif, "recv": now}
                if floor and tif != codes.TIF_IOC:
                    kw["max_floor"] = floor
                rec = pair.order("buy" if buy else "sell", refs[secs[k]] + offset, qty, session=session, sec=secs[k],
                                 **kw)  # fmt: skip
            rows = pair.send(rec)
            assert _trades(rows) == []  # FBA Continuous never matches on entry
        elif kind == "cancel":
            live = pair.live()
            if not live:
                continue
            o = live[step[1] % len(live)]
            side = "buy" if o["side"] == codes.SIDE_BUY else "sell"
            pair.send(pair.cancel(o["order_id"], side, session=o["session"], sec=o["security_id"]))
        else:
            if kind == "tick":
                now += step[1]
                name, args, size = "auction_tick", (now,), step[2]
            else:
                name, args, size = "publish_indicative", (now,), step[1]
            res, _, rows = pair.run(name, *args, size=size)
            if res.status == OUTPUT_FULL:
                rows = pair.call(name, *args, size=res.needed)
            if kind == "tick" and _trades(rows):
                event("tick with fills")
    if close:
        pair.call("set_phase", now, [2, 1], PHASE_PRE_CLOSE)
        pair.call("publish_indicative", now)
        rows = pair.call("set_phase", now + 1, [1, 2], PHASE_CLOSED)
    else:
        pair.call("set_phase", now, [1, 2], PHASE_HALTED)
        pair.call("set_phase", now, [1, 2], PHASE_PRE_OPEN)
        rows = pair.call("set_phase", now + 1, [1, 2], PHASE_CONTINUOUS)
    if _trades(rows):
        event("final auction with fills")
    # §7.5 rule 6: no market or IOC order survives an uncross
    assert not any(o["tif"] == codes.TIF_IOC or o["market"] for o in pair.live())
