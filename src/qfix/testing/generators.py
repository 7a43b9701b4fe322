"""Seeded inbound-stream generators (ENGINE.md §9, §10) and the stream file format.

Theory of operation. Every generator draws from ``numpy.random.Generator(PCG64(seed))`` and
is closed-loop: each record is built from the book as seen through an untimed engine
(``_Driver``), which feeds the record to the engine at once and rebuilds its own model of
live orders and best prices from the engine's OUTPUT records only (ExecutionReports and
BestBidOffer), so any ``MatchingEngine`` can drive it. The model keeps live OrderIDs in
index-addressable sets (list + position map, swap-remove), so random picks depend only on
the sequence of events, never on dict iteration order.

Stream file (``save_stream`` / ``load_stream``): a 16-byte header ``<8sII`` = magic
``b"QFIXSTRM"``, format version 1, record count; then ``count`` raw 80-byte INBOUND
records. ``stream_digest`` is the BLAKE2b (64-byte digest) hex of the whole file.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from qfix.engine.config import (
    BAND_BPS,
    PHASE_PRE_OPEN,
    EngineConfig,
    InstrumentConfig,
)
from qfix.engine.contract import OUTPUT_FULL, MatchingEngine
from qfix.testing.reference import ReferenceEngine, output_bound_new_order
from qfix.wire import codes as C  # noqa: N812 - the code tables are read on every line
from qfix.wire import schema

__all__ = [
    "STREAM_MAGIC",
    "STREAM_VERSION",
    "Workload",
    "default_random_config",
    "default_random_instruments",
    "default_random_sessions",
    "insert",
    "load_stream",
    "mix",
    "multi",
    "pack_cancel",
    "pack_mass_cancel",
    "pack_new_order",
    "pack_replace",
    "random_stream",
    "save_stream",
    "stream_digest",
    "workload",
]

STREAM_MAGIC: Final = b"QFIXSTRM"
STREAM_VERSION: Final = 1
_STREAM_HEADER = struct.Struct("<8sII")

#: 2026-01-01T00:00:00Z, the first RecvTime of every generated stream
BASE_TIME: Final = 1_767_225_600 * 10**9
_NS_PER_DAY: Final = 86_400 * 10**9

_NOS = struct.Struct("<HHHHQQqIIIIIBBBBB1xH")
_OCRQ = struct.Struct("<HHHHQQQQIB15x")
_OCRR = struct.Struct("<HHHHQQQqIIIBBBBI")
_OMCRQ = struct.Struct("<HHHHQQIIBB26x")
_TAIL = struct.Struct("<II4xQ")
_ER_BODY = struct.Struct("<QQQQqIIBBBB")

#: the largest U (records) a generated record may need; keeps output buffers bounded
_MAX_BOUND: Final = 200_000


# ----------------------------------------------------------------------------- stream files


def save_stream(path: str | Path, records: np.ndarray) -> None:
    """Write INBOUND ``records`` to ``path`` in the stream format (module docstring)."""
    arr = np.ascontiguousarray(np.asarray(records).view(schema.INBOUND).reshape(-1))
    with open(path, "wb") as f:
        f.write(_STREAM_HEADER.pack(STREAM_MAGIC, STREAM_VERSION, len(arr)))
        f.write(arr.tobytes())


def load_stream(path: str | Path) -> np.ndarray:
    """Read a stream file; raises ValueError on a bad magic, version or length."""
    data = Path(path).read_bytes()
    if len(data) < _STREAM_HEADER.size:
        raise ValueError(f"{path}: shorter than the 16-byte stream header")
    magic, version, count = _STREAM_HEADER.unpack_from(data, 0)
    if magic != STREAM_MAGIC or version != STREAM_VERSION:
        raise ValueError(f"{path}: not a qfix stream file of version {STREAM_VERSION}")
    body = data[_STREAM_HEADER.size :]
    if len(body) != count * C.INBOUND_SIZE:
        raise ValueError(f"{path}: header says {count} records, body holds {len(body)} bytes")
    return np.frombuffer(body, dtype=schema.INBOUND).copy()


def stream_digest(path: str | Path) -> str:
    """BLAKE2b hex digest of the stream file (how benchmark reports name a workload)."""
    return hashlib.blake2b(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- record packing


def _hdr(template_id: int) -> tuple[int, int, int, int]:
    return (C.BLOCK_LENGTH, template_id, C.SCHEMA_ORDER_ENTRY, C.SCHEMA_VERSION)


def pack_new_order(
    *, clordid: int, price: int, qty: int, sec: int, account: int, min_qty: int, max_floor: int,
    side: int, ord_type: int, tif: int, exec_inst: int, smp: int, expire: int,
    session: int, session_account: int, recv_time: int,
) -> bytes:  # fmt: skip
    """80-byte NewOrderSingle inbound record; every field given raw (nulls included)."""
    return _NOS.pack(
        *_hdr(C.TEMPLATE_NEW_ORDER_SINGLE), clordid, 0, price, qty, sec, account, min_qty, max_floor,
        side, ord_type, tif, exec_inst, smp, expire,
    ) + _TAIL.pack(session, session_account, recv_time)  # fmt: skip


def pack_cancel(
    *, clordid: int, orig: int, order_id: int, sec: int, side: int, session: int, session_account: int,
    recv_time: int,
) -> bytes:  # fmt: skip
    return _OCRQ.pack(*_hdr(C.TEMPLATE_ORDER_CANCEL_REQUEST), clordid, 0, orig, order_id, sec, side) + _TAIL.pack(
        session, session_account, recv_time
    )


def pack_replace(
    *, clordid: int, orig: int, price: int, qty: int, sec: int, max_floor: int, side: int,
    ord_type: int, tif: int, exec_inst: int, min_qty: int, session: int, session_account: int,
    recv_time: int,
) -> bytes:  # fmt: skip
    return _OCRR.pack(
        *_hdr(C.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST), clordid, 0, orig, price, qty, sec, max_floor,
        side, ord_type, tif, exec_inst, min_qty,
    ) + _TAIL.pack(session, session_account, recv_time)  # fmt: skip


def pack_mass_cancel(
    *, clordid: int, sec: int, account: int, request_type: int, side: int, session: int,
    session_account: int, recv_time: int,
) -> bytes:  # fmt: skip
    return _OMCRQ.pack(
        *_hdr(C.TEMPLATE_ORDER_MASS_CANCEL_REQUEST), clordid, 0, sec, account, request_type, side
    ) + _TAIL.pack(session, session_account, recv_time)


# ----------------------------------------------------------------------------- closed-loop driver


class _IdSet:
    """Set of ints with O(1) add/remove and uniform random choice in insertion-derived order."""

    __slots__ = ("items", "pos")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.pos: dict[int, int] = {}

    def add(self, x: int) -> None:
        if x not in self.pos:
            self.pos[x] = len(self.items)
            self.items.append(x)

    def discard(self, x: int) -> None:
        i = self.pos.pop(x, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.pos[last] = i

    def __len__(self) -> int:
        return len(self.items)

    def choice(self, rng: np.random.Generator) -> int:
        return self.items[int(rng.integers(len(self.items)))]


@dataclass(slots=True)
class _Live:
    order_id: int
    clordid: int
    session: int
    sec: int
    side: int  # wire Side
    price: int  # wire PRICE9; NULL_PRICE for market
    qty: int
    leaves: int
    max_floor: int  # raw, NULL_U32 if none
    tif: int
    exec_inst: int
    ord_type: int


@dataclass(slots=True)
class _Intent:
    """What the record being processed asks for, to interpret its ER New / Replaced."""

    session: int
    clordid: int
    sec: int = 0
    side: int = 0
    price: int = 0
    max_floor: int = C.NULL_U32
    tif: int = 0
    exec_inst: int = 0
    ord_type: int = 0
    orig_clordid: int = 0  # replace target, looked up in the requester's session


class _Driver:
    """Feeds records one at a time to an engine and tracks its live orders from the outputs."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self.out = np.zeros(1 << 14, dtype=schema.OUTPUT)
        self.records: list[bytes] = []
        self.live: dict[int, _Live] = {}
        self.by_sec: dict[int, _IdSet] = {}
        self.by_session_sec: dict[tuple[int, int], _IdSet] = {}
        self.by_clordid: dict[tuple[int, int], int] = {}
        self.side_count: dict[tuple[int, int], int] = {}
        self.lots: dict[int, int] = {}
        self.bbo: dict[int, tuple[int | None, int | None]] = {}
        self.intent: _Intent | None = None

    # -- model upkeep
    def _add(self, o: _Live) -> None:
        self.live[o.order_id] = o
        self.by_sec.setdefault(o.sec, _IdSet()).add(o.order_id)
        self.by_session_sec.setdefault((o.session, o.sec), _IdSet()).add(o.order_id)
        self.by_clordid[(o.session, o.clordid)] = o.order_id
        key = (o.sec, o.side)
        self.side_count[key] = self.side_count.get(key, 0) + 1
        self.lots[o.sec] = self.lots.get(o.sec, 0) + o.leaves

    def _remove(self, order_id: int) -> _Live | None:
        o = self.live.pop(order_id, None)
        if o is None:
            return None
        self.by_sec[o.sec].discard(order_id)
        self.by_session_sec[(o.session, o.sec)].discard(order_id)
        del self.by_clordid[(o.session, o.clordid)]
        self.side_count[(o.sec, o.side)] -= 1
        self.lots[o.sec] -= o.leaves
        return o

    def _set_leaves(self, o: _Live, leaves: int) -> None:
        self.lots[o.sec] += leaves - o.leaves
        o.leaves = leaves

    def count(self, sec: int, side: int | None = None) -> int:
        if side is None:
            return len(self.by_sec.get(sec, ()))
        return self.side_count.get((sec, side), 0)

    def bound_new_order(self, sec: int, qty: int) -> int:
        return output_bound_new_order(qty, self.lots.get(sec, 0), self.count(sec))

    # -- processing
    def submit(self, rec: bytes, intent: _Intent | None = None) -> None:
        self.records.append(rec)
        self.intent = intent
        arr = np.frombuffer(rec, dtype=schema.INBOUND)
        while True:
            res = self.engine.process(arr, self.out)
            self._absorb(res.written)
            if res.status != OUTPUT_FULL:
                break
            if res.needed > 1 << 24:
                raise RuntimeError(f"generated record needs an output bound of {res.needed} records")
            self.out = np.zeros(max(res.needed, 2 * len(self.out)), dtype=schema.OUTPUT)
        self.intent = None

    def _absorb(self, written: int) -> None:
        if not written:
            return
        buf = self.out[:written].tobytes()
        for off in range(0, written * 64, 64):
            tid = buf[off + 2]
            if tid == C.TEMPLATE_EXECUTION_REPORT:
                dest = int.from_bytes(buf[off + 60 : off + 64], "little")
                self._on_er(dest, *_ER_BODY.unpack_from(buf, off + 8))
            elif tid == C.TEMPLATE_BEST_BID_OFFER:
                sec = int.from_bytes(buf[off + 16 : off + 20], "little")
                bid, ask = struct.unpack_from("<qq", buf, off + 24)
                self.bbo[sec] = (None if bid == C.NULL_PRICE else bid, None if ask == C.NULL_PRICE else ask)

    def _on_er(
        self, dest: int, clordid: int, _tt: int, order_id: int, _exec_id: int, last_px: int,
        last_qty: int, leaves: int, exec_type: int, _status: int, _reason: int, _lli: int,
    ) -> None:  # fmt: skip
        it = self.intent
        if exec_type == C.EXEC_TYPE_NEW:
            assert it is not None and it.clordid == clordid and it.session == dest
            self._add(
                _Live(
                    order_id, clordid, dest, it.sec, it.side, it.price, last_qty, leaves, it.max_floor,
                    it.tif, it.exec_inst, it.ord_type,
                )
            )  # fmt: skip
        elif exec_type == C.EXEC_TYPE_TRADE:
            o = self.live.get(order_id)
            if o is not None:
                if leaves == 0:
                    self._remove(order_id)
                else:
                    self._set_leaves(o, leaves)
        elif exec_type in (C.EXEC_TYPE_CANCELED, C.EXEC_TYPE_EXPIRED):
            self._remove(order_id)
        elif exec_type == C.EXEC_TYPE_RESTATED:
            o = self.live.get(order_id)
            if o is not None:
                o.qty -= last_qty
                self._set_leaves(o, leaves)
        elif exec_type == C.EXEC_TYPE_REPLACED:
            assert it is not None and it.clordid == clordid and it.session == dest
            old = self._remove(self.by_clordid[(dest, it.orig_clordid)])
            assert old is not None
            old.order_id = order_id
            old.clordid = clordid
            old.price = last_px
            old.qty = last_qty
            old.leaves = leaves
            old.max_floor = it.max_floor
            self._add(old)

    def records_array(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.records), dtype=schema.INBOUND).copy()


