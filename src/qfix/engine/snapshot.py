"""Compact snapshots of the fast engine's state (for the journal's checkpoints).

Theory of operation: a snapshot holds only what the state hash covers plus the
event-hash link: the id counters and LastTime, the non-zero LastClOrdIDs, each
instrument's mutable columns, and the live order records in state-hash order. Levels,
price ladders and indices are derived data: :func:`restore` writes the orders into slots
0..n-1 of a fresh engine and rebuilds everything else with one kernel pass
(``_kernels.relink``), which sees each level's orders in PrioSeq order. A restored
engine therefore has the same state hash and produces the same bytes as the original.

Trust: the kernels run without bounds checks, so nothing from a snapshot reaches them
before :func:`validate` has checked every array and field in NumPy: shapes and dtypes,
each field's range, cross-references (instrument index, session, OrderID below the next
OrderID, ClOrdID at most the session's LastClOrdID, unique ids), the §1.3 quantity
identities and the capacity limits of ENGINE.md §4. A bad snapshot raises
:class:`SnapshotError` (a ValueError) naming the field; it never crashes the process.

File format (version 2), all little-endian: ``MAGIC`` (8 bytes), version u32, reserved
u32 (0), the session, instrument and order counts (u64 each), then the arrays'
bytes in a fixed order and layout (``_SECTIONS``), then a 32-byte BLAKE2b-256 checksum
of everything before it. :func:`load` checks the length implied by the counts and the
checksum before it interprets a byte, so truncations and bit flips are rejected up
front; :func:`validate` then guards against a well-formed file with bad content.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.lib.recfunctions import repack_fields

from qfix.engine import _kernels as kern
from qfix.engine import types as ty
from qfix.engine.config import PHASE_CONTINUOUS, PHASES, ConfigError, EngineConfig, InstrumentConfig, check_band
from qfix.engine.contract import EngineInvariantError
from qfix.engine.engine import Engine
from qfix.errors import QfixError
from qfix.wire import codes

Array = npt.NDArray[Any]

FORMAT_VERSION: Final = 3  # 3: order records carry the session and account list links
MAGIC: Final = b"QFIXSNAP"
_HEADER: Final = struct.Struct("<8sIIQQQ")
_CHECKSUM_SIZE: Final = 32
_COUNTERS: Final = (ty.C_NEXT_OID, ty.C_NEXT_EXEC, ty.C_NEXT_TRADE, ty.C_NEXT_PRIO, ty.C_LAST_TIME)
_COUNTER_NAMES: Final = ("next OrderID", "next ExecID", "next TradeID", "next PrioSeq", "LastTime")
_INSTRUMENT_COLUMNS: Final = (
    "sec_id",
    "phase",
    "ref",
    "lo",
    "hi",
    "next_uncross",
    "ind_p",
    "ind_v",
    "ind_i",
    "ind_side",
)
INSTRUMENT_STATE: Final = np.dtype([(name, "<i8") for name in _INSTRUMENT_COLUMNS])
_KEYS: Final = ("version", "counters", "sessions", "last_clordid", "instruments", "orders", "event_hash")
_U32_MAX: Final = 2**32 - 1
_QTY_LIMIT: Final = 2**32 - 1  # open lots of one side (ENGINE.md §4 rule 2)
_TIFS: Final = (codes.TIF_DAY, codes.TIF_GTC, codes.TIF_IOC, codes.TIF_FOK, codes.TIF_GTD)


class SnapshotError(QfixError, ValueError):
    """A snapshot (file or dict) is malformed or inconsistent; the message names the field."""


def export(engine: Engine) -> dict[str, Array]:
    """The engine's state as a dict of arrays (see the module docstring)."""
    sessions = np.flatnonzero(engine._last_cl).astype(np.int64)
    return {
        "version": np.array([FORMAT_VERSION], np.int64),
        "counters": engine._ctr[list(_COUNTERS)].copy(),
        "sessions": sessions,
        "last_clordid": engine._last_cl[sessions].copy(),
        "instruments": repack_fields(engine._insts[list(_INSTRUMENT_COLUMNS)]).astype(INSTRUMENT_STATE),
        "orders": engine.live_orders(),
        "event_hash": np.frombuffer(engine.event_hash(), np.uint8).copy(),
    }


