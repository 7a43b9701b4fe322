"""Plain-Python reference matching engine (ENGINE.md §9), written from ENGINE.md and WIRE.md only.

Theory of operation. State is ordinary Python objects: one ``_Order`` per live order, per
instrument two ``_Side`` objects holding a ``price -> _Level`` map plus a sorted price list
(bisect) and a PrioSeq-ordered queue of resting market orders. Every iteration that can
influence output goes through a sorted list, never through dict order. Each inbound record
or command builds one chain of output records in ``self._chain``; every mutation of a
price level first records the level's (size, count) and the instrument's BBO as they were
at the chain's start (``_touch``), and the end-of-event block diffs against those. The
MatchEventIndicator bits are set when a chain is finished, because "last record of the
instrument in the chain" is only known then. Output records are 64 bytes (60 message
bytes then ``dest`` u32 LE), which is exactly what the event hash consumes, so a call's
output buffer is hashed as is.

Auctions (ENGINE.md §7). ``set_phase`` runs the uncross of the auction transitions
(PreOpen -> Continuous, PreClose -> Closed; a halted instrument reopens through PreOpen),
``auction_tick`` the frequent batch auctions of §7.6 and ``publish_indicative`` the
IndicativeAuction records of §7.3. :func:`clearing_price` is §7.4's four-step rule,
evaluated over the limit prices, Ref and the ticks next to them inside each gap (D and S
are constant inside a gap, so that set yields the same P as every tick; the unit tests
compare it with every tick). ``_uncross`` then follows §7.5 step by step: per-side
allocation (whole levels, then the margin by time or pro rata), the two-pointer pairing
with its five records per fill, the iceberg Shown rule, the market/IOC remainder
cancels, the end-of-event block. With ``check=True`` the §7.5 rule 7 properties are
checked after every uncross.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final

import numpy as np

from qfix.engine.config import (
    ALLOCATION_PRO_RATA,
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
    ConfigError,
    EngineConfig,
    InstrumentConfig,
    check_band,
)
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK, EngineInvariantError, ProcessResult
from qfix.wire import codes as C  # noqa: N812 - the code tables are read on every line
from qfix.wire import schema

__all__ = ["ReferenceEngine", "clearing_price", "output_bound_new_order"]

BUY: Final = 0
SELL: Final = 1
_U32_MAX: Final = 2**32 - 1
_NS_PER_DAY: Final = 86_400 * 10**9
_INBOUND_SIZE: Final = 80
_OUT_SIZE: Final = 64
#: ENGINE.md §2.4 U of the auction commands: a base, then per instrument changed or uncrossed
#: a share per live order (5 fill records, 2 cancel records, 1 BookLevel) and 2 (BBO, status)
_U_BASE: Final = 16
_U_AUCTION_PER_ORDER: Final = 8
_U_AUCTION_PER_INSTRUMENT: Final = 2

# struct formats of WIRE.md §3 with char fields as B and Reserved as pad bytes
_ER = struct.Struct("<HHHHQQQQqIIBBBB")
_OCR = struct.Struct("<HHHHQQQQQBBBB8x")
_OMCR = struct.Struct("<HHHHQQQIIBBBBIB11x")
_SEC_STATUS = struct.Struct("<HHHHQIIBB33xB")
_ADD_ORDER = struct.Struct("<HHHHQIIQqIB14xB")
_ORDER_EXECUTED = struct.Struct("<HHHHQIIQqIIQB2xB")
_ORDER_REDUCED = struct.Struct("<HHHHQIIQII19xB")
_ORDER_DELETE = struct.Struct("<HHHHQIIQ27xB")
_ORDER_REPLACE = struct.Struct("<HHHHQIIQQqIB6xB")
_TRADE = struct.Struct("<HHHHQIIQqIBB13xB")
_BOOK_LEVEL = struct.Struct("<HHHHQIIqQIBB13xB")
_BBO = struct.Struct("<HHHHQIIqqQQ3xB")
_INDICATIVE = struct.Struct("<HHHHQIIqQQB10xB")

# inbound layouts (message part), char fields as B, Reserved kept for completeness
_HDR = struct.Struct("<HHHH")
_NOS = struct.Struct("<8xQQqIIIIIBBBBB1xH")
_OCRQ = struct.Struct("<8xQQQQIB15x")
_OCRR = struct.Struct("<8xQQQqIIIBBBBI")
_OMCRQ = struct.Struct("<8xQQIIBB26x")
_INB_TAIL = struct.Struct("<II4xQ")

_STATE_HEAD = struct.Struct("<8sQQQQQ")
_STATE_SESSION = struct.Struct("<IQ")
_STATE_INSTR = struct.Struct("<IBqQqqqBI")
_STATE_ORDER = struct.Struct("<QQIIIBBBBBHqqqqqqQ")

#: templates whose OrderID sits at message offset 24
_OID_AT_24: Final = frozenset(
    {
        C.TEMPLATE_EXECUTION_REPORT,
        C.TEMPLATE_ORDER_CANCEL_REJECT,
        C.TEMPLATE_ADD_ORDER,
        C.TEMPLATE_ORDER_EXECUTED,
        C.TEMPLATE_ORDER_DELETE,
    }
)
_VALID_TIF: Final = frozenset({C.TIF_DAY, C.TIF_GTC, C.TIF_IOC, C.TIF_FOK, C.TIF_GTD})
_RESTING_TIF: Final = frozenset({C.TIF_DAY, C.TIF_GTC, C.TIF_GTD})
_VALID_SMP: Final = frozenset(
    {C.SMP_CANCEL_AGGRESSIVE, C.SMP_CANCEL_PASSIVE, C.SMP_CANCEL_BOTH, C.SMP_DECREMENT, C.SMP_DEFAULT}
)
_TRADING_STATUS: Final = {
    PHASE_CLOSED: C.TRADING_STATUS_CLOSED,
    PHASE_PRE_OPEN: C.TRADING_STATUS_PRE_OPEN,
    PHASE_CONTINUOUS: C.TRADING_STATUS_CONTINUOUS,
    PHASE_PRE_CLOSE: C.TRADING_STATUS_PRE_CLOSE,
    PHASE_HALTED: C.TRADING_STATUS_HALT,
}
#: ENGINE.md §7.1: (from, to) -> needs an uncross
_TRANSITIONS: Final = {
    (PHASE_CLOSED, PHASE_PRE_OPEN): False,
    (PHASE_HALTED, PHASE_PRE_OPEN): False,
    (PHASE_PRE_OPEN, PHASE_CONTINUOUS): True,
    (PHASE_PRE_CLOSE, PHASE_CLOSED): True,
    (PHASE_PRE_OPEN, PHASE_CLOSED): False,
    (PHASE_CONTINUOUS, PHASE_PRE_CLOSE): False,
    (PHASE_CONTINUOUS, PHASE_CLOSED): False,
    (PHASE_HALTED, PHASE_CLOSED): False,
    (PHASE_CONTINUOUS, PHASE_HALTED): False,
    (PHASE_PRE_OPEN, PHASE_HALTED): False,
    (PHASE_PRE_CLOSE, PHASE_HALTED): False,
}


@dataclass(eq=False, slots=True)
class _Order:
    order_id: int
    clordid: int
    session: int
    account: int
    group: int
    sec: int
    side: int  # BUY / SELL
    market: bool
    tif: int
    post_only: bool
    stp: int
    expire: int  # NULL_DATE if none
    price: int  # ticks, 0 for market
    qty: int
    cum: int
    leaves: int
    shown: int
    display: int
    prio: int = 0
    #: invariant 2: Leaves right after the last New/Replaced, and fills + removals since
    base_leaves: int = 0
    since: int = 0


@dataclass(eq=False, slots=True)
class _Level:
    orders: list[_Order] = field(default_factory=list)
    size: int = 0  # Σ Shown


@dataclass(eq=False, slots=True)
class _Side:
    levels: dict[int, _Level] = field(default_factory=dict)
    prices: list[int] = field(default_factory=list)  # ascending
    markets: list[_Order] = field(default_factory=list)  # PrioSeq order
    open_lots: int = 0  # Σ Leaves, resting market orders included
    count: int = 0


@dataclass(eq=False, slots=True)
class _Inst:
    cfg: InstrumentConfig
    sec: int
    phase: int
    ref: int
    next_uncross: int = 0
    ind_p: int | None = None
    ind_v: int = 0
    ind_i: int = 0
    ind_side: int = 0
    sides: tuple[_Side, _Side] = field(default_factory=lambda: (_Side(), _Side()))

    @property
    def tick(self) -> int:
        return self.cfg.tick_size_p9

    def matches_on_entry(self) -> bool:
        return self.phase == PHASE_CONTINUOUS and self.cfg.fba_interval_ns is None

    def best(self, side: int) -> int | None:
        prices = self.sides[side].prices
        if not prices:
            return None
        return prices[-1] if side == BUY else prices[0]

    def bbo(self) -> tuple[int | None, int, int | None, int]:
        bid = self.best(BUY)
        ask = self.best(SELL)
        bid_size = self.sides[BUY].levels[bid].size if bid is not None else 0
        ask_size = self.sides[SELL].levels[ask].size if ask is not None else 0
        return bid, bid_size, ask, ask_size

    def live(self) -> int:
        return self.sides[BUY].count + self.sides[SELL].count

    def lots(self) -> int:
        return self.sides[BUY].open_lots + self.sides[SELL].open_lots


class _Reject(Exception):
    """A §3.1 check failed with ``reason``; ``order`` is the looked-up order, if any."""

    def __init__(self, reason: int, order: _Order | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.order = order


def output_bound_new_order(order_qty: int, lots: int, orders: int) -> int:
    """ENGINE.md §2.4 U for templates 1 and 3."""
    return 16 + 8 * (min(order_qty, lots) + orders)


def clearing_price(
    buy_market: int,
    sell_market: int,
    buys: Iterable[tuple[int, int]],
    sells: Iterable[tuple[int, int]],
    ref: int,
) -> tuple[int | None, int, int]:
    """ENGINE.md §7.4: (P, V, I) of a book holding ``buy_market`` / ``sell_market`` lots of market
    orders and limit orders given as (price ticks, lots) pairs (any order, prices may repeat).
    P is None, V and I are 0 when no price has V > 0.

    Only the members of {limit prices, Ref} and the ticks right inside each gap between two
    members are evaluated: D and S are constant inside a gap, so the kept sets of rules 1-2
    restricted to these candidates have the same extremes and the same tick closest to Ref.
    """
    buy_lots: dict[int, int] = {}
    sell_lots: dict[int, int] = {}
    for price, lots in buys:
        buy_lots[price] = buy_lots.get(price, 0) + lots
    for price, lots in sells:
        sell_lots[price] = sell_lots.get(price, 0) + lots
    buy_prices = sorted(buy_lots)
    sell_prices = sorted(sell_lots)
    # buy_at_or_above[k] = lots of buys priced >= buy_prices[k]; sell_at_or_below[k] = lots of
    # sells priced <= sell_prices[k - 1]
    buy_at_or_above = [0] * (len(buy_prices) + 1)
    for k in range(len(buy_prices) - 1, -1, -1):
        buy_at_or_above[k] = buy_at_or_above[k + 1] + buy_lots[buy_prices[k]]
    sell_at_or_below = [0]
    for price in sell_prices:
        sell_at_or_below.append(sell_at_or_below[-1] + sell_lots[price])
    members = sorted({*buy_prices, *sell_prices, ref})
    candidates = set(members)
    for low, high in itertools.pairwise(members):
        if high - low > 1:
            candidates.update((low + 1, high - 1))
    # (price, V, I) per candidate, ascending price
    table = []
    for price in sorted(candidates):
        demand = buy_market + buy_at_or_above[bisect.bisect_left(buy_prices, price)]
        supply = sell_market + sell_at_or_below[bisect.bisect_right(sell_prices, price)]
        table.append((price, min(demand, supply), demand - supply))
    best_v = max(v for _, v, _ in table)
    if best_v == 0:
        return None, 0, 0
    kept = [row for row in table if row[1] == best_v]
    least = min(abs(i) for _, _, i in kept)
    kept = [row for row in kept if abs(row[2]) == least]
    if all(i > 0 for _, _, i in kept):
        chosen = kept[-1]
    elif all(i < 0 for _, _, i in kept):
        chosen = kept[0]
    else:
        # kept is contiguous in ticks, so the closest tick to Ref is unique; the price breaks
        # a tie only if that ever failed, to stay deterministic
        chosen = min(kept, key=lambda row: (abs(row[0] - ref), row[0]))
    return chosen


def _pro_rata(rest: int, sizes: Sequence[int]) -> list[int]:
    """ENGINE.md §7.5 rule 3, ProRata margin: floor shares, then one left-over lot each to the
    first orders by PrioSeq (``sizes`` is in PrioSeq order, Σ sizes > rest)."""
    total = sum(sizes)
    shares = [rest * q // total for q in sizes]
    left = rest - sum(shares)
    return [share + (1 if k < left else 0) for k, share in enumerate(shares)]


def _by_time(rest: int, sizes: Sequence[int]) -> list[int]:
    """ENGINE.md §7.5 rule 3, Time margin: each order in PrioSeq order takes what it can."""
    shares = []
    for q in sizes:
        share = min(q, rest)
        rest -= share
        shares.append(share)
    return shares


def _auction_bound(insts: Iterable[_Inst]) -> int:
    """ENGINE.md §2.4 U of ``set_phase`` / ``auction_tick`` over the instruments they change or
    uncross. An uncross of n orders has at most n - 1 fills of 5 records (the pairing advances
    at least one pointer per fill), 2 records per cancelled remainder and a BookLevel per
    touched level (<= n), then BBO and SecurityStatus: 8n + 2 covers it."""
    return _U_BASE + sum(_U_AUCTION_PER_ORDER * inst.live() + _U_AUCTION_PER_INSTRUMENT for inst in insts)


def _day(t: int) -> int:
    return t // _NS_PER_DAY


def _check_now(now: int) -> int:
    """A command's ``now`` is a u64 ns time like RecvTime (WIRE.md §6.1); else ValueError."""
    if not 0 <= now < 2**64:
        raise ValueError(f"now={now} is not a u64 nanosecond time")
    return now