# ----------------------------------------------------------------------------- random_stream


def default_random_instruments() -> tuple[InstrumentConfig, ...]:
    """Instruments of the differential stream: tick sizes, bands, limits, STP defaults and
    phases that differ, so every check has something to bite on."""
    return (
        InstrumentConfig(
            security_id=1, symbol="AAA", tick_size_p9=1, ref=1_000, band_width=100, collar=5,
            max_order_qty=1_000, default_stp=C.SMP_CANCEL_PASSIVE,
        ),
        InstrumentConfig(
            security_id=2, symbol="BBB", tick_size_p9=10_000_000, ref=10_000, band_width=500,
            band_kind=BAND_BPS, collar=20, max_notional=5_000_000, default_stp=C.SMP_CANCEL_AGGRESSIVE,
        ),
        InstrumentConfig(
            security_id=7, symbol="NEG", tick_size_p9=5, ref=-20, band_width=30, collar=3,
            default_stp=C.SMP_DECREMENT,
        ),
        InstrumentConfig(
            security_id=9, symbol="CCC", tick_size_p9=1_000, ref=50, band_width=40, collar=2,
            max_notional=100_000, default_stp=C.SMP_CANCEL_BOTH,
        ),
        InstrumentConfig(
            security_id=11, symbol="PRE", tick_size_p9=1, ref=500, band_width=50, phase=PHASE_PRE_OPEN,
        ),
        InstrumentConfig(
            security_id=12, symbol="FBA", tick_size_p9=1, ref=700, band_width=50, fba_interval_ns=0,
        ),
    )  # fmt: skip