# ---------------------------------------------------------------------------------- checks
def _fail(field: str, what: str, index: Array | int | None = None) -> SnapshotError:
    where = ""
    if index is not None:
        bad = np.flatnonzero(index) if isinstance(index, np.ndarray) else [index]
        where = f" (record {int(bad[0])})" if len(bad) else ""
    return SnapshotError(f"snapshot field {field!r}{where}: {what}")


def _require(ok: Any, field: str, what: str) -> None:
    """Raise for ``field`` unless ``ok``; an array ``ok`` names its first failing record."""
    if isinstance(ok, np.ndarray):
        if not ok.all():
            raise _fail(field, what, ~ok)
    elif not ok:
        raise _fail(field, what)


def _array(snapshot: dict[str, Array], key: str, dtype: np.dtype[Any], ndim: int = 1) -> Array:
    value = snapshot[key]
    if not isinstance(value, np.ndarray):
        raise _fail(key, f"is {type(value).__name__}, not an array")
    if value.dtype != dtype:
        raise _fail(key, f"dtype {value.dtype} is not {dtype}")
    if value.ndim != ndim:
        raise _fail(key, f"has {value.ndim} dimensions, not {ndim}")
    return value


def validate(
    instruments: Sequence[InstrumentConfig], snapshot: dict[str, Array], config: EngineConfig | None = None
) -> None:
    """Check a snapshot dict against the instrument table and config; raise SnapshotError
    naming the first bad field. Nothing here trusts an index before checking its range."""
    config = config if config is not None else EngineConfig()
    _check_layout(snapshot)
    counters = snapshot["counters"]
    for k, name in enumerate(_COUNTER_NAMES[:4]):
        _require(int(counters[k]) >= 1, "counters", f"{name} {int(counters[k])} is not >= 1")
    # counters[4], LastTime, is a u64 held as its int64 bit pattern: every value is valid

    sessions = snapshot["sessions"]
    last_cl = snapshot["last_clordid"]
    _require((sessions >= 0) & (sessions < config.max_sessions), "sessions", "SessionID not below MaxSessions")
    _require(sessions[1:] > sessions[:-1], "sessions", "not strictly ascending")
    _require(last_cl > 0, "last_clordid", "0 (only non-zero LastClOrdIDs are stored)")

    table = sorted(instruments, key=lambda i: i.security_id)
    inst = snapshot["instruments"]
    _require(inst.shape == (len(table),), "instruments", f"must hold {len(table)} rows (the instrument table)")
    _require(inst["sec_id"] == np.array([i.security_id for i in table], np.int64), "instruments.sec_id", "differs "
             "from the instrument table")  # fmt: skip
    _require(np.isin(inst["phase"], PHASES), "instruments.phase", "not a phase code")
    for k, cfg in enumerate(table):
        ref = int(inst["ref"][k])
        try:
            check_band(cfg, ref)
        except ConfigError as exc:
            raise _fail("instruments.ref", str(exc), k) from None
        lo, hi = cfg.band(ref)
        _require(int(inst["lo"][k]) == lo and int(inst["hi"][k]) == hi, "instruments.lo/hi", f"row {k} is not the "
                 "band of its Ref")  # fmt: skip
    # NextUncross is a u64 time held as its int64 bit pattern (§7.6): every value is valid
    v, i_, side, p = inst["ind_v"], inst["ind_i"], inst["ind_side"], inst["ind_p"]
    _require((v >= 0) & (v <= _QTY_LIMIT), "instruments.ind_v", "not in 0..2^32-1")
    _require((i_ >= -_QTY_LIMIT) & (i_ <= _QTY_LIMIT), "instruments.ind_i", "|I| not in 0..2^32-1")
    _require(np.isin(side, (0, 1, 2)), "instruments.ind_side", "not 0, 1 or 2")
    _require((side == 0) == (i_ == 0), "instruments.ind_side", "ImbalanceSide none exactly when I = 0")
    _require((v == 0) == (p == ty.NO_PRICE), "instruments.ind_p", "null exactly when V = 0")
    _require((v > 0) | (i_ == 0), "instruments.ind_i", "non-zero while V = 0")

    _validate_orders(table, snapshot, config, counters, sessions, last_cl, inst)