def _mk_header(template_id: int, schema_id: int) -> tuple[int, int, int, int]:
    return (C.BLOCK_LENGTH, template_id, schema_id, C.SCHEMA_VERSION)


_H_ER = _mk_header(C.TEMPLATE_EXECUTION_REPORT, C.SCHEMA_ORDER_ENTRY)
_H_OCR = _mk_header(C.TEMPLATE_ORDER_CANCEL_REJECT, C.SCHEMA_ORDER_ENTRY)
_H_OMCR = _mk_header(C.TEMPLATE_ORDER_MASS_CANCEL_REPORT, C.SCHEMA_ORDER_ENTRY)


def _md_header(template_id: int) -> tuple[int, int, int, int]:
    return _mk_header(template_id, C.SCHEMA_MARKET_DATA)


class ReferenceEngine:
    """ENGINE.md continuous trading and auctions in plain Python; satisfies ``MatchingEngine``.

    ``check=True`` runs :meth:`check_invariants` after every inbound record and command and
    checks the output-stream invariants (§6 items 5, 7, 8, 9 after each uncross, and chain
    length <= U).
    """

    def __init__(
        self,
        instruments: Sequence[InstrumentConfig],
        config: EngineConfig | None = None,
        *,
        check: bool = False,
    ) -> None:
        self.config = config if config is not None else EngineConfig()
        if len(instruments) > self.config.max_instruments:
            raise ConfigError(
                f"{len(instruments)} instruments exceed EngineConfig.max_instruments {self.config.max_instruments}"
            )
        self._insts: dict[int, _Inst] = {}
        for cfg in instruments:
            if cfg.security_id in self._insts:
                raise ConfigError(f"instrument {cfg.security_id} configured twice")
            self._insts[cfg.security_id] = _Inst(cfg=cfg, sec=cfg.security_id, phase=cfg.phase, ref=cfg.ref)
        self._sec_order = sorted(self._insts)
        self.check = check
        self._next_order_id = 1
        self._next_exec_id = 1
        self._next_trade_id = 1
        self._next_prio = 1
        self._last_time = 0
        self._last_clordid: dict[int, int] = {}
        self._orders: dict[int, _Order] = {}
        self._by_clordid: dict[tuple[int, int], _Order] = {}
        self._n_levels = 0
        self._event_hash = bytes(32)
        # chain under construction: (record, dest, sec of MD record or -1, template)
        self._chain: list[tuple[bytearray, int, int, int]] = []
        self._t = 0
        self._touch_levels: dict[int, dict[tuple[int, int], tuple[int, int]]] = {}
        self._touch_bbo: dict[int, tuple[int | None, int, int | None, int]] = {}
        # stream checks (check=True)
        self._seen_exec = 0
        self._seen_order_ids: set[int] = set()
        self._max_order_id_seen = 0
        self._max_trade_id_seen = 0
        self._fill_totals = [0, 0]
        self._expired_ids: set[int] = set()
        self._prev_record = b""

    # ------------------------------------------------------------------ public API

    def process(self, batch: np.ndarray, out: np.ndarray) -> ProcessResult:
        raw = self._batch_bytes(batch)
        n = len(raw) // _INBOUND_SIZE
        self._check_out(out)
        for i in range(n):
            off = i * _INBOUND_SIZE
            hdr = _HDR.unpack_from(raw, off)
            if hdr[0] != C.BLOCK_LENGTH or not 1 <= hdr[1] <= 4 or hdr[2] != C.SCHEMA_ORDER_ENTRY or hdr[3] != 0:
                raise ValueError(f"inbound record {i}: header {hdr} is not (52, 1..4, 60, 0)")
            sid = _INB_TAIL.unpack_from(raw, off + 60)[0]
            if sid >= self.config.max_sessions:
                raise ValueError(f"inbound record {i}: SessionID {sid} >= max_sessions")
        cap = len(out)
        buf = bytearray()
        written = 0
        status = STATUS_OK
        consumed = n
        needed = 0
        for i in range(n):
            rec = raw[i * _INBOUND_SIZE : (i + 1) * _INBOUND_SIZE]
            u = self._bound(rec)
            if cap - written < u:
                status, consumed, needed = OUTPUT_FULL, i, u
                break
            count = self._run_chain(partial(self._dispatch, rec), u, buf)
            written += count
        self._finish_call(out, buf)
        return ProcessResult(status, consumed, written, needed)

    def process_one(self, record: np.ndarray | np.void | bytes) -> list[tuple[bytes, int]]:
        """Process one 80-byte inbound record with an unbounded buffer; returns (bytes60, dest)s."""
        if isinstance(record, bytes | bytearray):
            arr = np.frombuffer(bytes(record), dtype=schema.INBOUND)
        else:
            arr = np.asarray(record).reshape(-1)
        if arr.size != 1:
            raise ValueError("process_one takes exactly one inbound record")
        rec = self._batch_bytes(arr)
        u = self._bound(rec)
        out = np.zeros(u, dtype=schema.OUTPUT)
        res = self.process(arr, out)
        return [(bytes(out["message"][k]), int(out["dest"][k])) for k in range(res.written)]

    def set_phase(self, now: int, security_ids: Sequence[int], phase: int, out: np.ndarray) -> ProcessResult:
        _check_now(now)
        self._check_out(out)
        secs = sorted(set(security_ids))
        for sec in secs:
            inst = self._insts.get(sec)
            if inst is None:
                raise ValueError(f"set_phase: SecurityID {sec} is not configured")
            if (inst.phase, phase) not in _TRANSITIONS:
                raise ValueError(f"set_phase: transition {inst.phase} -> {phase} of {sec} is not allowed (§7.1)")
        u = _auction_bound(self._insts[s] for s in secs)

        def chain() -> None:
            for sec in secs:
                inst = self._insts[sec]
                if _TRANSITIONS[(inst.phase, phase)]:
                    self._uncross(inst)
                inst.phase = phase
                inst.ind_p, inst.ind_v, inst.ind_i, inst.ind_side = None, 0, 0, 0
                self._emit_security_status(inst)

        return self._command(now, u, out, chain)

    def set_reference(self, now: int, security_id: int, px_ticks: int) -> None:
        _check_now(now)
        inst = self._insts.get(security_id)
        if inst is None:
            raise ValueError(f"set_reference: SecurityID {security_id} is not configured")
        check_band(inst.cfg, px_ticks)

        def chain() -> None:
            inst.ref = px_ticks

        self._command(now, 16, np.zeros(16, dtype=schema.OUTPUT), chain)

    def auction_tick(self, now: int, out: np.ndarray) -> ProcessResult:
        """ENGINE.md §7.6: uncross every FBA instrument in Continuous that is due, ascending."""
        _check_now(now)
        self._check_out(out)
        # the t the chain will run at (LastTime only moves when the command runs)
        t = max(now, self._last_time)
        due = []
        for sec in self._sec_order:
            inst = self._insts[sec]
            interval = inst.cfg.fba_interval_ns
            if inst.phase == PHASE_CONTINUOUS and interval is not None and (interval == 0 or t >= inst.next_uncross):
                due.append(inst)

        def chain() -> None:
            for inst in due:
                self._uncross(inst)
                interval = inst.cfg.fba_interval_ns
                if interval:
                    inst.next_uncross = (self._t // interval + 1) * interval

        return self._command(now, _auction_bound(due), out, chain)

    def publish_indicative(self, now: int, out: np.ndarray) -> ProcessResult:
        """ENGINE.md §7.3: IndicativeAuction for each instrument in a call phase or FBA
        Continuous whose (P, V, |I|, ImbalanceSide) differ from the last published ones."""
        _check_now(now)
        self._check_out(out)

        def chain() -> None:
            for sec in self._sec_order:
                inst = self._insts[sec]
                fba = inst.phase == PHASE_CONTINUOUS and inst.cfg.fba_interval_ns is not None
                if not (fba or inst.phase in (PHASE_PRE_OPEN, PHASE_PRE_CLOSE)):
                    continue
                p, v, imbalance = self._book_clearing(inst)
                if imbalance > 0:
                    side = C.IMBALANCE_BUY
                elif imbalance < 0:
                    side = C.IMBALANCE_SELL
                else:
                    side = C.IMBALANCE_NONE
                values = (p, v, abs(imbalance), side)
                if values == (inst.ind_p, inst.ind_v, inst.ind_i, inst.ind_side):
                    continue
                inst.ind_p, inst.ind_v, inst.ind_i, inst.ind_side = values
                rec = _INDICATIVE.pack(
                    *_md_header(C.TEMPLATE_INDICATIVE_AUCTION), self._t, sec, 0,
                    C.NULL_PRICE if p is None else self._p9(inst, p), v, abs(imbalance), side, 0,
                )  # fmt: skip
                self._emit(rec, C.MD_DEST, sec, C.TEMPLATE_INDICATIVE_AUCTION)

        return self._command(now, _U_BASE + len(self._insts), out, chain)

    def expire(self, now: int, out: np.ndarray) -> ProcessResult:
        t = max(_check_now(now), self._last_time)
        victims = [o for o in self._orders.values() if o.tif == C.TIF_GTD and o.expire < _day(t)]
        return self._bulk_command(now, out, victims, C.EXEC_TYPE_EXPIRED, C.EXEC_REASON_EXPIRED)

    def end_of_day(self, now: int, out: np.ndarray) -> ProcessResult:
        t = max(_check_now(now), self._last_time)
        victims = [
            o for o in self._orders.values() if not (o.tif == C.TIF_GTC or (o.tif == C.TIF_GTD and o.expire > _day(t)))
        ]
        res = self._bulk_command(now, out, victims, C.EXEC_TYPE_EXPIRED, C.EXEC_REASON_EXPIRED)
        if self.check and res.status == STATUS_OK:
            day = _day(self._last_time)
            for o in self._orders.values():
                if not (o.tif == C.TIF_GTC or (o.tif == C.TIF_GTD and o.expire > day)):
                    raise EngineInvariantError(f"order {o.order_id} survived end_of_day")
        return res

    def cancel_sessions(self, now: int, session_ids: Sequence[int], out: np.ndarray) -> ProcessResult:
        _check_now(now)
        ids = set(session_ids)
        victims = [o for o in self._orders.values() if o.session in ids]
        return self._bulk_command(now, out, victims, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_CANCEL_ON_DISCONNECT)

    def cancel_accounts(self, now: int, accounts: Sequence[int], out: np.ndarray) -> ProcessResult:
        _check_now(now)
        ids = set(accounts)
        victims = [o for o in self._orders.values() if o.account in ids]
        return self._bulk_command(now, out, victims, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_ADMIN)

    def event_hash(self) -> bytes:
        if not self.config.event_hash:
            raise RuntimeError("event_hash() needs an engine created with EngineConfig(event_hash=True)")
        return self._event_hash

    def state_hash(self) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(
            _STATE_HEAD.pack(
                b"QFIXST01",
                self._next_order_id,
                self._next_exec_id,
                self._next_trade_id,
                self._next_prio,
                self._last_time,
            )
        )
        sessions = sorted((s, c) for s, c in self._last_clordid.items() if c > 0)
        h.update(struct.pack("<I", len(sessions)))
        for s, c in sessions:
            h.update(_STATE_SESSION.pack(s, c))
        for sec in self._sec_order:
            inst = self._insts[sec]
            orders = self._sorted_orders(inst)
            h.update(
                _STATE_INSTR.pack(
                    sec,
                    inst.phase,
                    inst.ref,
                    inst.next_uncross,
                    -(2**63) if inst.ind_p is None else inst.ind_p,
                    inst.ind_v,
                    abs(inst.ind_i),
                    inst.ind_side,
                    len(orders),
                )
            )
            for o in orders:
                h.update(
                    _STATE_ORDER.pack(
                        o.order_id,
                        o.clordid,
                        o.session,
                        o.account,
                        o.group,
                        o.side + 1,
                        1 if o.market else 2,
                        o.tif,
                        1 if o.post_only else 0,
                        o.stp,
                        o.expire,
                        o.price,
                        o.qty,
                        o.cum,
                        o.leaves,
                        o.shown,
                        o.display,
                        o.prio,
                    )
                )
        return h.digest()

    def check_invariants(self) -> None:
        n_levels = 0
        seen: set[int] = set()
        for sec in self._sec_order:
            inst = self._insts[sec]
            bid, ask = inst.best(BUY), inst.best(SELL)
            if inst.matches_on_entry() and bid is not None and ask is not None and bid >= ask:
                raise EngineInvariantError(f"instrument {sec}: crossed book {bid} >= {ask}")
            for side in (BUY, SELL):
                s = inst.sides[side]
                lots = 0
                count = 0
                if s.prices != sorted(s.levels) or len(set(s.prices)) != len(s.prices):
                    raise EngineInvariantError(f"instrument {sec}: price list out of sync")
                for price in s.prices:
                    lvl = s.levels[price]
                    n_levels += 1
                    if not lvl.orders:
                        raise EngineInvariantError(f"instrument {sec}: empty level {price}")
                    if lvl.size != sum(o.shown for o in lvl.orders):
                        raise EngineInvariantError(f"instrument {sec}: level {price} size mismatch")
                    prev = 0
                    for o in lvl.orders:
                        if o.prio <= prev:
                            raise EngineInvariantError(f"instrument {sec}: PrioSeq not increasing at {price}")
                        prev = o.prio
                        if o.market or o.price != price or o.side != side or o.sec != sec:
                            raise EngineInvariantError(f"order {o.order_id} in the wrong level")
                        self._check_order(o, seen)
                        lots += o.leaves
                        count += 1
                prev = 0
                for o in s.markets:
                    if not o.market or o.prio <= prev or o.side != side or o.sec != sec:
                        raise EngineInvariantError(f"instrument {sec}: market queue broken")
                    prev = o.prio
                    self._check_order(o, seen)
                    lots += o.leaves
                    count += 1
                if lots != s.open_lots or count != s.count:
                    raise EngineInvariantError(f"instrument {sec}: side totals out of sync")
                if inst.matches_on_entry() and s.markets:
                    raise EngineInvariantError(f"instrument {sec}: market order rests in continuous")
        if n_levels != self._n_levels:
            raise EngineInvariantError("level count out of sync")
        if len(seen) != len(self._orders) or len(self._by_clordid) != len(self._orders):
            raise EngineInvariantError("order index out of sync with the books")
        if self._fill_totals[0] != self._fill_totals[1]:
            raise EngineInvariantError("buy and sell fill totals differ")

    # ------------------------------------------------------------------ introspection helpers (tests)

    def live_orders(self) -> list[dict[str, int]]:
        """Live orders as dicts, ascending OrderID (for tests and generators)."""
        return [
            {
                "order_id": o.order_id,
                "clordid": o.clordid,
                "session": o.session,
                "security_id": o.sec,
                "side": C.SIDE_BUY if o.side == BUY else C.SIDE_SELL,
                "price": o.price,
                "market": int(o.market),
                "tif": o.tif,
                "post_only": int(o.post_only),
                "qty": o.qty,
                "cum": o.cum,
                "leaves": o.leaves,
                "shown": o.shown,
                "display": o.display,
                "prio": o.prio,
            }
            for o in sorted(self._orders.values(), key=lambda o: o.order_id)
        ]

    def book(self, security_id: int, side: int) -> list[tuple[int, int, int]]:
        """(price ticks, size, count) per level of ``side`` (wire Side), best first."""
        s = self._insts[security_id].sides[BUY if side == C.SIDE_BUY else SELL]
        prices = reversed(s.prices) if side == C.SIDE_BUY else s.prices
        return [(p, s.levels[p].size, len(s.levels[p].orders)) for p in prices]

    def auction_state(self, security_id: int) -> dict[str, int | None]:
        """Phase, Ref, NextUncross and the last published §7.3 values of an instrument (tests)."""
        inst = self._insts[security_id]
        return {
            "phase": inst.phase,
            "ref": inst.ref,
            "next_uncross": inst.next_uncross,
            "ind_p": inst.ind_p,
            "ind_v": inst.ind_v,
            "ind_i": inst.ind_i,
            "ind_side": inst.ind_side,
        }

    @property
    def last_time(self) -> int:
        return self._last_time

    # ------------------------------------------------------------------ call plumbing

    @staticmethod
    def _batch_bytes(batch: np.ndarray) -> bytes:
        arr = np.asarray(batch)
        if arr.ndim != 1 or arr.dtype.itemsize != _INBOUND_SIZE:
            raise ValueError("batch must be a 1-D array of 80-byte inbound records")
        return np.ascontiguousarray(arr).tobytes()

    @staticmethod
    def _check_out(out: np.ndarray) -> None:
        if out.ndim != 1 or out.dtype != schema.OUTPUT:
            raise ValueError("out must be a 1-D array of dtype wire.schema.OUTPUT")

    def _finish_call(self, out: np.ndarray, buf: bytearray) -> None:
        k = len(buf) // _OUT_SIZE
        if k:
            out[:k] = np.frombuffer(bytes(buf), dtype=schema.OUTPUT)
        if self.config.event_hash:
            self._event_hash = hashlib.blake2b(self._event_hash + bytes(buf), digest_size=32).digest()

    def _command(self, now: int, u: int, out: np.ndarray, body: Callable[[], None]) -> ProcessResult:
        buf = bytearray()
        if len(out) < u:
            self._finish_call(out, buf)
            return ProcessResult(OUTPUT_FULL, 0, 0, u)

        def run() -> None:
            self._set_time(now)
            body()

        written = self._run_chain(run, u, buf)
        self._finish_call(out, buf)
        return ProcessResult(STATUS_OK, 1, written, 0)

    def _bulk_command(
        self, now: int, out: np.ndarray, victims: list[_Order], exec_type: int, reason: int
    ) -> ProcessResult:
        self._check_out(out)
        return self._command(now, 16 + 4 * len(victims), out, lambda: self._bulk_remove(victims, exec_type, reason))

    def _set_time(self, now: int) -> None:
        self._t = max(now, self._last_time)
        self._last_time = self._t

    def _run_chain(self, body: Callable[[], None], u: int, buf: bytearray) -> int:
        self._chain = []
        self._touch_levels = {}
        self._touch_bbo = {}
        body()
        if self._touch_levels:
            raise EngineInvariantError("chain ended with a pending end-of-event block")
        chain = self._chain
        self._chain = []
        # MatchEventIndicator: LastTradeMsg on the last Trade, EndOfEvent on the last MD record,
        # per instrument in the chain.
        last_md: dict[int, int] = {}
        last_trade: dict[int, int] = {}
        for idx, (_, _, sec, tid) in enumerate(chain):
            if sec >= 0:
                last_md[sec] = idx
                if tid == C.TEMPLATE_TRADE:
                    last_trade[sec] = idx
        for idx in last_md.values():
            chain[idx][0][59] |= C.MEI_END_OF_EVENT
        for idx in last_trade.values():
            chain[idx][0][59] |= C.MEI_LAST_TRADE_MSG
        for rec, dest, _, _ in chain:
            buf += rec
            buf += struct.pack("<I", dest)
        if self.check:
            if len(chain) > u:
                raise EngineInvariantError(f"chain of {len(chain)} records exceeds its bound U = {u}")
            self._check_stream(chain)
            self.check_invariants()
        return len(chain)

    def _check_stream(self, chain: list[tuple[bytearray, int, int, int]]) -> None:
        for rec, _, _, tid in chain:
            if tid in (C.TEMPLATE_EXECUTION_REPORT, C.TEMPLATE_ORDER_CANCEL_REJECT):
                exec_id = struct.unpack_from("<Q", rec, 32)[0]
            elif tid == C.TEMPLATE_ORDER_MASS_CANCEL_REPORT:
                exec_id = struct.unpack_from("<Q", rec, 24)[0]
            else:
                exec_id = None
            if exec_id is not None:
                if exec_id < self._seen_exec or (exec_id == self._seen_exec and bytes(rec) != self._prev_record):
                    raise EngineInvariantError(f"ExecID {exec_id} does not increase")
                self._seen_exec = exec_id
                self._prev_record = bytes(rec)
            oid = None
            if tid in _OID_AT_24:
                oid = struct.unpack_from("<Q", rec, 24)[0]
            elif tid == C.TEMPLATE_ORDER_REPLACE:
                oid = struct.unpack_from("<Q", rec, 32)[0]
            if oid is not None and oid != C.NULL_U64 and oid not in self._seen_order_ids:
                if oid <= self._max_order_id_seen:
                    raise EngineInvariantError(f"OrderID {oid} first appears after a higher one")
                self._max_order_id_seen = oid
                self._seen_order_ids.add(oid)
            if tid == C.TEMPLATE_TRADE:
                trade_id = struct.unpack_from("<Q", rec, 24)[0]
                if trade_id <= self._max_trade_id_seen:
                    raise EngineInvariantError(f"TradeID {trade_id} does not increase")
                self._max_trade_id_seen = trade_id

    def _check_order(self, o: _Order, seen: set[int]) -> None:
        if o.order_id in seen or self._orders.get(o.order_id) is not o:
            raise EngineInvariantError(f"order {o.order_id} not found by OrderID")
        if self._by_clordid.get((o.session, o.clordid)) is not o:
            raise EngineInvariantError(f"order {o.order_id} not found by (SessionID, ClOrdID)")
        seen.add(o.order_id)
        if o.leaves != o.qty - o.cum or not 0 < o.shown <= o.leaves:
            raise EngineInvariantError(f"order {o.order_id}: quantity identities broken")
        if o.display == 0 and o.shown != o.leaves:
            raise EngineInvariantError(f"order {o.order_id}: Shown != Leaves without Display")
        if o.base_leaves != o.since + o.leaves:
            raise EngineInvariantError(f"order {o.order_id}: Leaves not accounted for since New/Replaced")
        inst = self._insts[o.sec]
        if inst.matches_on_entry() and (o.market or o.tif in (C.TIF_IOC, C.TIF_FOK)):
            raise EngineInvariantError(f"order {o.order_id}: IOC/FOK/market order rests in continuous")

    # ------------------------------------------------------------------ output bound

    def _bound(self, rec: bytes) -> int:
        tid = _HDR.unpack_from(rec, 0)[1]
        if tid == C.TEMPLATE_NEW_ORDER_SINGLE:
            return self._bound_new(rec)
        if tid == C.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST:
            return self._bound_replace(rec)
        if tid == C.TEMPLATE_ORDER_CANCEL_REQUEST:
            return 16
        reason, victims = self._mass_cancel_scope(rec)
        return 16 + 4 * (0 if reason else len(victims))

    def _bound_new(self, rec: bytes) -> int:
        """§2.4 U of a NewOrderSingle: only the opposite orders it can reach count, none if it
        would be rejected (§3.1) or cannot match on entry."""
        (clordid, _tt, price, qty, sec, _account, min_qty, max_floor, side_c, ord_type, tif,
         exec_inst, smp, expire) = _NOS.unpack_from(rec, 0)  # fmt: skip
        sid, _sacct, recv = _INB_TAIL.unpack_from(rec, 60)
        if clordid <= self._last_clordid.get(sid, 0):
            return output_bound_new_order(qty, 0, 0)
        try:
            limit = self._check_new(
                price, qty, sec, min_qty, max_floor, side_c, ord_type, tif, exec_inst, smp, expire,
                max(recv, self._last_time),
            )  # fmt: skip
        except _Reject:
            return output_bound_new_order(qty, 0, 0)
        inst = self._insts[sec]
        side = BUY if side_c == C.SIDE_BUY else SELL
        return self._bound_reach(inst, side, limit if inst.matches_on_entry() else None, qty)

    def _bound_replace(self, rec: bytes) -> int:
        """§2.4 U of an OrderCancelReplaceRequest: as a new order at its new price."""
        (clordid, _tt, orig, price, qty, sec, max_floor, side, ord_type, tif, exec_inst,
         min_qty) = _OCRR.unpack_from(rec, 0)  # fmt: skip
        sid, sacct, recv = _INB_TAIL.unpack_from(rec, 60)
        if clordid <= self._last_clordid.get(sid, 0):
            return output_bound_new_order(qty, 0, 0)
        try:
            o, ticks, _display, _crosses = self._check_replace(
                sid, sacct, orig, price, qty, sec, max_floor, side, ord_type, tif, exec_inst, min_qty,
                max(recv, self._last_time),
            )  # fmt: skip
        except _Reject:
            return output_bound_new_order(qty, 0, 0)
        inst = self._insts[sec]
        return self._bound_reach(inst, o.side, ticks if inst.matches_on_entry() else None, qty)

    @staticmethod
    def _bound_reach(inst: _Inst, side: int, limit: int | None, qty: int) -> int:
        """U for an aggressor on ``side`` with matching limit ``limit`` (None: reaches nothing):
        lots and orders are summed over the opposite levels priced at or better than it."""
        lots = orders = 0
        if limit is not None:
            opp = inst.sides[1 - side]
            for p in opp.prices:
                if (p <= limit) if side == BUY else (p >= limit):
                    level = opp.levels[p]
                    orders += len(level.orders)
                    lots += sum(m.leaves for m in level.orders)
        return output_bound_new_order(qty, lots, orders)

    # ------------------------------------------------------------------ emission

    def _p9(self, inst: _Inst, ticks: int) -> int:
        return ticks * inst.tick

    def _order_px(self, o: _Order) -> int:
        return C.NULL_PRICE if o.market else o.price * self._insts[o.sec].tick

    def _exec_id(self) -> int:
        e = self._next_exec_id
        self._next_exec_id += 1
        return e

    def _emit(self, rec: bytes, dest: int, sec: int, tid: int) -> bytearray:
        b = bytearray(rec)
        self._chain.append((b, dest, sec, tid))
        return b

    def _md_order_executed(self, inst: _Inst, o: _Order, px: int, q: int, trade_id: int, aggressor: int) -> None:
        """MD OrderExecuted for the resting side of a fill (Shown as it is after the fill)."""
        self._emit(
            _ORDER_EXECUTED.pack(
                *_md_header(C.TEMPLATE_ORDER_EXECUTED), self._t, inst.sec, 0, o.order_id, px, q, o.shown,
                trade_id, aggressor, 0,
            ),
            C.MD_DEST, inst.sec, C.TEMPLATE_ORDER_EXECUTED,
        )  # fmt: skip

    def _md_trade(self, inst: _Inst, trade_id: int, px: int, q: int, aggressor: int, condition: int) -> None:
        self._emit(
            _TRADE.pack(*_md_header(C.TEMPLATE_TRADE), self._t, inst.sec, 0, trade_id, px, q, aggressor, condition, 0),
            C.MD_DEST, inst.sec, C.TEMPLATE_TRADE,
        )  # fmt: skip

    def _er(
        self,
        o: _Order,
        exec_type: int,
        *,
        clordid: int | None = None,
        last_px: int | None = None,
        last_qty: int,
        leaves: int,
        status: int,
        reason: int = C.EXEC_REASON_NONE,
        liquidity: int = C.LIQUIDITY_NONE,
    ) -> bytearray:
        rec = _ER.pack(
            *_H_ER,
            o.clordid if clordid is None else clordid,
            self._t,
            o.order_id,
            self._exec_id(),
            self._order_px(o) if last_px is None else last_px,
            last_qty,
            leaves,
            exec_type,
            status,
            reason,
            liquidity,
        )
        return self._emit(rec, o.session, -1, C.TEMPLATE_EXECUTION_REPORT)

    @staticmethod
    def _live_status(o: _Order) -> int:
        return C.ORD_STATUS_PARTIALLY_FILLED if o.cum > 0 else C.ORD_STATUS_NEW

    def _er_removed(self, o: _Order, exec_type: int, reason: int, removed: int, clordid: int | None = None) -> None:
        status = C.ORD_STATUS_EXPIRED if exec_type == C.EXEC_TYPE_EXPIRED else C.ORD_STATUS_CANCELED
        self._er(o, exec_type, clordid=clordid, last_qty=removed, leaves=0, status=status, reason=reason)

    def _md_add_order(self, inst: _Inst, o: _Order) -> None:
        rec = _ADD_ORDER.pack(
            *_md_header(C.TEMPLATE_ADD_ORDER), self._t, inst.sec, 0, o.order_id,
            self._p9(inst, o.price), o.shown, C.MD_ENTRY_BID + o.side, 0,
        )  # fmt: skip
        self._emit(rec, C.MD_DEST, inst.sec, C.TEMPLATE_ADD_ORDER)

    def _md_delete(self, inst: _Inst, order_id: int) -> None:
        rec = _ORDER_DELETE.pack(*_md_header(C.TEMPLATE_ORDER_DELETE), self._t, inst.sec, 0, order_id, 0)
        self._emit(rec, C.MD_DEST, inst.sec, C.TEMPLATE_ORDER_DELETE)

    def _md_reduced(self, inst: _Inst, o: _Order, canceled: int) -> None:
        rec = _ORDER_REDUCED.pack(
            *_md_header(C.TEMPLATE_ORDER_REDUCED), self._t, inst.sec, 0, o.order_id, canceled, o.shown, 0
        )
        self._emit(rec, C.MD_DEST, inst.sec, C.TEMPLATE_ORDER_REDUCED)

    def _emit_security_status(self, inst: _Inst) -> None:
        status = _TRADING_STATUS[inst.phase]
        if inst.phase == PHASE_CONTINUOUS and inst.cfg.fba_interval_ns is not None:
            status = C.TRADING_STATUS_BATCH_AUCTION
        halt = C.HALT_REASON_OPERATOR if inst.phase == PHASE_HALTED else C.HALT_REASON_NONE
        rec = _SEC_STATUS.pack(*_md_header(C.TEMPLATE_SECURITY_STATUS), self._t, inst.sec, 0, status, halt, 0)
        self._emit(rec, C.MD_DEST, inst.sec, C.TEMPLATE_SECURITY_STATUS)

    # ------------------------------------------------------------------ book mutation (all via _touch)

    def _touch(self, inst: _Inst, side: int, price: int) -> None:
        tl = self._touch_levels.get(inst.sec)
        if tl is None:
            tl = {}
            self._touch_levels[inst.sec] = tl
            self._touch_bbo[inst.sec] = inst.bbo()
        key = (side, price)
        if key not in tl:
            lvl = inst.sides[side].levels.get(price)
            tl[key] = (lvl.size, len(lvl.orders)) if lvl is not None else (0, 0)

    def _rest(self, inst: _Inst, o: _Order) -> None:
        """Append ``o`` to the tail of its level (or the market queue) with a new PrioSeq."""
        o.prio = self._next_prio
        self._next_prio += 1
        s = inst.sides[o.side]
        if o.market:
            s.markets.append(o)
        else:
            self._touch(inst, o.side, o.price)
            lvl = s.levels.get(o.price)
            if lvl is None:
                lvl = _Level()
                s.levels[o.price] = lvl
                bisect.insort(s.prices, o.price)
                self._n_levels += 1
            lvl.orders.append(o)
            lvl.size += o.shown
        s.open_lots += o.leaves
        s.count += 1
        self._orders[o.order_id] = o
        self._by_clordid[(o.session, o.clordid)] = o

    def _unrest(self, inst: _Inst, o: _Order) -> None:
        s = inst.sides[o.side]
        if o.market:
            s.markets.remove(o)
        else:
            self._touch(inst, o.side, o.price)
            lvl = s.levels[o.price]
            lvl.orders.remove(o)
            lvl.size -= o.shown
            if not lvl.orders:
                del s.levels[o.price]
                del s.prices[bisect.bisect_left(s.prices, o.price)]
                self._n_levels -= 1
        s.open_lots -= o.leaves
        s.count -= 1
        del self._orders[o.order_id]
        del self._by_clordid[(o.session, o.clordid)]

    def _reduce_resting(self, inst: _Inst, o: _Order, d: int, *, fill: bool) -> None:
        """Take ``d`` lots off a resting order's Leaves (a fill also takes them off Shown)."""
        if not o.market:
            self._touch(inst, o.side, o.price)
        old_shown = o.shown
        if fill:
            o.cum += d
        else:
            o.qty -= d
        o.leaves -= d
        o.since += d
        o.shown = o.shown - d if fill else min(o.shown, o.leaves)
        inst.sides[o.side].open_lots -= d
        if not o.market:
            inst.sides[o.side].levels[o.price].size += o.shown - old_shown

    def _eoe(self, inst: _Inst) -> None:
        """End-of-event block of ``inst`` for the current chain (ENGINE.md §2.2)."""
        tl = self._touch_levels.pop(inst.sec, None)
        bbo0 = self._touch_bbo.pop(inst.sec, None)
        if tl is None or bbo0 is None:
            return
        keys = sorted((k for k in tl if k[0] == BUY), key=lambda k: -k[1])
        keys += sorted((k for k in tl if k[0] == SELL), key=lambda k: k[1])
        for side, price in keys:
            before = tl[(side, price)]
            lvl = inst.sides[side].levels.get(price)
            after = (lvl.size, len(lvl.orders)) if lvl is not None else (0, 0)
            if before == after:
                continue
            if before[1] == 0:
                action = C.MD_UPDATE_NEW
            elif after[1] == 0:
                action = C.MD_UPDATE_DELETE
            else:
                action = C.MD_UPDATE_CHANGE
            rec = _BOOK_LEVEL.pack(
                *_md_header(C.TEMPLATE_BOOK_LEVEL), self._t, inst.sec, 0, self._p9(inst, price),
                after[0], after[1], C.MD_ENTRY_BID + side, action, 0,
            )  # fmt: skip
            self._emit(rec, C.MD_DEST, inst.sec, C.TEMPLATE_BOOK_LEVEL)
        bbo1 = inst.bbo()
        if bbo1 != bbo0:
            bid, bid_size, ask, ask_size = bbo1
            rec = _BBO.pack(
                *_md_header(C.TEMPLATE_BEST_BID_OFFER), self._t, inst.sec, 0,
                C.NULL_PRICE if bid is None else self._p9(inst, bid),
                C.NULL_PRICE if ask is None else self._p9(inst, ask),
                bid_size, ask_size, 0,
            )  # fmt: skip
            self._emit(rec, C.MD_DEST, inst.sec, C.TEMPLATE_BEST_BID_OFFER)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, rec: bytes) -> None:
        sid, sacct, recv = _INB_TAIL.unpack_from(rec, 60)
        self._set_time(recv)
        tid = _HDR.unpack_from(rec, 0)[1]
        if tid == C.TEMPLATE_NEW_ORDER_SINGLE:
            self._new_order(rec, sid, sacct)
        elif tid == C.TEMPLATE_ORDER_CANCEL_REQUEST:
            self._cancel(rec, sid, sacct)
        elif tid == C.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST:
            self._replace(rec, sid, sacct)
        else:
            self._mass_cancel(rec, sid, sacct)

    def _clordid_ok(self, sid: int, clordid: int) -> bool:
        """§1.2 rule 4: False for a duplicate; otherwise advances LastClOrdID."""
        if clordid <= self._last_clordid.get(sid, 0):
            return False
        self._last_clordid[sid] = clordid
        return True

    # ------------------------------------------------------------------ new order

    def _new_order(self, rec: bytes, sid: int, sacct: int) -> None:
        (clordid, _tt, price, qty, sec, account, min_qty, max_floor, side_c, ord_type, tif,
         exec_inst, smp, expire) = _NOS.unpack_from(rec, 0)  # fmt: skip
        try:
            o, limit = self._accept_new(
                sid, sacct, clordid, price, qty, sec, account, min_qty, max_floor, side_c, ord_type,
                tif, exec_inst, smp, expire,
            )  # fmt: skip
        except _Reject as r:
            out = _ER.pack(
                *_H_ER, clordid, self._t, C.NULL_U64, self._exec_id(), price, qty, 0,
                C.EXEC_TYPE_REJECTED, C.ORD_STATUS_REJECTED, r.reason, C.LIQUIDITY_NONE,
            )  # fmt: skip
            self._emit(out, sid, -1, C.TEMPLATE_EXECUTION_REPORT)
            return
        inst = self._insts[sec]
        matching = inst.matches_on_entry()
        need = qty if tif == C.TIF_FOK else (0 if min_qty == C.NULL_U32 else min_qty)
        if need and matching and self._simulate(inst, o, limit) < need:
            reason = C.EXEC_REASON_IOC_FOK_REMAINDER if tif == C.TIF_FOK else C.EXEC_REASON_MIN_QTY_NOT_MET
            self._er(o, C.EXEC_TYPE_CANCELED, last_qty=qty, leaves=0, status=C.ORD_STATUS_CANCELED, reason=reason)
            return
        self._er(o, C.EXEC_TYPE_NEW, last_qty=qty, leaves=qty, status=C.ORD_STATUS_NEW)
        if matching:
            self._aggress(inst, o, limit)
        else:
            self._rest_new(inst, o)
        self._eoe(inst)

    def _accept_new(
        self, sid: int, sacct: int, clordid: int, price: int, qty: int, sec: int, account: int,
        min_qty: int, max_floor: int, side_c: int, ord_type: int, tif: int, exec_inst: int,
        smp: int, expire: int,
    ) -> tuple[_Order, int | None]:  # fmt: skip
        """§3.1 checks 1-8; raises _Reject, else returns the accepted order (OrderID assigned)
        and its matching limit in ticks (None: nothing can trade)."""
        if not self._clordid_ok(sid, clordid):
            raise _Reject(C.EXEC_REASON_DUPLICATE_CLORDID)
        limit = self._check_new(
            price, qty, sec, min_qty, max_floor, side_c, ord_type, tif, exec_inst, smp, expire, self._t
        )
        inst = self._insts[sec]
        side = BUY if side_c == C.SIDE_BUY else SELL
        market = ord_type == C.ORD_TYPE_MARKET
        post_only = bool(exec_inst & C.EXEC_INST_POST_ONLY)
        ticks = 0 if market else price // inst.tick
        account_r = sacct if account == C.NULL_U32 else account
        display = 0 if max_floor == C.NULL_U32 else max_floor
        o = _Order(
            order_id=self._next_order_id,
            clordid=clordid,
            session=sid,
            account=account_r,
            group=self.config.stp_group(account_r),
            sec=sec,
            side=side,
            market=market,
            tif=tif,
            post_only=post_only,
            stp=inst.cfg.default_stp if smp == C.SMP_DEFAULT else smp,
            expire=expire if tif == C.TIF_GTD else C.NULL_DATE,
            price=ticks,
            qty=qty,
            cum=0,
            leaves=qty,
            shown=qty if display == 0 else min(display, qty),
            display=display,
            base_leaves=qty,
        )
        self._next_order_id += 1
        return o, limit

    def _check_new(
        self, price: int, qty: int, sec: int, min_qty: int, max_floor: int, side_c: int, ord_type: int,
        tif: int, exec_inst: int, smp: int, expire: int, t: int,
    ) -> int | None:  # fmt: skip
        """§3.1 checks 2-8 of a new order at time ``t``, changing nothing: raises _Reject, else
        returns the matching limit in ticks (None: nothing can trade)."""
        inst = self._insts.get(sec)
        reason = self._nos_field_reason(
            inst, price, qty, min_qty, max_floor, side_c, ord_type, tif, exec_inst, smp, expire
        )
        if reason:
            raise _Reject(reason)
        assert inst is not None
        side = BUY if side_c == C.SIDE_BUY else SELL
        market = ord_type == C.ORD_TYPE_MARKET
        post_only = bool(exec_inst & C.EXEC_INST_POST_ONLY)
        ticks = 0 if market else price // inst.tick
        matching = inst.matches_on_entry()
        reason = self._phase_reason_new(inst, market, tif, post_only, min_qty != C.NULL_U32)
        if reason:
            raise _Reject(reason)
        if tif == C.TIF_GTD and expire < _day(t):
            raise _Reject(C.EXEC_REASON_INVALID_EXPIRE_DATE)
        low, high = inst.cfg.band(inst.ref)
        if not market and not low <= ticks <= high:
            raise _Reject(C.EXEC_REASON_PRICE_OUTSIDE_BAND)
        best_opp = inst.best(1 - side)
        limit: int | None
        if market:
            if matching and best_opp is not None:
                # the collar is taken at entry (§3.3 rule 2)
                collared = best_opp + inst.cfg.collar if side == BUY else best_opp - inst.cfg.collar
                limit = min(collared, high) if side == BUY else max(collared, low)
                notional_px = limit
            else:
                limit = None
                notional_px = inst.ref
        else:
            limit = ticks
            notional_px = ticks
        if qty > inst.cfg.max_notional // max(abs(notional_px), 1):
            raise _Reject(C.EXEC_REASON_NOTIONAL_OVER_MAX)
        if (
            len(self._orders) >= self.config.max_orders
            or self._n_levels >= self.config.max_levels
            or inst.sides[side].open_lots + qty > _U32_MAX
        ):
            raise _Reject(C.EXEC_REASON_CAPACITY_FULL)
        if post_only and matching and best_opp is not None and self._crosses(side, ticks, best_opp):
            raise _Reject(C.EXEC_REASON_POST_ONLY_WOULD_CROSS)
        return limit

    @staticmethod
    def _crosses(side: int, price: int, best_opp: int) -> bool:
        return best_opp <= price if side == BUY else best_opp >= price

    @staticmethod
    def _nos_field_reason(
        inst: _Inst | None, price: int, qty: int, min_qty: int, max_floor: int, side: int,
        ord_type: int, tif: int, exec_inst: int, smp: int, expire: int,
    ) -> int:  # fmt: skip
        """WIRE.md §5.2 NewOrderSingle checks (1)-(14) in order; 0 if all pass."""
        if inst is None:
            return C.EXEC_REASON_UNKNOWN_SYMBOL
        if side not in (C.SIDE_BUY, C.SIDE_SELL):
            return C.EXEC_REASON_INVALID_SIDE
        if ord_type in (C.ORD_TYPE_STOP, C.ORD_TYPE_STOP_LIMIT):
            return C.EXEC_REASON_UNSUPPORTED
        if ord_type not in (C.ORD_TYPE_MARKET, C.ORD_TYPE_LIMIT):
            return C.EXEC_REASON_INVALID_ORD_TYPE
        if tif not in _VALID_TIF:
            return C.EXEC_REASON_INVALID_TIME_IN_FORCE
        if exec_inst & C.EXEC_INST_RESERVED_MASK:
            return C.EXEC_REASON_INVALID_EXEC_INST
        if exec_inst & C.EXEC_INST_ALL_OR_NONE:
            return C.EXEC_REASON_UNSUPPORTED
        if smp not in _VALID_SMP:
            return C.EXEC_REASON_INVALID_SMP_INSTRUCTION
        if qty < 1:
            return C.EXEC_REASON_INCORRECT_QTY
        if qty > inst.cfg.max_order_qty:
            return C.EXEC_REASON_QTY_OVER_MAX
        market = ord_type == C.ORD_TYPE_MARKET
        if not market and price == C.NULL_PRICE:
            return C.EXEC_REASON_PRICE_REQUIRED
        if market and price != C.NULL_PRICE:
            return C.EXEC_REASON_PRICE_NOT_ALLOWED
        if price != C.NULL_PRICE and price % inst.tick:
            return C.EXEC_REASON_PRICE_OFF_TICK
        if (tif == C.TIF_GTD) != (expire != C.NULL_DATE):
            return C.EXEC_REASON_EXPIRE_DATE_MISMATCH
        if min_qty != C.NULL_U32 and not 1 <= min_qty <= qty:
            return C.EXEC_REASON_INVALID_MIN_QTY
        if max_floor == 0:
            return C.EXEC_REASON_INVALID_MAX_FLOOR
        post_only = bool(exec_inst & C.EXEC_INST_POST_ONLY)
        has_floor = max_floor != C.NULL_U32
        has_min = min_qty != C.NULL_U32
        if market and (tif not in (C.TIF_DAY, C.TIF_IOC, C.TIF_FOK) or post_only or has_floor):
            return C.EXEC_REASON_UNSUPPORTED
        if post_only and (market or tif not in _RESTING_TIF or has_min):
            return C.EXEC_REASON_UNSUPPORTED
        if has_floor and (market or tif not in _RESTING_TIF):
            return C.EXEC_REASON_UNSUPPORTED
        if has_min and tif == C.TIF_FOK:
            return C.EXEC_REASON_UNSUPPORTED
        return 0

    @staticmethod
    def _phase_reason_new(inst: _Inst, market: bool, tif: int, post_only: bool, has_min: bool) -> int:
        """ENGINE.md §7.2 acceptance of a new order; 0 if accepted."""
        phase = inst.phase
        if phase in (PHASE_CLOSED, PHASE_HALTED):
            return C.EXEC_REASON_TRADING_STATE_NOT_OPEN
        if phase == PHASE_CONTINUOUS and inst.cfg.fba_interval_ns is None:
            return 0
        # call phases and FBA Continuous: no FOK, MinQty or post-only
        if tif == C.TIF_FOK or has_min or post_only:
            return C.EXEC_REASON_TRADING_STATE_NOT_OPEN
        if tif == C.TIF_IOC:
            return 0 if phase == PHASE_CONTINUOUS else C.EXEC_REASON_TRADING_STATE_NOT_OPEN
        if market and tif != C.TIF_DAY:
            return C.EXEC_REASON_TRADING_STATE_NOT_OPEN
        return 0

    def _rest_new(self, inst: _Inst, o: _Order) -> None:
        o.shown = o.leaves if o.display == 0 else min(o.display, o.leaves)
        self._rest(inst, o)
        if not o.market:
            self._md_add_order(inst, o)

    # ------------------------------------------------------------------ matching

    def _simulate(self, inst: _Inst, t: _Order, limit: int | None) -> int:
        """§3.5 E: lots ``t`` would trade now as an IOC without MinQty, STP included."""
        if limit is None:
            return 0
        opp = inst.sides[1 - t.side]
        prices = reversed(opp.prices) if t.side == SELL else iter(opp.prices)
        rem = t.leaves
        traded = 0
        for p in prices:
            if rem == 0 or not self._crosses(t.side, limit, p):
                break
            # [leaves, shown, display, group]
            queue = [[m.leaves, m.shown, m.display, m.group] for m in opp.levels[p].orders]
            head = 0
            while head < len(queue) and rem > 0:
                m = queue[head]
                if m[3] == t.group:
                    if t.stp in (C.SMP_CANCEL_AGGRESSIVE, C.SMP_CANCEL_BOTH):
                        return traded
                    if t.stp == C.SMP_CANCEL_PASSIVE:
                        head += 1
                        continue
                    d = min(rem, m[0])
                    rem -= d
                    m[0] -= d
                    if m[0] == 0:
                        head += 1
                    else:
                        m[1] = min(m[1], m[0])
                    continue
                q = min(rem, m[1])
                rem -= q
                traded += q
                m[0] -= q
                m[1] -= q
                if m[0] == 0:
                    head += 1
                elif m[1] == 0:
                    m[1] = min(m[2], m[0])
                    queue.append(m)
                    head += 1
        return traded

    def _aggress(self, inst: _Inst, t: _Order, limit: int | None) -> None:
        """Match steps (§3.2, §3.11) then the remainder step for a non-resting ``t``."""
        alive = self._match(inst, t, limit)
        if not alive:
            return
        if t.market or t.tif in (C.TIF_IOC, C.TIF_FOK):
            removed = t.leaves
            t.since += removed
            t.leaves = 0
            self._er_removed(t, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_IOC_FOK_REMAINDER, removed)
        else:
            self._rest_new(inst, t)

    def _match(self, inst: _Inst, t: _Order, limit: int | None) -> bool:
        """Match ``t`` against the opposite side; False if STP cancelled it, else True if Leaves > 0."""
        if limit is None:
            return t.leaves > 0
        opp_side = 1 - t.side
        opp = inst.sides[opp_side]
        while t.leaves > 0:
            p = inst.best(opp_side)
            if p is None or not self._crosses(t.side, limit, p):
                break
            lvl = opp.levels[p]
            m = lvl.orders[0]
            if m.group == t.group:
                if not self._self_match(inst, t, m):
                    return False
                continue
            q = min(t.leaves, m.shown)
            trade_id = self._next_trade_id
            self._next_trade_id += 1
            t.cum += q
            t.leaves -= q
            t.since += q
            self._reduce_resting(inst, m, q, fill=True)
            if self.check:
                self._fill_totals[t.side] += q
                self._fill_totals[m.side] += q
                if not self._crosses(t.side, limit, p) or p != m.price:
                    raise EngineInvariantError("trade outside the limits")
            px = self._p9(inst, p)
            self._er(
                t, C.EXEC_TYPE_TRADE, last_px=px, last_qty=q, leaves=t.leaves,
                status=C.ORD_STATUS_FILLED if t.leaves == 0 else C.ORD_STATUS_PARTIALLY_FILLED,
                liquidity=C.LIQUIDITY_REMOVED,
            )  # fmt: skip
            self._er(
                m, C.EXEC_TYPE_TRADE, last_px=px, last_qty=q, leaves=m.leaves,
                status=C.ORD_STATUS_FILLED if m.leaves == 0 else C.ORD_STATUS_PARTIALLY_FILLED,
                liquidity=C.LIQUIDITY_ADDED,
            )  # fmt: skip
            aggressor = C.AGGRESSOR_BUY if t.side == BUY else C.AGGRESSOR_SELL
            self._md_order_executed(inst, m, px, q, trade_id, aggressor)
            self._md_trade(inst, trade_id, px, q, aggressor, C.TRADE_CONDITION_REGULAR)
            if m.leaves == 0:
                self._unrest(inst, m)
            elif m.shown == 0:
                # iceberg refill: new PrioSeq, tail of the same level, same OrderID
                new_shown = min(m.display, m.leaves)
                lvl.orders.remove(m)
                m.shown = new_shown
                lvl.size += new_shown
                m.prio = self._next_prio
                self._next_prio += 1
                lvl.orders.append(m)
                self._md_add_order(inst, m)
        return t.leaves > 0

    def _self_match(self, inst: _Inst, t: _Order, m: _Order) -> bool:
        """Apply T's STP mode against head ``m`` (§3.11); False when T is cancelled."""
        mode = t.stp
        if mode == C.SMP_CANCEL_AGGRESSIVE:
            self._kill_taker_stp(t, t.leaves)
            return False
        if mode in (C.SMP_CANCEL_PASSIVE, C.SMP_CANCEL_BOTH):
            removed = m.leaves
            self._er_removed(m, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_SELF_MATCH, removed)
            self._md_delete(inst, m.order_id)
            self._unrest(inst, m)
            m.since += removed
            m.leaves = 0
            if mode == C.SMP_CANCEL_BOTH:
                self._kill_taker_stp(t, t.leaves)
                return False
            return True
        d = min(t.leaves, m.leaves)
        old_shown = m.shown
        if d == m.leaves:
            self._er_removed(m, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_SELF_MATCH, d)
            self._md_delete(inst, m.order_id)
            self._unrest(inst, m)
            m.qty -= d
            m.leaves -= d
            m.since += d
        else:
            self._reduce_resting(inst, m, d, fill=False)
            self._er(
                m, C.EXEC_TYPE_RESTATED, last_qty=d, leaves=m.leaves, status=self._live_status(m),
                reason=C.EXEC_REASON_SELF_MATCH,
            )  # fmt: skip
            if m.shown != old_shown:
                self._md_reduced(inst, m, old_shown - m.shown)
        t.qty -= d
        t.leaves -= d
        t.since += d
        if t.leaves == 0:
            self._er_removed(t, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_SELF_MATCH, d)
            return False
        self._er(
            t, C.EXEC_TYPE_RESTATED, last_qty=d, leaves=t.leaves, status=self._live_status(t),
            reason=C.EXEC_REASON_SELF_MATCH,
        )  # fmt: skip
        return True

    def _kill_taker_stp(self, t: _Order, removed: int) -> None:
        t.since += removed
        t.leaves = 0
        self._er_removed(t, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_SELF_MATCH, removed)

    # ------------------------------------------------------------------ auctions (§7.4, §7.5)

    def _book_clearing(self, inst: _Inst) -> tuple[int | None, int, int]:
        """§7.4 (P, V, I) of ``inst``'s live orders, full Leaves (hidden quantity included)."""
        buy, sell = inst.sides
        return clearing_price(
            sum(o.leaves for o in buy.markets),
            sum(o.leaves for o in sell.markets),
            [(p, sum(o.leaves for o in buy.levels[p].orders)) for p in buy.prices],
            [(p, sum(o.leaves for o in sell.levels[p].orders)) for p in sell.prices],
            inst.ref,
        )

    def _uncross(self, inst: _Inst) -> None:
        """§7.4 and §7.5 rules 1-6 of ``inst`` up to its end-of-event block; the caller adds
        the SecurityStatus when the phase changes."""
        p, v, _imbalance = self._book_clearing(inst)
        if p is not None:
            inst.ref = p
            buys = self._allocate(inst, BUY, p, v)
            sells = self._allocate(inst, SELL, p, v)
            if self.check:
                self._check_allocation(inst, buys, sells, v)
            self._pair(inst, p, buys, sells)
        self._cancel_remainders(inst)
        self._eoe(inst)
        if self.check:
            self._check_uncrossed(inst)

    def _allocate(self, inst: _Inst, side: int, p: int, v: int) -> list[tuple[_Order, int, int]]:
        """§7.5 rules 1-3: (order, level index, allocation) of each eligible order of ``side``
        in priority order; the market orders form level 0 when there are any."""
        s = inst.sides[side]
        levels = [list(s.markets)] if s.markets else []
        prices = list(reversed(s.prices)) if side == BUY else s.prices
        levels += [list(s.levels[q].orders) for q in prices if (q >= p if side == BUY else q <= p)]
        rows: list[tuple[_Order, int, int]] = []
        rest = v
        for k, orders in enumerate(levels):
            sizes = [o.leaves for o in orders]
            if sum(sizes) <= rest:
                shares = sizes
            elif inst.cfg.allocation == ALLOCATION_PRO_RATA:
                shares = _pro_rata(rest, sizes)
            else:
                shares = _by_time(rest, sizes)
            rest -= sum(shares)
            rows.extend((o, k, share) for o, share in zip(orders, shares, strict=True))
        return rows

    def _pair(
        self, inst: _Inst, p: int, buys: list[tuple[_Order, int, int]], sells: list[tuple[_Order, int, int]]
    ) -> None:
        """§7.5 rule 4: two pointers over the non-zero allocations, one fill per step."""
        buy_orders = [o for o, _, share in buys if share > 0]
        buy_left = [share for _, _, share in buys if share > 0]
        sell_orders = [o for o, _, share in sells if share > 0]
        sell_left = [share for _, _, share in sells if share > 0]
        px = self._p9(inst, p)
        bi = si = 0
        while bi < len(buy_orders) and si < len(sell_orders):
            b, s = buy_orders[bi], sell_orders[si]
            q = min(buy_left[bi], sell_left[si])
            trade_id = self._next_trade_id
            self._next_trade_id += 1
            self._auction_fill(inst, b, q)
            self._auction_fill(inst, s, q)
            for o in (b, s):
                self._er(
                    o, C.EXEC_TYPE_TRADE, last_px=px, last_qty=q, leaves=o.leaves,
                    status=C.ORD_STATUS_FILLED if o.leaves == 0 else C.ORD_STATUS_PARTIALLY_FILLED,
                    liquidity=C.LIQUIDITY_AUCTION,
                )  # fmt: skip
            for o in (b, s):
                if not o.market:
                    self._md_order_executed(inst, o, px, q, trade_id, C.AGGRESSOR_NONE)
            self._md_trade(inst, trade_id, px, q, C.AGGRESSOR_NONE, C.TRADE_CONDITION_AUCTION)
            buy_left[bi] -= q
            sell_left[si] -= q
            if buy_left[bi] == 0:
                bi += 1
            if sell_left[si] == 0:
                si += 1

    def _auction_fill(self, inst: _Inst, o: _Order, q: int) -> None:
        """Fill ``q`` of ``o`` in an uncross: §7.5 rule 5 for Shown (queue place kept), and the
        order leaves the book when it is done."""
        s = inst.sides[o.side]
        if not o.market:
            self._touch(inst, o.side, o.price)
        old_shown = o.shown
        o.cum += q
        o.leaves -= q
        o.since += q
        s.open_lots -= q
        if o.leaves == 0:
            o.shown = 0
        elif q < o.shown:
            o.shown -= q
        else:
            o.shown = o.leaves if o.display == 0 else min(o.display, o.leaves)
        if not o.market:
            s.levels[o.price].size += o.shown - old_shown
        if self.check:
            self._fill_totals[o.side] += q
        if o.leaves == 0:
            self._unrest(inst, o)

    def _cancel_remainders(self, inst: _Inst) -> None:
        """§7.5 rule 6: the market and IOC orders left after the fills, ascending OrderID."""
        victims = [o for s in inst.sides for o in s.markets]
        victims += [o for s in inst.sides for p in s.prices for o in s.levels[p].orders if o.tif == C.TIF_IOC]
        for o in sorted(victims, key=lambda o: o.order_id):
            removed = o.leaves
            self._er_removed(o, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_IOC_FOK_REMAINDER, removed)
            if not o.market:
                self._md_delete(inst, o.order_id)
            self._unrest(inst, o)
            o.since += removed
            o.leaves = 0

    def _check_allocation(
        self, inst: _Inst, buys: list[tuple[_Order, int, int]], sells: list[tuple[_Order, int, int]], v: int
    ) -> None:
        """§6 item 9 / §7.5 rule 7 on the allocations, before any fill: each side allocates V;
        one side's eligible orders all fill; priority holds on both (an order gets lots only
        if every order ahead of it is full: ahead = earlier for Time, at a better level for
        ProRata, whose margin orders share pro rata)."""
        time = inst.cfg.allocation != ALLOCATION_PRO_RATA
        full_side = False
        for rows in (buys, sells):
            if sum(share for _, _, share in rows) != v:
                raise EngineInvariantError(f"instrument {inst.sec}: uncross allocates other than V = {v}")
            full_side = full_side or all(share == o.leaves for o, _, share in rows)
            short_level: int | None = None
            for o, level, share in rows:
                if not 0 <= share <= o.leaves:
                    raise EngineInvariantError(f"order {o.order_id}: auction allocation {share} out of range")
                if short_level is not None and share > 0 and (time or level > short_level):
                    raise EngineInvariantError(f"order {o.order_id} filled while an order ahead is short")
                if share < o.leaves and short_level is None:
                    short_level = level
        if not full_side:
            raise EngineInvariantError(f"instrument {inst.sec}: no side of the uncross fills completely")

    def _check_uncrossed(self, inst: _Inst) -> None:
        """§7.5 rule 7: after an uncross the book is not crossed and no market or IOC order rests."""
        bid, ask = inst.best(BUY), inst.best(SELL)
        if bid is not None and ask is not None and bid >= ask:
            raise EngineInvariantError(f"instrument {inst.sec}: book crossed after an uncross ({bid} >= {ask})")
        if inst.sides[BUY].markets or inst.sides[SELL].markets:
            raise EngineInvariantError(f"instrument {inst.sec}: market order left after an uncross")
        for s in inst.sides:
            for p in s.prices:
                if any(o.tif == C.TIF_IOC for o in s.levels[p].orders):
                    raise EngineInvariantError(f"instrument {inst.sec}: IOC order left after an uncross")

    # ------------------------------------------------------------------ cancel

    def _lookup_check(self, o: _Order | None, sec: int, side: int, sid: int, sacct: int) -> _Order:
        """§3.7 checks after the lookup; raises _Reject, returns the order."""
        if o is None or o.sec != sec or (C.SIDE_BUY if o.side == BUY else C.SIDE_SELL) != side:
            raise _Reject(C.EXEC_REASON_UNKNOWN_ORDER)
        if not (o.session == sid or o.account == sacct):
            raise _Reject(C.EXEC_REASON_OTHER_ACCOUNT)
        return o

    def _cancel_reject(
        self, sid: int, clordid: int, orig: int, response_to: int, reason: int, order: _Order | None
    ) -> None:
        rec = _OCR.pack(
            *_H_OCR, clordid, self._t, C.NULL_U64 if order is None else order.order_id, self._exec_id(),
            orig, C.ORD_STATUS_REJECTED if order is None else self._live_status(order), response_to,
            C.cxl_rej_reason(reason), reason,
        )  # fmt: skip
        self._emit(rec, sid, -1, C.TEMPLATE_ORDER_CANCEL_REJECT)

    def _cancel(self, rec: bytes, sid: int, sacct: int) -> None:
        clordid, _tt, orig, order_id, sec, side = _OCRQ.unpack_from(rec, 0)
        try:
            if not self._clordid_ok(sid, clordid):
                raise _Reject(C.EXEC_REASON_DUPLICATE_CLORDID)
            if sec not in self._insts:
                raise _Reject(C.EXEC_REASON_UNKNOWN_SYMBOL)
            if side not in (C.SIDE_BUY, C.SIDE_SELL):
                raise _Reject(C.EXEC_REASON_INVALID_SIDE)
            if order_id == C.NULL_U64 and orig == C.NULL_U64:
                raise _Reject(C.EXEC_REASON_UNKNOWN_ORDER)
            found = self._orders.get(order_id) if order_id != C.NULL_U64 else self._by_clordid.get((sid, orig))
            o = self._lookup_check(found, sec, side, sid, sacct)
        except _Reject as r:
            self._cancel_reject(sid, clordid, orig, C.CXL_REJ_RESPONSE_TO_CANCEL, r.reason, r.order)
            return
        inst = self._insts[sec]
        removed = o.leaves
        er = self._er(
            o, C.EXEC_TYPE_CANCELED, clordid=clordid, last_qty=removed, leaves=0,
            status=C.ORD_STATUS_CANCELED, reason=C.EXEC_REASON_USER_REQUEST,
        )  # fmt: skip
        if o.session != sid:
            self._emit(bytes(er), sid, -1, C.TEMPLATE_EXECUTION_REPORT)
        if not o.market:
            self._md_delete(inst, o.order_id)
        self._unrest(inst, o)
        o.since += removed
        o.leaves = 0
        self._eoe(inst)

    # ------------------------------------------------------------------ replace

    def _replace(self, rec: bytes, sid: int, sacct: int) -> None:
        (clordid, _tt, orig, price, qty, sec, max_floor, side, ord_type, tif, exec_inst,
         min_qty) = _OCRR.unpack_from(rec, 0)  # fmt: skip
        try:
            if not self._clordid_ok(sid, clordid):
                raise _Reject(C.EXEC_REASON_DUPLICATE_CLORDID)
            o, ticks, display, crosses = self._check_replace(
                sid, sacct, orig, price, qty, sec, max_floor, side, ord_type, tif, exec_inst, min_qty, self._t
            )
        except _Reject as r:
            self._cancel_reject(sid, clordid, orig, C.CXL_REJ_RESPONSE_TO_REPLACE, r.reason, r.order)
            return
        inst = self._insts[sec]
        cancel = qty <= o.cum
        keep = not cancel and ticks == o.price and display == o.display and qty <= o.qty
        new_leaves = qty - o.cum
        if cancel:
            removed = o.leaves
            self._er(
                o, C.EXEC_TYPE_CANCELED, clordid=clordid, last_qty=removed, leaves=0,
                status=C.ORD_STATUS_CANCELED, reason=C.EXEC_REASON_USER_REQUEST,
            )  # fmt: skip
            self._md_delete(inst, o.order_id)
            self._unrest(inst, o)
            o.since += removed
            o.leaves = 0
        elif keep:
            old_shown = o.shown
            self._touch(inst, o.side, o.price)
            s = inst.sides[o.side]
            s.open_lots += new_leaves - o.leaves
            del self._by_clordid[(o.session, o.clordid)]
            o.clordid = clordid
            self._by_clordid[(o.session, o.clordid)] = o
            o.qty = qty
            o.leaves = new_leaves
            o.shown = min(o.shown, o.leaves)
            s.levels[o.price].size += o.shown - old_shown
            o.base_leaves = o.leaves
            o.since = 0
            self._er(o, C.EXEC_TYPE_REPLACED, last_qty=qty, leaves=o.leaves, status=self._live_status(o))
            if o.shown != old_shown:
                self._md_reduced(inst, o, old_shown - o.shown)
        else:
            old_id = o.order_id
            self._unrest(inst, o)
            o.order_id = self._next_order_id
            self._next_order_id += 1
            o.clordid = clordid
            o.price = ticks
            o.qty = qty
            o.leaves = new_leaves
            o.display = display
            o.shown = new_leaves if display == 0 else min(display, new_leaves)
            o.base_leaves = o.leaves
            o.since = 0
            self._er(o, C.EXEC_TYPE_REPLACED, last_qty=qty, leaves=o.leaves, status=self._live_status(o))
            if crosses:
                self._md_delete(inst, old_id)
                self._aggress(inst, o, ticks)
            else:
                self._rest(inst, o)
                self._emit(
                    _ORDER_REPLACE.pack(
                        *_md_header(C.TEMPLATE_ORDER_REPLACE), self._t, inst.sec, 0, old_id, o.order_id,
                        self._p9(inst, o.price), o.shown, C.MD_ENTRY_BID + o.side, 0,
                    ),
                    C.MD_DEST, inst.sec, C.TEMPLATE_ORDER_REPLACE,
                )  # fmt: skip
        self._eoe(inst)

    def _check_replace(
        self, sid: int, sacct: int, orig: int, price: int, qty: int, sec: int, max_floor: int, side: int,
        ord_type: int, tif: int, exec_inst: int, min_qty: int, t: int,
    ) -> tuple[_Order, int, int, bool]:  # fmt: skip
        """§3.8 rule 1 after the ClOrdID check, at time ``t``, changing nothing: raises _Reject,
        else returns (order, new price in ticks, new Display, whether it crosses the opposite
        best in a phase that matches on entry)."""
        inst = self._insts.get(sec)
        reason = self._replace_field_reason(inst, price, qty, max_floor, side, ord_type, tif, exec_inst, min_qty)
        if reason:
            raise _Reject(reason)
        assert inst is not None
        o = self._lookup_check(self._by_clordid.get((sid, orig)), sec, side, sid, sacct)
        if o.market or o.tif != tif or (1 if o.post_only else 0) != exec_inst:
            raise _Reject(C.EXEC_REASON_UNSUPPORTED, o)
        ticks = price // inst.tick
        display = 0 if max_floor == C.NULL_U32 else max_floor
        matching = inst.matches_on_entry()
        if inst.phase in (PHASE_CLOSED, PHASE_HALTED):
            raise _Reject(C.EXEC_REASON_TRADING_STATE_NOT_OPEN, o)
        if o.tif == C.TIF_GTD and o.expire < _day(t):
            raise _Reject(C.EXEC_REASON_INVALID_EXPIRE_DATE, o)
        low, high = inst.cfg.band(inst.ref)
        if not low <= ticks <= high:
            raise _Reject(C.EXEC_REASON_PRICE_OUTSIDE_BAND, o)
        if qty > inst.cfg.max_notional // max(abs(ticks), 1):
            raise _Reject(C.EXEC_REASON_NOTIONAL_OVER_MAX, o)
        cancel = qty <= o.cum
        keep = not cancel and ticks == o.price and display == o.display and qty <= o.qty
        new_leaves = qty - o.cum
        if (
            not cancel
            and not keep
            and (
                self._n_levels >= self.config.max_levels
                or inst.sides[o.side].open_lots - o.leaves + new_leaves > _U32_MAX
            )
        ):
            raise _Reject(C.EXEC_REASON_CAPACITY_FULL, o)
        best_opp = inst.best(1 - o.side)
        crosses = matching and best_opp is not None and self._crosses(o.side, ticks, best_opp)
        if o.post_only and crosses:
            raise _Reject(C.EXEC_REASON_POST_ONLY_WOULD_CROSS, o)
        return o, ticks, display, crosses

    @staticmethod
    def _replace_field_reason(
        inst: _Inst | None, price: int, qty: int, max_floor: int, side: int, ord_type: int,
        tif: int, exec_inst: int, min_qty: int,
    ) -> int:  # fmt: skip
        """WIRE.md §5.2 OrderCancelReplaceRequest checks (1)-(12); 0 if all pass."""
        if inst is None:
            return C.EXEC_REASON_UNKNOWN_SYMBOL
        if side not in (C.SIDE_BUY, C.SIDE_SELL):
            return C.EXEC_REASON_INVALID_SIDE
        if ord_type in (C.ORD_TYPE_MARKET, C.ORD_TYPE_STOP, C.ORD_TYPE_STOP_LIMIT):
            return C.EXEC_REASON_UNSUPPORTED
        if ord_type != C.ORD_TYPE_LIMIT:
            return C.EXEC_REASON_INVALID_ORD_TYPE
        if tif not in _VALID_TIF:
            return C.EXEC_REASON_INVALID_TIME_IN_FORCE
        if exec_inst & C.EXEC_INST_RESERVED_MASK:
            return C.EXEC_REASON_INVALID_EXEC_INST
        if exec_inst & C.EXEC_INST_ALL_OR_NONE:
            return C.EXEC_REASON_UNSUPPORTED
        if qty < 1:
            return C.EXEC_REASON_INCORRECT_QTY
        if qty > inst.cfg.max_order_qty:
            return C.EXEC_REASON_QTY_OVER_MAX
        if price == C.NULL_PRICE:
            return C.EXEC_REASON_PRICE_REQUIRED
        if price % inst.tick:
            return C.EXEC_REASON_PRICE_OFF_TICK
        if min_qty != C.NULL_U32:
            return C.EXEC_REASON_UNSUPPORTED
        if max_floor == 0:
            return C.EXEC_REASON_INVALID_MAX_FLOOR
        post_only = bool(exec_inst & C.EXEC_INST_POST_ONLY)
        if (post_only or max_floor != C.NULL_U32) and tif not in _RESTING_TIF:
            return C.EXEC_REASON_UNSUPPORTED
        return 0

    # ------------------------------------------------------------------ mass cancel and bulk removal

    def _mass_cancel_scope(self, rec: bytes) -> tuple[int, list[_Order]]:
        """(reason, orders in scope) of a mass cancel, without changing anything."""
        clordid, _tt, sec, account, req_type, side = _OMCRQ.unpack_from(rec, 0)
        sid, sacct, _ = _INB_TAIL.unpack_from(rec, 60)
        if clordid <= self._last_clordid.get(sid, 0):
            return C.EXEC_REASON_DUPLICATE_CLORDID, []
        if req_type not in (C.MASS_CANCEL_TYPE_SECURITY, C.MASS_CANCEL_TYPE_ALL):
            return C.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST, []
        if (req_type == C.MASS_CANCEL_TYPE_SECURITY) != (sec != C.NULL_U32):
            return C.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST, []
        if sec != C.NULL_U32 and sec not in self._insts:
            return C.EXEC_REASON_UNKNOWN_SYMBOL, []
        if side not in (C.MASS_CANCEL_SIDE_BOTH, C.SIDE_BUY, C.SIDE_SELL):
            return C.EXEC_REASON_INVALID_SIDE, []
        acct = sacct if account == C.NULL_U32 else account
        want_side = None if side == C.MASS_CANCEL_SIDE_BOTH else (BUY if side == C.SIDE_BUY else SELL)
        victims = [
            o
            for o in self._orders.values()
            if o.account == acct and (sec == C.NULL_U32 or o.sec == sec) and (want_side is None or o.side == want_side)
        ]
        return 0, victims

    def _mass_cancel(self, rec: bytes, sid: int, sacct: int) -> None:
        clordid, _tt, sec, account, req_type, side = _OMCRQ.unpack_from(rec, 0)
        reason, victims = self._mass_cancel_scope(rec)
        if reason != C.EXEC_REASON_DUPLICATE_CLORDID:
            self._last_clordid[sid] = clordid
        response = C.MASS_CANCEL_RESPONSE_REJECTED if reason else req_type
        out = _OMCR.pack(
            *_H_OMCR, clordid, self._t, self._exec_id(), len(victims), sec, req_type, response,
            C.mass_cancel_reject_reason(reason), reason, account, side,
        )  # fmt: skip
        self._emit(out, sid, -1, C.TEMPLATE_ORDER_MASS_CANCEL_REPORT)
        if not reason:
            self._bulk_remove(victims, C.EXEC_TYPE_CANCELED, C.EXEC_REASON_MASS_CANCEL)

    def _bulk_remove(self, victims: Iterable[_Order], exec_type: int, reason: int) -> None:
        """Per instrument ascending, per order ascending OrderID: ER + OrderDelete; then its block."""
        ordered = sorted(victims, key=lambda o: (o.sec, o.order_id))
        for k, o in enumerate(ordered):
            inst = self._insts[o.sec]
            removed = o.leaves
            self._er_removed(o, exec_type, reason, removed)
            if not o.market:
                self._md_delete(inst, o.order_id)
            self._unrest(inst, o)
            o.since += removed
            o.leaves = 0
            if self.check and exec_type == C.EXEC_TYPE_EXPIRED:
                if o.order_id in self._expired_ids:
                    raise EngineInvariantError(f"order {o.order_id} expired twice")
                self._expired_ids.add(o.order_id)
            if k + 1 == len(ordered) or ordered[k + 1].sec != o.sec:
                self._eoe(inst)

    # ------------------------------------------------------------------ state-hash ordering

    @staticmethod
    def _sorted_orders(inst: _Inst) -> list[_Order]:
        out: list[_Order] = []
        for side in (BUY, SELL):
            s = inst.sides[side]
            out.extend(s.markets)
            prices = reversed(s.prices) if side == BUY else s.prices
            for p in prices:
                out.extend(s.levels[p].orders)
        return out