def default_random_sessions() -> tuple[tuple[int, int], ...]:
    """(SessionID, SessionAccount): sessions 0/1 and 4/5 share an account, so cross-session
    cancels are sometimes allowed and STP fires across sessions."""
    return ((0, 500), (1, 500), (2, 501), (3, 502), (4, 503), (5, 503))


def default_random_config() -> EngineConfig:
    """Account 502 shares STP group 501 (ENGINE.md §1.2 rule 2); event hash on."""
    return EngineConfig(stp_groups={502: 501}, event_hash=True)


@dataclass
class _RandomState:
    rng: np.random.Generator
    drv: _Driver
    insts: dict[int, InstrumentConfig]
    secs: list[int]
    sec_weights: np.ndarray
    sessions: list[tuple[int, int]]
    p_invalid: float
    depth: tuple[int, int]
    now: int = BASE_TIME
    last_clordid: dict[int, int] = field(default_factory=dict)


def random_stream(
    seed: int,
    n: int,
    instruments: Sequence[InstrumentConfig] | None = None,
    *,
    config: EngineConfig | None = None,
    engine: MatchingEngine | None = None,
    sessions: Sequence[tuple[int, int]] | None = None,
    p_invalid: float = 0.06,
    depth: tuple[int, int] = (8, 30),
) -> np.ndarray:
    """``n`` INBOUND records for differential tests, closed-loop through ``engine``.

    ``engine`` must be configured with ``instruments`` and ``config``; by default a fresh
    ReferenceEngine is built from them. ``depth`` = (thin, deep) live orders per instrument:
    below thin inserts dominate, above deep cancels do (as exchange-core's generator).
    """
    insts = tuple(instruments) if instruments is not None else default_random_instruments()
    cfg = config if config is not None else default_random_config()
    eng: MatchingEngine = engine if engine is not None else ReferenceEngine(insts, cfg)
    secs = sorted(i.security_id for i in insts)
    weights = np.array([0.3 if next(i for i in insts if i.security_id == s).phase != 2 else 1.0 for s in secs])
    st = _RandomState(
        rng=np.random.Generator(np.random.PCG64(seed)),
        drv=_Driver(eng),
        insts={i.security_id: i for i in insts},
        secs=secs,
        sec_weights=weights / weights.sum(),
        sessions=list(sessions) if sessions is not None else list(default_random_sessions()),
        p_invalid=p_invalid,
        depth=depth,
    )
    for _ in range(n):
        _random_step(st)
    return st.drv.records_array()


def _next_clordid(st: _RandomState, session: int) -> int:
    last = st.last_clordid.get(session, 0)
    if last and st.rng.random() < 0.02:
        return last if st.rng.random() < 0.7 else max(0, last - int(st.rng.integers(1, 5)))
    c = last + int(st.rng.integers(1, 4))
    st.last_clordid[session] = c
    return c