def _check_layout(snapshot: dict[str, Array]) -> None:
    """Keys, array types, dtypes, dimensions and the fixed lengths of a snapshot dict."""
    if not isinstance(snapshot, dict):
        raise SnapshotError(f"snapshot is {type(snapshot).__name__}, not a dict of arrays")
    missing = [k for k in _KEYS if k not in snapshot]
    extra = sorted(str(k) for k in set(snapshot) - set(_KEYS))
    if missing or extra:
        raise SnapshotError(f"snapshot keys: missing {missing}, unexpected {extra}")
    version = _array(snapshot, "version", np.dtype("<i8"))
    _require(version.shape == (1,) and int(version[0]) == FORMAT_VERSION, "version", f"is not [{FORMAT_VERSION}]")
    for key, dtype, _ in _SECTIONS:
        _array(snapshot, key, dtype)
    _require(snapshot["counters"].shape == (len(_COUNTERS),), "counters", f"must hold {len(_COUNTERS)} values")
    _require(snapshot["event_hash"].shape == (32,), "event_hash", f"{snapshot['event_hash'].size} bytes, not 32")
    _require(
        snapshot["last_clordid"].shape == snapshot["sessions"].shape, "last_clordid", "length differs from 'sessions'"
    )


def _validate_orders(
    table: list[InstrumentConfig],
    snapshot: dict[str, Array],
    config: EngineConfig,
    counters: Array,
    sessions: Array,
    last_cl: Array,
    inst: Array,
) -> None:
    orders = snapshot["orders"]
    n = orders.shape[0]
    _require(n <= config.max_orders, "orders", f"{n} orders exceed EngineConfig.max_orders={config.max_orders}")
    if n == 0:
        return
    o = {name: orders[name].astype(np.int64) for name in ty.ORDER.names or ()}
    o["clordid"] = orders["clordid"]  # u8: keep unsigned
    _require((o["order_id"] >= 1) & (o["order_id"] < counters[0]), "orders.order_id", "not in 1..next OrderID-1")
    _require(np.unique(o["order_id"]).size == n, "orders.order_id", "duplicate OrderID")
    _require((o["prio"] >= 1) & (o["prio"] < counters[3]), "orders.prio", "PrioSeq not in 1..next PrioSeq-1")
    _require(np.unique(o["prio"]).size == n, "orders.prio", "duplicate PrioSeq")
    _require((o["inst"] >= 0) & (o["inst"] < len(table)), "orders.inst", "instrument index out of range")
    _require((o["side"] == 0) | (o["side"] == 1), "orders.side", "not 0 (buy) or 1 (sell)")
    market = o["ord_type"] == codes.ORD_TYPE_MARKET
    _require(market | (o["ord_type"] == codes.ORD_TYPE_LIMIT), "orders.ord_type", "not Market or Limit")
    _require(np.isin(o["tif"], _TIFS), "orders.tif", "not a TimeInForce code")
    _require(o["tif"] != codes.TIF_FOK, "orders.tif", "a FOK order never rests")
    _require((o["post_only"] == 0) | (o["post_only"] == 1), "orders.post_only", "not 0 or 1")
    _require((o["stp"] >= 1) & (o["stp"] <= 4), "orders.stp", "STP mode not 1..4")
    _require(o["pad"] == 0, "orders.pad", "not 0")
    gtd = o["tif"] == codes.TIF_GTD
    _require(np.where(gtd, o["expire"] != codes.NULL_DATE, o["expire"] == codes.NULL_DATE), "orders.expire",
             "ExpireDate must be set exactly for GTD")  # fmt: skip
    # sessions and ClOrdIDs: each order's session has a LastClOrdID of at least its ClOrdID
    _require(o["session"] < config.max_sessions, "orders.session", "SessionID not below MaxSessions")
    pos = np.searchsorted(sessions, o["session"])
    known = pos < sessions.size
    known[known] = sessions[pos[known]] == o["session"][known]
    _require(known, "orders.session", "session without a LastClOrdID")
    _require((o["clordid"] >= 1) & (o["clordid"] <= last_cl[pos]), "orders.clordid", "not in 1..LastClOrdID of "
             "its session")  # fmt: skip
    pairs = np.unique(np.stack([o["session"].astype(np.uint64), o["clordid"]]), axis=1)
    _require(pairs.shape[1] == n, "orders.clordid", "duplicate (SessionID, ClOrdID)")
    groups = o["account"].copy()  # ENGINE.md §1.2 rule 2: its Account unless mapped
    mapped = sorted(config.stp_groups.items())
    if mapped:
        acc = np.array([a for a, _ in mapped], np.int64)
        grp = np.array([g for _, g in mapped], np.int64)
        at = np.minimum(np.searchsorted(acc, groups), acc.size - 1)
        groups = np.where(acc[at] == groups, grp[at], groups)
    _require(o["group"] == groups, "orders.group", "not the STP group of its Account")
    # prices: 0 for market; a limit price times the tick must be a PRICE9 (not the null)
    tick = np.array([i.tick_size_p9 for i in table], np.int64)[o["inst"]]
    price = o["price"]
    _require(np.where(market, price == 0, True), "orders.price", "a market order's price must be 0")
    lim = (2**63 - 1) // tick
    _require((price >= -lim) & (price <= lim), "orders.price", "price x TickSize does not fit PRICE9")
    # quantities (ENGINE.md §1.3): Leaves = OrderQty - CumQty > 0, 0 < Shown <= Leaves, ...
    qty, cum, leaves, shown, disp = o["qty"], o["cum"], o["leaves"], o["shown"], o["display"]
    max_qty = np.array([i.max_order_qty for i in table], np.int64)[o["inst"]]
    _require((qty >= 1) & (qty <= max_qty), "orders.qty", "OrderQty not in 1..MaxOrderQty")
    _require(leaves == qty - cum, "orders.leaves", "Leaves != OrderQty - CumQty")
    _require(leaves >= 1, "orders.leaves", "a live order has Leaves 0")
    _require((shown >= 1) & (shown <= leaves), "orders.shown", "Shown not in 1..Leaves")
    _require(np.where(disp == 0, shown == leaves, shown <= disp), "orders.shown", "Shown differs from Display/Leaves")
    _require(np.where(market, disp == 0, True), "orders.display", "a market order has a Display")
    # capacity (ENGINE.md §4): open lots per side, occupied levels
    side_lots = np.bincount(2 * o["inst"] + o["side"], weights=leaves.astype(np.float64), minlength=2 * len(table))
    _require(side_lots <= _QTY_LIMIT, "orders.leaves", "a side's open lots exceed 2^32-1")
    resting = ~market
    keys = np.unique(np.stack([o["inst"][resting], o["side"][resting], price[resting]]), axis=1)
    _require(keys.shape[1] <= config.max_levels, "orders", f"{keys.shape[1]} price levels exceed "
             f"EngineConfig.max_levels={config.max_levels}")  # fmt: skip
    # phases: what may rest where (ENGINE.md §7.2; the invariant check repeats it)
    continuous = (inst["phase"] == PHASE_CONTINUOUS) & np.array([i.fba_interval_ns is None for i in table], np.bool_)
    _require(~(continuous[o["inst"]] & (market | (o["tif"] == codes.TIF_IOC))), "orders.tif",
             "a market or IOC order rests in a continuous instrument")  # fmt: skip