def _advance_clock(st: _RandomState) -> int:
    r = st.rng.random()
    if r < 0.005:
        st.now += _NS_PER_DAY  # makes GTD orders of yesterday expire-able / invalid
    elif r < 0.015:
        return st.now - int(st.rng.integers(1, 1000))  # a late RecvTime: the engine takes max
    else:
        st.now += int(st.rng.integers(0, 2000))
    return st.now


def _mid_ticks(st: _RandomState, sec: int) -> int:
    inst = st.insts[sec]
    bid, ask = st.drv.bbo.get(sec, (None, None))
    if bid is not None and ask is not None:
        return (bid + ask) // 2 // inst.tick_size_p9
    if bid is not None:
        return bid // inst.tick_size_p9 + 1
    if ask is not None:
        return ask // inst.tick_size_p9 - 1
    return inst.ref


def _random_step(st: _RandomState) -> None:
    rng = st.rng
    sec = st.secs[int(rng.choice(len(st.secs), p=st.sec_weights))]
    live = st.drv.count(sec)
    thin, deep = st.depth
    if live < thin:
        w = (70.0, 8.0, 8.0, 2.0)
    elif live > deep:
        w = (25.0, 40.0, 25.0, 4.0)
    else:
        w = (50.0, 20.0, 25.0, 1.5)
    kind = int(rng.choice(4, p=np.array(w) / sum(w)))
    session, sacct = st.sessions[int(rng.integers(len(st.sessions)))]
    if kind == 0 or (live == 0 and kind in (1, 2)):
        _random_new_order(st, sec, session, sacct)
    elif kind == 1:
        _random_cancel(st, sec, session, sacct)
    elif kind == 2:
        _random_replace(st, sec, session, sacct)
    else:
        _random_mass_cancel(st, sec, session, sacct)


def _random_new_order(st: _RandomState, sec: int, session: int, sacct: int) -> None:
    rng = st.rng
    inst = st.insts[sec]
    tick = inst.tick_size_p9
    t = _advance_clock(st)
    day = t // _NS_PER_DAY
    side = C.SIDE_BUY if rng.random() < 0.5 else C.SIDE_SELL
    sign = 1 if side == C.SIDE_BUY else -1
    mid = _mid_ticks(st, sec)
    low, high = inst.band(inst.ref)
    # passive by default, crossing sometimes
    off = int(rng.integers(-4, 12))
    ticks = min(max(mid - sign * (1 + off), low), high)
    qty = int(rng.integers(1, 40))
    f = {
        "clordid": _next_clordid(st, session), "price": ticks * tick, "qty": qty, "sec": sec,
        "account": C.NULL_U32 if rng.random() < 0.8 else sacct, "min_qty": C.NULL_U32,
        "max_floor": C.NULL_U32, "side": side, "ord_type": C.ORD_TYPE_LIMIT,
        "tif": [C.TIF_DAY, C.TIF_GTC, C.TIF_GTD][int(rng.integers(3))], "exec_inst": 0,
        "smp": C.SMP_DEFAULT if rng.random() < 0.6 else int(rng.integers(1, 5)),
        "expire": C.NULL_DATE, "session": session, "session_account": sacct, "recv_time": t,
    }  # fmt: skip
    r = rng.random()
    if r < 0.10:
        f["tif"] = C.TIF_IOC
        f["price"] = min(max(mid + sign * int(rng.integers(0, 6)), low), high) * tick
    elif r < 0.16:
        f["tif"] = C.TIF_FOK
        f["price"] = min(max(mid + sign * int(rng.integers(0, 6)), low), high) * tick
    elif r < 0.24:
        f["ord_type"] = C.ORD_TYPE_MARKET
        f["price"] = C.NULL_PRICE
        f["tif"] = [C.TIF_DAY, C.TIF_IOC, C.TIF_FOK][int(rng.integers(3))]
    elif r < 0.31:
        f["min_qty"] = int(rng.integers(1, qty + 1))
        f["tif"] = [C.TIF_DAY, C.TIF_GTC, C.TIF_IOC][int(rng.integers(3))]
        f["price"] = min(max(mid + sign * int(rng.integers(-2, 6)), low), high) * tick
        if rng.random() < 0.2:
            f["ord_type"] = C.ORD_TYPE_MARKET
            f["price"] = C.NULL_PRICE
            f["tif"] = C.TIF_IOC
    elif r < 0.39:
        f["exec_inst"] = C.EXEC_INST_POST_ONLY
        if rng.random() < 0.3:  # at or through the opposite best: PostOnlyWouldCross
            f["price"] = min(max(mid + sign * int(rng.integers(0, 3)), low), high) * tick
    elif r < 0.49:
        f["qty"] = qty = int(rng.integers(5, 120))
        f["max_floor"] = int(rng.integers(1, qty + 10))
    elif r < 0.52:  # extreme sizes and prices
        f["qty"] = inst.max_order_qty if rng.random() < 0.5 else int(rng.integers(1, 3))
        f["price"] = (low if rng.random() < 0.5 else high) * tick
    if f["tif"] == C.TIF_GTD:
        f["expire"] = day + int(rng.integers(0, 3))
    if rng.random() < st.p_invalid:
        _spoil_new_order(st, f, inst, day, mid, sign, low, high)
    if f["qty"] > 10_000 and st.drv.bound_new_order(f["sec"], f["qty"]) > _MAX_BOUND:
        f["qty"] = int(rng.integers(1, 40))  # keep the §2.4 output bound bounded
    st.drv.submit(
        pack_new_order(**f),
        _Intent(
            session=session, clordid=f["clordid"], sec=f["sec"], side=f["side"], price=f["price"],
            max_floor=f["max_floor"], tif=f["tif"], exec_inst=f["exec_inst"], ord_type=f["ord_type"],
        ),
    )  # fmt: skip