# ---------------------------------------------------------------------------------- restore
def restore(
    instruments: Sequence[InstrumentConfig], snapshot: dict[str, Array], config: EngineConfig | None = None
) -> Engine:
    """A new engine in the state ``snapshot`` captured (same instrument table required).

    Raises SnapshotError, naming the field, for any snapshot :func:`validate` refuses or
    whose orders do not form a valid book (e.g. a crossed continuous book).
    """
    config = config if config is not None else EngineConfig()
    validate(instruments, snapshot, config)
    engine = Engine(instruments, config)
    inst = snapshot["instruments"]
    for name in _INSTRUMENT_COLUMNS:
        engine._insts[name] = inst[name]
    engine._ctr[list(_COUNTERS)] = snapshot["counters"]
    engine._last_cl[snapshot["sessions"]] = snapshot["last_clordid"]
    orders = snapshot["orders"]
    n = orders.shape[0]
    if n:
        # the kernel needs each level's orders in PrioSeq order: use the state-hash order
        side = orders["side"].astype(np.int64)
        market = orders["ord_type"] == codes.ORD_TYPE_MARKET
        key = np.where(market, 0, np.where(side == 0, -orders["price"], orders["price"]))
        rank = np.lexsort((orders["prio"], key, ~market, side, orders["inst"]))
        engine._orders[:n] = orders[rank]
    engine._reserve_indexes(n)
    if not kern.relink(engine._P, n):
        raise SnapshotError("snapshot field 'orders': the book does not fit EngineConfig.max_levels")
    engine._ehash = bytes(snapshot["event_hash"].tobytes())
    try:
        engine.check_invariants()
    except EngineInvariantError as exc:
        raise SnapshotError(f"snapshot field 'orders': the restored book breaks an invariant ({exc})") from None
    return engine


# ---------------------------------------------------------------------------------- files
#: (key, dtype, count source) of each array after the header, in file order
_SECTIONS: Final = (
    ("counters", np.dtype("<i8"), "counters"),
    ("sessions", np.dtype("<i8"), "sessions"),
    ("last_clordid", np.dtype("<u8"), "sessions"),
    ("instruments", INSTRUMENT_STATE, "instruments"),
    ("orders", ty.ORDER, "orders"),
    ("event_hash", np.dtype("u1"), "event_hash"),
)


def dumps(snapshot: dict[str, Array]) -> bytes:
    """The file bytes of a snapshot dict (the format of the module docstring); SnapshotError
    if its keys, dtypes or fixed lengths are wrong (field values are checked on restore)."""
    _check_layout(snapshot)
    arrays = {key: np.ascontiguousarray(snapshot[key]) for key, _, _ in _SECTIONS}
    n_s, n_i, n_o = (arrays[k].shape[0] for k in ("sessions", "instruments", "orders"))
    body = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, n_s, n_i, n_o) + b"".join(a.tobytes() for a in arrays.values())
    return body + hashlib.blake2b(body, digest_size=_CHECKSUM_SIZE).digest()


def loads(data: bytes) -> dict[str, Array]:
    """Parse :func:`dumps` output; SnapshotError for a wrong magic, version, length or
    checksum. The result still goes through :func:`validate` in :func:`restore`."""
    if len(data) < _HEADER.size + _CHECKSUM_SIZE:
        raise SnapshotError(f"snapshot file: {len(data)} bytes is shorter than header and checksum")
    magic, version, reserved, n_s, n_i, n_o = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise SnapshotError("snapshot file: bad magic (not a qfix snapshot)")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"snapshot field 'version': format {version} is not {FORMAT_VERSION}")
    if reserved != 0:
        raise SnapshotError("snapshot field 'reserved': not 0")
    counts = {"counters": len(_COUNTERS), "sessions": n_s, "instruments": n_i, "orders": n_o, "event_hash": 32}
    expected = _HEADER.size + sum(counts[src] * dtype.itemsize for _, dtype, src in _SECTIONS) + _CHECKSUM_SIZE
    if len(data) != expected:
        raise SnapshotError(f"snapshot file: {len(data)} bytes, but its counts imply {expected} (truncated?)")
    body = data[:-_CHECKSUM_SIZE]
    if hashlib.blake2b(body, digest_size=_CHECKSUM_SIZE).digest() != data[-_CHECKSUM_SIZE:]:
        raise SnapshotError("snapshot field 'checksum': BLAKE2b-256 mismatch (corrupted file)")
    out: dict[str, Array] = {"version": np.array([version], np.int64)}
    offset = _HEADER.size
    for key, dtype, src in _SECTIONS:
        count = counts[src]
        out[key] = np.frombuffer(data, dtype, count, offset).copy()
        offset += count * dtype.itemsize
    return out


def save(path: str | Path, snapshot: dict[str, Array]) -> None:
    """Write a snapshot file (format version 2, checksummed)."""
    Path(path).write_bytes(dumps(snapshot))


def load(path: str | Path) -> dict[str, Array]:
    """Read a snapshot written by :func:`save`; SnapshotError if it is not intact."""
    return loads(Path(path).read_bytes())