def _spoil_new_order(
    st: _RandomState, f: dict[str, int], inst: InstrumentConfig, day: int, mid: int, sign: int,
    low: int, high: int,
) -> None:  # fmt: skip
    """Make ``f`` fail one WIRE.md §5.2/§5.3 or ENGINE.md §3.1 check (maybe not the first)."""
    rng = st.rng
    tick = inst.tick_size_p9
    k = int(rng.integers(26))
    if k == 0:
        f["sec"] = 999_999
    elif k == 1:
        f["side"] = [0x30, 0x33, 0][int(rng.integers(3))]
    elif k == 2:
        f["ord_type"] = [C.ORD_TYPE_STOP, C.ORD_TYPE_STOP_LIMIT, 0x35, 0][int(rng.integers(4))]
    elif k == 3:
        f["tif"] = [0x32, 0x35, 0x37, 0][int(rng.integers(4))]
    elif k == 4:
        f["exec_inst"] = [0x04, 0x80, C.EXEC_INST_ALL_OR_NONE, 0x03][int(rng.integers(4))]
    elif k == 5:
        f["smp"] = [0, 5, 254][int(rng.integers(3))]
    elif k == 6:
        f["qty"] = 0
    elif k == 7:
        f["qty"] = min(inst.max_order_qty + 1, C.NULL_U32)
    elif k == 8:
        f["price"] = C.NULL_PRICE  # limit without price
    elif k == 9:
        f["ord_type"] = C.ORD_TYPE_MARKET  # market with a price
        f["tif"] = C.TIF_DAY
    elif k == 10:
        if f["price"] == C.NULL_PRICE:
            f["ord_type"], f["tif"], f["price"] = C.ORD_TYPE_LIMIT, C.TIF_DAY, inst.ref * tick
        f["price"] += 1 if tick > 1 else 0
    elif k == 11:
        f["expire"] = day + 1 if f["tif"] != C.TIF_GTD else C.NULL_DATE
    elif k == 12:
        f["min_qty"] = 0 if rng.random() < 0.5 else f["qty"] + 1
    elif k == 13:
        f["max_floor"] = 0
    elif k == 14:
        f["ord_type"], f["price"], f["tif"] = C.ORD_TYPE_MARKET, C.NULL_PRICE, C.TIF_GTC
    elif k == 15:
        f["ord_type"], f["price"], f["exec_inst"] = C.ORD_TYPE_MARKET, C.NULL_PRICE, C.EXEC_INST_POST_ONLY
    elif k == 16:
        f["ord_type"], f["price"], f["max_floor"] = C.ORD_TYPE_MARKET, C.NULL_PRICE, 5
    elif k == 17:
        f["exec_inst"], f["tif"], f["min_qty"] = C.EXEC_INST_POST_ONLY, C.TIF_IOC, C.NULL_U32
    elif k == 18:
        f["exec_inst"], f["min_qty"] = C.EXEC_INST_POST_ONLY, 1
        f["tif"] = C.TIF_DAY if f["tif"] not in (C.TIF_DAY, C.TIF_GTC) else f["tif"]
    elif k == 19:
        f["max_floor"], f["tif"], f["min_qty"] = 3, C.TIF_IOC, C.NULL_U32
    elif k == 20:
        f["tif"], f["min_qty"], f["expire"] = C.TIF_FOK, 1, C.NULL_DATE
    elif k == 21:
        f["tif"], f["expire"] = C.TIF_GTD, day - 1
    elif k == 22:
        f["price"] = (high + 1 if rng.random() < 0.5 else low - 1) * tick
    elif k == 23:
        px = max(abs(f["price"] // tick), 1) if f["price"] != C.NULL_PRICE else max(abs(inst.ref), 1)
        f["qty"] = min(inst.max_notional // px + 1, inst.max_order_qty)
    elif k == 24:
        f["exec_inst"], f["min_qty"], f["ord_type"] = C.EXEC_INST_POST_ONLY, C.NULL_U32, C.ORD_TYPE_LIMIT
        f["tif"], f["max_floor"] = C.TIF_GTC, C.NULL_U32
        f["expire"] = C.NULL_DATE
        f["price"] = min(max(mid + sign * int(rng.integers(0, 3)), low), high) * tick
    else:
        f["sec"] = st.secs[int(rng.integers(len(st.secs)))]  # unknown-to-phase: maybe not open


def _pick_live(st: _RandomState, sec: int, session: int) -> _Live | None:
    """Mostly one of the session's own orders of ``sec``; sometimes anybody's."""
    drv = st.drv
    own = drv.by_session_sec.get((session, sec))
    if own is not None and len(own) and st.rng.random() < 0.85:
        return drv.live[own.choice(st.rng)]
    ids = drv.by_sec.get(sec)
    if ids is None or not len(ids):
        return None
    return drv.live[ids.choice(st.rng)]


def _random_cancel(st: _RandomState, sec: int, session: int, sacct: int) -> None:
    rng = st.rng
    t = _advance_clock(st)
    o = _pick_live(st, sec, session)
    clordid = _next_clordid(st, session)
    orig, order_id, side = C.NULL_U64, C.NULL_U64, C.SIDE_BUY
    if o is not None:
        side = o.side
        if rng.random() < 0.5:
            order_id = o.order_id
            if rng.random() < 0.2:
                orig = o.clordid
        else:
            orig = o.clordid
    r = rng.random()
    if r < 0.04:
        order_id = int(rng.integers(1, 10**6))
    elif r < 0.06:
        orig, order_id = C.NULL_U64, C.NULL_U64
    elif r < 0.08:
        side = C.SIDE_SELL if side == C.SIDE_BUY else C.SIDE_BUY
    elif r < 0.09:
        side = 0x35
    elif r < 0.10:
        sec = 999_999
    st.drv.submit(
        pack_cancel(
            clordid=clordid, orig=orig, order_id=order_id, sec=sec, side=side, session=session,
            session_account=sacct, recv_time=t,
        )
    )  # fmt: skip


def _random_replace(st: _RandomState, sec: int, session: int, sacct: int) -> None:
    rng = st.rng
    t = _advance_clock(st)
    o = _pick_live(st, sec, session)
    clordid = _next_clordid(st, session)
    inst = st.insts[sec]
    tick = inst.tick_size_p9
    low, high = inst.band(inst.ref)
    if o is None:
        st.drv.submit(
            pack_replace(
                clordid=clordid, orig=clordid + 10**9, price=inst.ref * tick, qty=5, sec=sec,
                max_floor=C.NULL_U32, side=C.SIDE_BUY, ord_type=C.ORD_TYPE_LIMIT, tif=C.TIF_DAY,
                exec_inst=0, min_qty=C.NULL_U32, session=session, session_account=sacct, recv_time=t,
            )
        )  # fmt: skip
        return
    cum = o.qty - o.leaves
    price = o.price if o.price != C.NULL_PRICE else inst.ref * tick
    qty = o.qty
    max_floor = o.max_floor
    r = rng.random()
    if r < 0.35:  # keep priority: same price and display, qty down (never below CumQty+1)
        qty = cum + int(rng.integers(1, o.leaves + 1))
    elif r < 0.65:  # lose priority: new price, maybe crossing
        sign = 1 if o.side == C.SIDE_BUY else -1
        ticks = _mid_ticks(st, sec) - sign * int(rng.integers(-3, 10))
        price = min(max(ticks, low), high) * tick
        qty = max(cum + 1, o.qty + int(rng.integers(-3, 4)))
    elif r < 0.75:  # qty up at the same price: loses priority
        qty = o.qty + int(rng.integers(1, 20))
    elif r < 0.83:  # new display
        max_floor = C.NULL_U32 if rng.random() < 0.3 else int(rng.integers(1, 30))
    elif r < 0.90 and cum > 0:  # OrderQty <= CumQty: cancelled
        qty = int(rng.integers(1, cum + 1))
    ord_type, tif, exec_inst, min_qty = C.ORD_TYPE_LIMIT, o.tif, o.exec_inst, C.NULL_U32
    side, orig, req_sec = o.side, o.clordid, sec
    if rng.random() < st.p_invalid:
        k = int(rng.integers(14))
        if k == 0:
            ord_type = [C.ORD_TYPE_MARKET, 0x39][int(rng.integers(2))]
        elif k == 1:
            tif = C.TIF_GTC if tif != C.TIF_GTC else C.TIF_DAY
        elif k == 2:
            exec_inst ^= C.EXEC_INST_POST_ONLY
        elif k == 3:
            min_qty = 1
        elif k == 4:
            max_floor = 0
        elif k == 5:
            price = C.NULL_PRICE
        elif k == 6:
            qty = 0
        elif k == 7:
            orig = orig + 10**9
        elif k == 8:
            side = C.SIDE_SELL if side == C.SIDE_BUY else C.SIDE_BUY
        elif k == 9:
            price = (high + 1 + int(rng.integers(5))) * tick
        elif k == 10:
            req_sec = 999_999
        elif k == 11:
            qty = min(inst.max_order_qty + 1, C.NULL_U32)
        elif k == 12:
            price += 1 if tick > 1 else 0
        else:
            tif = 0x39
    if qty > 10_000 and st.drv.bound_new_order(req_sec, qty) > _MAX_BOUND:
        qty = max(cum + 1, 1)
    st.drv.submit(
        pack_replace(
            clordid=clordid, orig=orig, price=price, qty=qty, sec=req_sec, max_floor=max_floor,
            side=side, ord_type=ord_type, tif=tif, exec_inst=exec_inst, min_qty=min_qty,
            session=session, session_account=sacct, recv_time=t,
        ),
        _Intent(session=session, clordid=clordid, max_floor=max_floor, orig_clordid=orig),
    )  # fmt: skip


def _random_mass_cancel(st: _RandomState, sec: int, session: int, sacct: int) -> None:
    rng = st.rng
    t = _advance_clock(st)
    clordid = _next_clordid(st, session)
    req_type = C.MASS_CANCEL_TYPE_SECURITY if rng.random() < 0.7 else C.MASS_CANCEL_TYPE_ALL
    req_sec = sec if req_type == C.MASS_CANCEL_TYPE_SECURITY else C.NULL_U32
    side = [C.MASS_CANCEL_SIDE_BOTH, C.SIDE_BUY, C.SIDE_SELL][int(rng.integers(3))]
    account = C.NULL_U32 if rng.random() < 0.7 else sacct
    if rng.random() < st.p_invalid * 3:
        k = int(rng.integers(5))
        if k == 0:
            req_type = 0x32
        elif k == 1:
            req_sec = C.NULL_U32 if req_type == C.MASS_CANCEL_TYPE_SECURITY else sec
        elif k == 2:
            req_type, req_sec = C.MASS_CANCEL_TYPE_SECURITY, 999_999
        elif k == 3:
            side = 0x33
        else:
            req_type = 0
    st.drv.submit(
        pack_mass_cancel(
            clordid=clordid, sec=req_sec, account=account, request_type=req_type, side=side,
            session=session, session_account=sacct, recv_time=t,
        )
    )  # fmt: skip


# ----------------------------------------------------------------------------- §10 workloads


@dataclass(frozen=True)
class Workload:
    """A benchmark workload: its instrument table, engine config and inbound records.

    The first ``prefill`` records build the initial book; the rest are the timed messages.
    """

    name: str
    seed: int
    quick: bool
    instruments: tuple[InstrumentConfig, ...]
    config: EngineConfig
    records: np.ndarray
    prefill: int


_WL_REF: Final = 1_000_000
_WL_BAND: Final = 100_000
_WL_COLLAR: Final = 1_000
_WL_ACCOUNTS: Final = 1_000
_WL_PASSIVE_SPREAD: Final = 750  # u = U{0..749}


def _wl_instrument(security_id: int) -> InstrumentConfig:
    return InstrumentConfig(
        security_id=security_id, symbol=f"S{security_id}", tick_size_p9=1, ref=_WL_REF,
        band_width=_WL_BAND, collar=_WL_COLLAR, default_stp=C.SMP_CANCEL_PASSIVE,
    )  # fmt: skip


class _WorkloadGen:
    """Shared §10 mechanics: sessions (one per account), ClOrdIDs, RecvTime, prices."""

    def __init__(self, seed: int, engine: MatchingEngine) -> None:
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.drv = _Driver(engine)
        self.clordid = [0] * _WL_ACCOUNTS
        self.now = BASE_TIME

    def session(self) -> int:
        return int(self.rng.integers(_WL_ACCOUNTS))

    def _tick(self, session: int) -> tuple[int, int, int]:
        self.now += 1_000
        self.clordid[session] += 1
        return self.clordid[session], session + 1, self.now

    def mid(self, sec: int) -> int:
        bid, ask = self.drv.bbo.get(sec, (None, None))
        if bid is None or ask is None:
            return _WL_REF
        return (bid + ask) // 2

    def passive_price(self, sec: int, side: int) -> int:
        u = int(self.rng.integers(_WL_PASSIVE_SPREAD))
        m = self.mid(sec)
        return m - 1 - u if side == C.SIDE_BUY else m + 1 + u

    def ioc_price(self, sec: int, side: int) -> int:
        bid, ask = self.drv.bbo.get(sec, (None, None))
        u = int(self.rng.integers(5))
        if side == C.SIDE_BUY:
            return self.mid(sec) if ask is None else ask + u
        return self.mid(sec) if bid is None else bid - u

    def new_order(self, sec: int, side: int, price: int, tif: int, qty: int | None = None) -> None:
        session = self.session()
        clordid, account, t = self._tick(session)
        if qty is None:
            qty = int(self.rng.integers(1, 101))
        self.drv.submit(
            pack_new_order(
                clordid=clordid, price=price, qty=qty, sec=sec, account=C.NULL_U32, min_qty=C.NULL_U32,
                max_floor=C.NULL_U32, side=side, ord_type=C.ORD_TYPE_LIMIT, tif=tif, exec_inst=0,
                smp=C.SMP_DEFAULT, expire=C.NULL_DATE, session=session, session_account=account,
                recv_time=t,
            ),
            _Intent(session=session, clordid=clordid, sec=sec, side=side, price=price, tif=tif,
                    ord_type=C.ORD_TYPE_LIMIT),
        )  # fmt: skip

    def cancel(self, o: _Live) -> None:
        clordid, account, t = self._tick(o.session)
        self.drv.submit(
            pack_cancel(
                clordid=clordid, orig=C.NULL_U64, order_id=o.order_id, sec=o.sec, side=o.side,
                session=o.session, session_account=account, recv_time=t,
            )
        )  # fmt: skip

    def replace(self, o: _Live, price: int, qty: int) -> None:
        clordid, account, t = self._tick(o.session)
        self.drv.submit(
            pack_replace(
                clordid=clordid, orig=o.clordid, price=price, qty=qty, sec=o.sec, max_floor=C.NULL_U32,
                side=o.side, ord_type=C.ORD_TYPE_LIMIT, tif=o.tif, exec_inst=0, min_qty=C.NULL_U32,
                session=o.session, session_account=account, recv_time=t,
            ),
            _Intent(session=o.session, clordid=clordid, orig_clordid=o.clordid),
        )  # fmt: skip

    def random_live(self, sec: int) -> _Live:
        return self.drv.live[self.drv.by_sec[sec].choice(self.rng)]

    def random_side(self) -> int:
        return C.SIDE_BUY if self.rng.random() < 0.5 else C.SIDE_SELL

    def fewer_side(self, sec: int) -> int:
        b, s = self.drv.count(sec, C.SIDE_BUY), self.drv.count(sec, C.SIDE_SELL)
        if b == s:
            return self.random_side()
        return C.SIDE_BUY if b < s else C.SIDE_SELL


def _engine_for(
    engine: MatchingEngine | None, insts: tuple[InstrumentConfig, ...], config: EngineConfig
) -> MatchingEngine:
    return engine if engine is not None else ReferenceEngine(insts, config)


def mix(seed: int = 1, *, quick: bool = False, n: int | None = None, engine: MatchingEngine | None = None) -> Workload:
    """ENGINE.md §10 ``mix`` (exchange-core's test): 1 instrument, 1,000 prefill, then
    3,000,000 messages (quick 300,000): GTC 9 %, IOC 3 %, cancel 6 %, move 82 %."""
    insts = (_wl_instrument(1),)
    config = EngineConfig()
    g = _WorkloadGen(seed, _engine_for(engine, insts, config))
    count = n if n is not None else (300_000 if quick else 3_000_000)
    side = C.SIDE_BUY
    for _ in range(1_000):
        g.new_order(1, side, g.passive_price(1, side), C.TIF_GTC)
        side = C.SIDE_SELL if side == C.SIDE_BUY else C.SIDE_BUY
    prefill = len(g.drv.records)
    for _ in range(count):
        r = g.rng.random()
        live = g.drv.count(1)
        if r < 0.09:
            action = "cancel" if live > 1_100 else "gtc"
        elif r < 0.12:
            action = "ioc"
        elif r < 0.18:
            action = "gtc" if live < 900 else "cancel"
        else:
            action = "move"
        if action in ("cancel", "move") and live == 0:
            action = "gtc"
        if action == "gtc":
            s = g.fewer_side(1)
            g.new_order(1, s, g.passive_price(1, s), C.TIF_GTC)
        elif action == "ioc":
            s = g.random_side()
            g.new_order(1, s, g.ioc_price(1, s), C.TIF_IOC)
        elif action == "cancel":
            g.cancel(g.random_live(1))
        else:
            o = g.random_live(1)
            g.replace(o, g.passive_price(1, o.side), o.qty)
    return Workload("mix", seed, quick, insts, config, g.drv.records_array(), prefill)


def insert(
    seed: int = 1, *, quick: bool = False, n: int | None = None, engine: MatchingEngine | None = None
) -> Workload:
    """ENGINE.md §10 ``insert`` (liquibook's test): 1,000,000 GTC limits (quick 100,000),
    sides alternating, buy Ref + U{0..9}, sell Ref + 5 + U{0..9}.

    No message depends on the book, so the stream is drawn without an engine (``engine``
    is accepted for a uniform signature and ignored).
    """
    del engine
    insts = (_wl_instrument(1),)
    count = n if n is not None else (100_000 if quick else 1_000_000)
    rng = np.random.Generator(np.random.PCG64(seed))
    recs = np.zeros(count, dtype=schema.INBOUND_NEW_ORDER_SINGLE)
    idx = np.arange(count)
    buy = idx % 2 == 0
    offsets = rng.integers(0, 10, size=count)
    sessions = rng.integers(0, _WL_ACCOUNTS, size=count)
    qty = rng.integers(1, 101, size=count)
    recs["blockLength"] = C.BLOCK_LENGTH
    recs["templateId"] = C.TEMPLATE_NEW_ORDER_SINGLE
    recs["schemaId"] = C.SCHEMA_ORDER_ENTRY
    recs["ClOrdID"] = idx + 1  # increasing overall, hence per session
    recs["Price"] = np.where(buy, _WL_REF + offsets, _WL_REF + 5 + offsets)
    recs["OrderQty"] = qty
    recs["SecurityID"] = 1
    recs["Account"] = C.NULL_U32
    recs["MinQty"] = C.NULL_U32
    recs["MaxFloor"] = C.NULL_U32
    recs["Side"] = np.where(buy, C.SIDE_BUY, C.SIDE_SELL)
    recs["OrdType"] = C.ORD_TYPE_LIMIT
    recs["TimeInForce"] = C.TIF_GTC
    recs["SelfMatchPreventionInstruction"] = C.SMP_DEFAULT
    recs["ExpireDate"] = C.NULL_DATE
    recs["SessionID"] = sessions
    recs["SessionAccount"] = sessions + 1
    recs["RecvTime"] = BASE_TIME + 1_000 * (idx + 1)
    return Workload("insert", seed, quick, insts, EngineConfig(), recs.view(schema.INBOUND).copy(), 0)


def multi(
    seed: int = 1,
    *,
    quick: bool = False,
    n: int | None = None,
    instruments: int = 10_000,
    engine: MatchingEngine | None = None,
) -> Workload:
    """ENGINE.md §10 ``multi``: 10,000 instruments weighted Pareto(1.16) + 1, 50 prefill
    each, then 5,000,000 messages (quick 500,000): GTC 9 %, IOC 3 %, cancel 6 %, move 72 %,
    reduce 10 %; 40-60 live per instrument."""
    insts = tuple(_wl_instrument(s) for s in range(1, instruments + 1))
    config = EngineConfig()
    g = _WorkloadGen(seed, _engine_for(engine, insts, config))
    count = n if n is not None else (500_000 if quick else 5_000_000)
    weights = g.rng.pareto(1.16, size=instruments) + 1.0
    cdf = np.cumsum(weights / weights.sum())
    for sec in range(1, instruments + 1):
        side = C.SIDE_BUY
        for _ in range(50):
            g.new_order(sec, side, g.passive_price(sec, side), C.TIF_GTC)
            side = C.SIDE_SELL if side == C.SIDE_BUY else C.SIDE_BUY
    prefill = len(g.drv.records)
    chunk = 65_536
    picks = np.empty(0, dtype=np.int64)
    for i in range(count):
        if i % chunk == 0:
            picks = np.minimum(np.searchsorted(cdf, g.rng.random(chunk), side="right"), instruments - 1) + 1
        sec = int(picks[i % chunk])
        r = g.rng.random()
        live = g.drv.count(sec)
        if r < 0.09:
            action = "cancel" if live > 60 else "gtc"
        elif r < 0.12:
            action = "ioc"
        elif r < 0.18:
            action = "gtc" if live < 40 else "cancel"
        elif r < 0.90:
            action = "move"
        else:
            action = "reduce"
        if action in ("cancel", "move", "reduce") and live == 0:
            action = "gtc"
        if action == "gtc":
            s = g.fewer_side(sec)
            g.new_order(sec, s, g.passive_price(sec, s), C.TIF_GTC)
        elif action == "ioc":
            s = g.random_side()
            g.new_order(sec, s, g.ioc_price(sec, s), C.TIF_IOC)
        elif action == "cancel":
            g.cancel(g.random_live(sec))
        elif action == "move":
            o = g.random_live(sec)
            g.replace(o, g.passive_price(sec, o.side), o.qty)
        else:
            o = g.random_live(sec)
            if o.leaves == 1:
                g.cancel(o)
            else:
                g.replace(o, o.price, o.qty - int(g.rng.integers(1, o.leaves)))
    return Workload("multi", seed, quick, insts, config, g.drv.records_array(), prefill)


def workload(name: str, seed: int = 1, *, quick: bool = False, engine: MatchingEngine | None = None) -> Workload:
    """The §10 workload ``name`` (mix, insert or multi)."""
    if name == "mix":
        return mix(seed, quick=quick, engine=engine)
    if name == "insert":
        return insert(seed, quick=quick, engine=engine)
    if name == "multi":
        return multi(seed, quick=quick, engine=engine)
    raise ValueError(f"unknown workload {name!r}; expected mix, insert or multi")
