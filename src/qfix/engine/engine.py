"""The fast engine's host side: allocation, argument checks, hashes (ENGINE.md §2, §5).

Theory of operation: :class:`Engine` owns every state array (allocated once, sized by
:class:`EngineConfig`) and passes them as one tuple to the jitted kernels of
``qfix.engine._kernels``; one ``process`` call is one kernel call. The host only checks
what the kernels must be able to trust (headers, SessionIDs, buffer dtypes), keeps the
optional event-hash chain, and computes the state hash with vectorised NumPy over the
live order slots. Nothing here runs per order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.engine import _kernels as kern
from qfix.engine import types as ty
from qfix.engine._common import instrument_table
from qfix.engine._state import pointer_table
from qfix.engine.auction.batch import DEVICE_MIN_INSTRUMENTS, resolve_backend
from qfix.engine.auction.uncross import BookRows, UncrossPlan, determine_book, plan_uncross
from qfix.engine.backends import Backend
from qfix.engine.buffers import output_buffer, zeros_aligned
from qfix.engine.config import (
    ALLOCATION_PRO_RATA,
    BAND_TICKS,
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
    EngineConfig,
    InstrumentConfig,
    check_band,
    worst_case_records,
)
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK, EngineInvariantError, ProcessResult
from qfix.wire import codes
from qfix.wire.schema import INBOUND, OUTPUT

Array = npt.NDArray[Any]

#: transitions of ENGINE.md §7.1 that need no uncross (the auction issue adds the others)
_PLAIN_TRANSITIONS: Final = frozenset(
    {
        (PHASE_CLOSED, PHASE_PRE_OPEN),
        (PHASE_HALTED, PHASE_PRE_OPEN),
        (PHASE_PRE_OPEN, PHASE_CLOSED),
        (PHASE_CONTINUOUS, PHASE_PRE_CLOSE),
        (PHASE_CONTINUOUS, PHASE_CLOSED),
        (PHASE_HALTED, PHASE_CLOSED),
        (PHASE_CONTINUOUS, PHASE_HALTED),
        (PHASE_PRE_OPEN, PHASE_HALTED),
        (PHASE_PRE_CLOSE, PHASE_HALTED),
    }
)
_UNCROSS_TRANSITIONS: Final = frozenset({(PHASE_PRE_OPEN, PHASE_CONTINUOUS), (PHASE_PRE_CLOSE, PHASE_CLOSED)})
_MOVE_PLAIN: Final = 1
_MOVE_UNCROSS: Final = 2
#: [from phase, to phase]: 0 not allowed (ENGINE.md §7.1), else a plain move or an uncross
_MOVES: Final = np.zeros((PHASE_HALTED + 1, PHASE_HALTED + 1), np.int8)
for _move in _PLAIN_TRANSITIONS:
    _MOVES[_move] = _MOVE_PLAIN
for _move in _UNCROSS_TRANSITIONS:
    _MOVES[_move] = _MOVE_UNCROSS
_INT64_MAX: Final = 2**63 - 1


def transition_allowed(phase_from: int, phase_to: int) -> bool:
    """Whether ENGINE.md §7.1 lists the phase change (with or without an uncross)."""
    n = _MOVES.shape[0]
    return 0 <= phase_from < n and 0 <= phase_to < n and bool(_MOVES[phase_from, phase_to])


_INVARIANT_MESSAGES: Final = {
    ty.INV_MAP_OVER_CAPACITY: "ladder segment over capacity",
    ty.INV_MAP_UNSORTED: "ladder words not strictly sorted",
    ty.INV_LEVEL_MISFILED: "level filed under the wrong instrument, side or price",
    ty.INV_QUEUE_LINKS: "order queue links broken",
    ty.INV_PRIO_ORDER: "PrioSeq does not increase head to tail",
    ty.INV_LEVEL_TOTALS: "level size or count differs from its orders",
    ty.INV_BOOK_CROSSED: "continuous book crossed",
    ty.INV_LEVEL_COUNT: "occupied level count wrong",
    ty.INV_QTY_IDENTITIES: "order quantity identities (ENGINE.md §1.3) violated",
    ty.INV_INDEX_MISSING: "live order missing from an index",
    ty.INV_TIF_RESTING: "IOC, FOK or market order resting in a continuous instrument",
    ty.INV_SLOT_ACCOUNTING: "slot accounting (live + free = MaxOrders) wrong",
    ty.INV_OPEN_LOTS: "instrument or side open-lot totals wrong",
    ty.INV_ORDER_LISTS: "session or account order list broken",
    ty.INV_LADDER_WORDS: "empty ladder word kept",
    ty.INV_BEST_LEVEL: "cached best level is not the side's best",
    ty.INV_LEVEL_TABLE: "level table out of step with the occupied levels",
}

_HASH_ORDER: Final = np.dtype(
    [
        ("order_id", "<u8"),
        ("clordid", "<u8"),
        ("session", "<u4"),
        ("account", "<u4"),
        ("group", "<u4"),
        ("side", "u1"),
        ("ord_type", "u1"),
        ("tif", "u1"),
        ("post_only", "u1"),
        ("stp", "u1"),
        ("expire", "<u2"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("cum", "<i8"),
        ("leaves", "<i8"),
        ("shown", "<i8"),
        ("display", "<i8"),
        ("prio", "<u8"),
    ],
    align=False,
)
assert _HASH_ORDER.itemsize == struct.calcsize("<QQIIIBBBBBHqqqqqqQ")


_U64: Final = 1 << 64


def _time_arg(now: int) -> np.int64:
    """A command's ``now`` (u64 ns, like RecvTime: WIRE.md §6.1) as the int64 bit pattern the
    kernels keep times in; ValueError outside 0..2^64-1 (caller error, nothing changes)."""
    now = int(now)
    if not 0 <= now < _U64:
        raise ValueError(f"now={now} is not a u64 nanosecond time")
    return np.int64(now - _U64 if now >= 1 << 63 else now)


def _u64(bits: Any) -> int:
    """The u64 value of an int64 counter slot (LastTime may be 2^63 or more)."""
    return int(bits) % _U64


#: smallest index table in use: 4,096 entries (16 KiB), room for 1,024 resting orders
_INDEX_BITS_MIN: Final = 12


#: smallest level table in use: 1,024 entries (4 KiB), room for 256 occupied levels
_LEVEL_BITS_MIN: Final = 10


def _bits_for(n: int) -> int:
    """log2 of the index table size: a power of two >= 2 n (load factor <= 1/2)."""
    return max(4, (2 * n - 1).bit_length())


_DEFAULT_CONFIG: Final = EngineConfig()


class Engine:
    """The fast matching engine: continuous trading, phases and auctions (ENGINE.md §1-§7).

    Implements :class:`qfix.engine.contract.MatchingEngine`. All state is preallocated
    from ``config``; ``process`` runs a whole batch in one jitted call.
    """

    def __init__(self, instruments: Sequence[InstrumentConfig], config: EngineConfig = _DEFAULT_CONFIG) -> None:
        instruments = sorted(instruments, key=lambda i: i.security_id)
        ids = [i.security_id for i in instruments]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate security_id in the instrument table")
        if len(instruments) > config.max_instruments:
            raise ValueError(
                f"{len(instruments)} instruments exceed EngineConfig.max_instruments={config.max_instruments}"
            )
        self.config = config
        self.instruments: tuple[InstrumentConfig, ...] = tuple(instruments)
        #: auction backends loaded so far, by "small" / "large" uncross (auto may differ)
        self._backends: dict[str, Backend] = {}
        n_inst = len(instruments)
        self._ctr = np.zeros(ty.N_COUNTERS, np.int64)
        for key in (ty.C_NEXT_OID, ty.C_NEXT_EXEC, ty.C_NEXT_TRADE, ty.C_NEXT_PRIO):
            self._ctr[key] = 1
        self._ctr[ty.C_OFREE] = -1
        self._ctr[ty.C_LFREE] = -1
        self._ctr[ty.C_LAST_MD] = -1
        self._ctr[ty.C_LAST_TRADE] = -1
        self._cfg = np.zeros(ty.N_CONFIG, np.int64)
        self._cfg[ty.G_MAX_ORDERS] = config.max_orders
        self._cfg[ty.G_MAX_LEVELS] = config.max_levels
        self._cfg[ty.G_MAX_SESSIONS] = config.max_sessions
        self._cfg[ty.G_INDEX_BITS_MAX] = _bits_for(config.max_orders)
        pool_size = 2 * config.max_levels + 64  # words; see _ladder._pool_grow
        self._cfg[ty.G_POOL_SIZE] = pool_size
        self._cfg[ty.G_LV_BITS] = _LEVEL_BITS_MIN
        self._orders = zeros_aligned(config.max_orders, ty.ORDER)
        self._levels = zeros_aligned(config.max_levels + 1, ty.LEVEL)
        self._levels["touch"] = -1
        self._levels["inst"] = -1
        self._insts = np.zeros(n_inst, ty.INSTRUMENT)
        for k, ins in enumerate(instruments):
            row = self._insts[k]
            row["sec_id"] = ins.security_id
            row["tick"] = ins.tick_size_p9
            row["ref"] = ins.ref
            row["band_kind"] = ins.band_kind
            row["band_width"] = ins.band_width
            row["lo"], row["hi"] = ins.band(ins.ref)
            row["max_qty"] = ins.max_order_qty
            row["max_notional"] = ins.max_notional
            row["collar"] = ins.collar
            row["phase"] = ins.phase
            row["default_stp"] = ins.default_stp
            row["fba"] = -1 if ins.fba_interval_ns is None else ins.fba_interval_ns
            row["allocation"] = ins.allocation
            row["ind_p"] = ty.NO_PRICE
        self._sides = np.zeros(2 * n_inst, ty.SIDE)
        self._sides["best"] = -1
        self._words = zeros_aligned(pool_size, ty.WORD)
        # Like the index tables below: allocated for MaxLevels at most half full, used from
        # the front (at most a quarter full) as the occupied levels grow.
        self._level_tab = np.empty(1 << max(_LEVEL_BITS_MIN, _bits_for(config.max_levels)), np.int32)
        self._level_tab[: 1 << _LEVEL_BITS_MIN] = -1
        # Allocated for MaxOrders, used from the front as the book grows (``_index``): the
        # untouched rest stays unmapped, so it costs address space, not memory.
        # The three tables and the session list heads share one array (``_index``).
        t = 1 << int(self._cfg[ty.G_INDEX_BITS_MAX])
        self._index_arr = np.empty(3 * t + config.max_sessions, np.int32)
        self._oid_tab = self._index_arr[:t]
        self._cl_tab = self._index_arr[t : 2 * t]
        self._acc_tab = self._index_arr[2 * t : 3 * t]
        self._ses_head = self._index_arr[3 * t :]
        self._ses_head[:] = -1
        self._reserve_indexes(0)
        self._last_cl = np.zeros(config.max_sessions, np.uint64)
        self._sec_ids = np.array(ids, np.int64)
        self._inst_tab = instrument_table(self._sec_ids)
        groups = sorted(config.stp_groups.items())
        self._stp_map = np.array([[a for a, _ in groups], [g for _, g in groups]], np.int64).reshape(2, len(groups))
        touched = config.max_levels + 8
        self._touched = np.zeros((ty.N_TOUCHED_ROWS, touched), np.int64)
        self._touched[ty.T_LV] = -1
        # Scratch for the allocation-free kernels (they run without Numba's refcounting):
        # bulk removals, queue simulation, sorting touched levels and repacking the word pool.
        self._scratch = np.zeros(config.max_orders, np.int32)
        wide = max(config.max_orders, config.max_levels + 8, 2 * n_inst + 2)
        narrow = max(config.max_levels + 8, 2 * n_inst + 2)
        self._wide = np.zeros((2, wide), np.int64)
        self._narrow = np.zeros((2, narrow), np.int64)
        self._ehash = bytes(32)
        self._hashing = config.event_hash
        self._last_out: Array | None = None
        self._last_out_bytes: Array = np.zeros(0, np.uint8)
        self._kernel = kern.process
        self._S = (
            self._ctr, self._cfg, self._orders.view(np.recarray), self._levels.view(np.recarray),
            self._insts.view(np.recarray), self._sides.view(np.recarray),
            self._words.view(np.recarray), self._level_tab, self._index_arr, self._inst_tab, self._last_cl,
            self._stp_map, self._touched, self._scratch, self._wide, self._narrow,
        )  # fmt: skip
        # what the kernels receive: the arrays' addresses (``_state``); self._S keeps them alive
        self._P = pointer_table(self._S)

    # ------------------------------------------------------------------ plumbing
    def _reserve_indexes(self, n: int) -> None:
        """Empty index tables of the smallest size that holds ``n`` entries (and at least
        ``EngineConfig.reserve_orders``) a quarter full, at least ``_INDEX_BITS_MIN``
        bits and at most the allocated size (where they may fill to half), before a
        relink inserts ``n`` orders."""
        n = max(n, self.config.reserve_orders)
        bits = min(max(_INDEX_BITS_MIN, _bits_for(2 * n)), int(self._cfg[ty.G_INDEX_BITS_MAX]))
        self._cfg[ty.G_OID_BITS] = bits
        self._cfg[ty.G_CL_BITS] = bits
        for table in (self._oid_tab, self._cl_tab, self._acc_tab):
            table[: 1 << bits] = -1
        for disp in (ty.C_OID_DISP, ty.C_CL_DISP, ty.C_ACC_DISP):
            self._ctr[disp] = 0

    def _out_bytes(self, out: Array) -> Array:
        """Byte view of ``out`` (cached while the caller keeps passing the same buffer)."""
        if out is self._last_out:
            return self._last_out_bytes
        if (
            (out.dtype is not OUTPUT and out.dtype != OUTPUT)
            or out.ndim != 1
            or not out.flags.c_contiguous
            or not out.flags.writeable
        ):
            raise ValueError("out must be a writeable, C-contiguous 1-D array of dtype wire.schema.OUTPUT")
        self._last_out = out
        self._last_out_bytes = out.view(np.uint8)
        return self._last_out_bytes

    def _begin(self, out: Array) -> Array:
        ob = self._out_bytes(out)
        ctr = self._ctr
        ctr[ty.C_W] = 0
        ctr[ty.C_CAP] = out.shape[0]
        ctr[ty.C_ERR] = 0
        return ob

    def _finish(self, out: Array, written: int) -> None:
        if self._hashing:
            self._ehash = hashlib.blake2b(self._ehash + out[:written].tobytes(), digest_size=32).digest()
        if self._ctr[ty.C_ERR]:
            err = int(self._ctr[ty.C_ERR])
            raise EngineInvariantError(f"internal bound violated (code {err}); engine state is suspect")

    # ------------------------------------------------------------------ entry points
    def process(self, batch: Array, out: Array) -> ProcessResult:
        """Run a batch of INBOUND records, writing outputs to ``out[0:written]`` (ENGINE.md §2).

        Raises ValueError, changing nothing, if a header is not (52, 1-4, 60, 0) or a
        SessionID is not below MaxSessions (the server's stages F, H and S guarantee both).
        """
        if (batch.dtype is not INBOUND and batch.dtype != INBOUND) or batch.ndim != 1 or not batch.flags.c_contiguous:
            raise ValueError("batch must be a C-contiguous 1-D array of dtype wire.schema.INBOUND")
        if out is not self._last_out:
            self._out_bytes(out)
        if not batch.flags.writeable:
            # a read-only view (np.frombuffer of a frame) would need a second compiled
            # specialisation of the kernel; copying 80 bytes a record is cheaper
            batch = batch.copy()
        kernel = self._kernel
        status, consumed, needed, written = kernel(self._P, out, batch, batch.shape[0])
        if kernel is kern.process and len(kern.process.signatures) == 1:
            # Later calls skip the dispatcher's type matching: the argument types of
            # this engine never change (fixed dtypes, C-contiguous writeable arrays).
            self._kernel = kern.process.overloads[kern.process.signatures[0]].entry_point
        if status == kern.STATUS_BAD:
            raise ValueError(
                f"record {consumed}: header is not (52, 1-4, 60, 0) or SessionID >= "
                f"EngineConfig.max_sessions={self.config.max_sessions}"
            )
        self.after_kernel(out, written)
        return tuple.__new__(ProcessResult, (status, consumed, written, needed))

    @property
    def kernel_state(self) -> Array:
        """The table of state addresses the compiled kernels take, for callers that run
        ``_kernels.process(kernel_state, out, batch, n)`` inside compiled code of their own
        (the server's record path); each such call must be followed by
        :meth:`after_kernel` with the output it wrote, as :meth:`process` does."""
        return self._P

    def after_kernel(self, out: Array, written: int) -> None:
        """What :meth:`process` does after its kernel: the event hash over the output, and
        the kernel's error counter turned into an exception."""
        if self._hashing or self._ctr[ty.C_ERR]:
            self._finish(out, written)

    def process_one(self, record: Array) -> Array:
        """Convenience path for tests and the SDK: one record in, its output chain out.

        ``record`` is one INBOUND record (0-d or length-1 array); the buffer is sized
        to the record's bound so the call always completes.
        """
        batch = np.ascontiguousarray(np.asarray(record, dtype=INBOUND).reshape(1))
        size = 64
        while True:
            out = output_buffer(size)
            res = self.process(batch, out)
            if res.status == STATUS_OK:
                return out[: res.written].copy()
            size = max(2 * size, res.needed)

    def _command(self, out: Array, kind: int, keys: Sequence[int], now: int) -> ProcessResult:
        ob = self._begin(out)
        arr = np.unique(np.asarray(list(keys), dtype=np.int64))
        status, needed = kern.command_bulk(self._P, ob, _time_arg(now), kind, arr)
        return self._result(out, status, needed)

    def cancel_sessions(self, now: int, session_ids: Sequence[int], out: Array) -> ProcessResult:
        """Cancel-on-disconnect for ``session_ids`` (ENGINE.md §3.9), one chain."""
        return self._command(out, ty.BULK_SESSIONS, session_ids, now)

    def cancel_accounts(self, now: int, accounts: Sequence[int], out: Array) -> ProcessResult:
        """Admin cancel of every order of ``accounts`` (ENGINE.md §3.9), one chain."""
        return self._command(out, ty.BULK_ACCOUNTS, accounts, now)

    def expire(self, now: int, out: Array) -> ProcessResult:
        """Expire GTD orders with ExpireDate < day(t) (ENGINE.md §3.4)."""
        return self._command(out, ty.BULK_EXPIRE, (), now)

    def end_of_day(self, now: int, out: Array) -> ProcessResult:
        """Expire all but GTC and GTD orders with ExpireDate > day(t) (ENGINE.md §3.4)."""
        return self._command(out, ty.BULK_END_OF_DAY, (), now)

    def set_reference(self, now: int, security_id: int, px_ticks: int) -> None:
        """Ref := px_ticks; raises (changing nothing) if the band check fails (ENGINE.md §2.1)."""
        t = _time_arg(now)
        k = self._index(security_id)
        ins = self.instruments[k]
        check_band(ins, px_ticks)
        lo, hi = ins.band(px_ticks)
        self._insts[k]["ref"] = px_ticks
        self._insts[k]["lo"] = lo
        self._insts[k]["hi"] = hi
        self._ctr[ty.C_LAST_TIME] = _time_arg(max(self.last_time, _u64(t)))
        if self.config.event_hash:
            self._ehash = hashlib.blake2b(self._ehash, digest_size=32).digest()

    def set_phase(self, now: int, security_ids: Sequence[int], phase: int, out: Array) -> ProcessResult:
        """Phase change (ENGINE.md §7.1): one chain per instrument, ascending SecurityID. The
        auction transitions (PreOpen -> Continuous, PreClose -> Closed) first uncross the
        book (§7.4-§7.5); every transition ends with a SecurityStatus. An unconfigured
        SecurityID or an unlisted transition raises ValueError and changes nothing."""
        t = _time_arg(now)
        idx = self._indexes(security_ids)
        if not 0 <= phase < _MOVES.shape[1]:
            raise ValueError(f"phase {phase} is not a phase code (ENGINE.md §1.1)")
        moves = _MOVES[self._insts["phase"][idx], phase]
        if not moves.all():
            k = int(idx[np.flatnonzero(moves == 0)[0]])
            move = (int(self._insts[k]["phase"]), phase)
            raise ValueError(f"instrument {int(self._insts[k]['sec_id'])}: transition {move} is not allowed")
        return self._uncross(out, t, idx, moves == _MOVE_UNCROSS, phase, np.zeros(idx.size, np.int64))

    def auction_tick(self, now: int, out: Array) -> ProcessResult:
        """Frequent batch auctions (ENGINE.md §7.6): uncross every instrument with an
        FbaInterval that is in Continuous and due (interval 0, or t >= NextUncross),
        ascending SecurityID, one chain each; no SecurityStatus. The server calls it after
        each batch."""
        t = _time_arg(now)
        due, next_uncross = self._fba_due(t)
        return self._uncross(out, t, due, np.ones(due.size, np.bool_), kern.TICK, next_uncross)

    def auction_due(self, now: int) -> tuple[int, ...]:
        """The SecurityIDs :meth:`auction_tick` at ``now`` would uncross (a server need not
        journal a tick that does nothing)."""
        due, _ = self._fba_due(_time_arg(now))
        return tuple(int(s) for s in self._sec_ids[due])

    def in_call_phase(self) -> bool:
        """Whether any instrument is in PreOpen, PreClose or frequent-batch Continuous, the
        phases :meth:`publish_indicative` reports on."""
        return bool(self._calling().any())

    def _calling(self) -> Array:
        """Per instrument: in PreOpen, PreClose or frequent-batch Continuous (§7.3)."""
        phase = self._insts["phase"]
        fba = (phase == PHASE_CONTINUOUS) & (self._insts["fba"] >= 0)
        calling: Array = (phase == PHASE_PRE_OPEN) | (phase == PHASE_PRE_CLOSE) | fba
        return calling

    def _fba_due(self, t: np.int64) -> tuple[Array, Array]:
        """The instrument indexes an auction tick at ``t`` uncrosses (§7.6: FbaInterval set,
        Continuous, interval 0 or t >= NextUncross) and the NextUncross each gets:
        (t // interval + 1) x interval, or unchanged for interval 0. Times are u64 (the
        int64 slots hold their bit patterns), so the arithmetic runs in uint64."""
        rows = self._insts
        fba = np.flatnonzero((rows["phase"] == PHASE_CONTINUOUS) & (rows["fba"] >= 0))
        interval = rows["fba"][fba].astype(np.uint64)
        current = rows["next_uncross"][fba]
        t_u64 = np.uint64(max(_u64(t), self.last_time))
        due = (interval == 0) | (t_u64 >= current.astype(np.uint64))
        step = np.maximum(interval, np.uint64(1))
        following = ((t_u64 // step + np.uint64(1)) * step).view(np.int64)
        next_uncross = np.where(interval == 0, current, following)
        return fba[due].astype(np.int64), next_uncross[due].astype(np.int64)

    def publish_indicative(self, now: int, out: Array) -> ProcessResult:
        """IndicativeAuction records (ENGINE.md §7.3) for the instruments in PreOpen,
        PreClose or frequent-batch Continuous whose clearing price, matched volume,
        imbalance or its side changed since last published, ascending SecurityID. The
        server calls it after each batch."""
        t = _time_arg(now)
        rows = self._insts
        idx = np.flatnonzero(self._calling()).astype(np.int64)
        if idx.size:
            ref = rows["ref"][idx].astype(np.int64)
            clearing = determine_book(self._auction_book(idx), ref, self._backend(idx.size))
        else:
            clearing = UncrossPlan.nothing(0).clearing
        px = np.where(clearing.volume > 0, clearing.price, ty.NO_PRICE)
        imbalance = np.abs(clearing.imbalance)
        side = clearing.imbalance_side.astype(np.int64)
        changed = (
            (px != rows["ind_p"][idx])
            | (clearing.volume != rows["ind_v"][idx])
            | (imbalance != rows["ind_i"][idx])
            | (side != rows["ind_side"][idx])
        )
        ob = self._begin(out)
        status, needed = kern.publish_indicative(
            self._P, ob, t, idx[changed], px[changed], clearing.volume[changed], imbalance[changed], side[changed]
        )
        return self._result(out, status, needed)

    def _uncross(
        self, out: Array, t: np.int64, idx: Array, uncross: Array, phase: int, next_uncross: Array
    ) -> ProcessResult:
        """Plan the uncross of ``idx[uncross]`` on the auction backend, then run the chains
        of ``idx`` (``kern.uncross_chains``); Ref and the band follow each clearing price.
        A call whose bound does not fit stops before planning anything (the kernel checks
        the same bound again)."""
        rows = self._insts
        bound = kern.U_BASE + int(np.sum(kern.U_PER_ORDER * rows["n_orders"][idx] + kern.U_PER_INSTRUMENT))
        if bound > out.shape[0]:
            self._begin(out)
            return self._result(out, OUTPUT_FULL, bound)
        if uncross.any():
            plan = plan_uncross(
                self._auction_book(idx[uncross], among=idx),
                rows["ref"][idx].astype(np.int64),
                rows["allocation"][idx] == ALLOCATION_PRO_RATA,
                self._backend(int(np.count_nonzero(uncross))),
            )
        else:
            plan = UncrossPlan.nothing(idx.size)
        crossed = plan.clearing.volume > 0
        px = np.where(crossed, plan.clearing.price, ty.NO_PRICE)
        ob = self._begin(out)
        status, needed = kern.uncross_chains(
            self._P, ob, t, idx, phase, next_uncross, px, plan.fill_start, plan.buy_slot, plan.sell_slot,
            plan.fill_qty, plan.cancel_start, plan.cancel_slot,
        )  # fmt: skip
        if int(status) == STATUS_OK:
            self._rebase_bands(idx[crossed], px[crossed])
        return self._result(out, status, needed)

    def _rebase_bands(self, idx: Array, ref: Array) -> None:
        """The static bands of instrument indexes ``idx`` around their new Refs (ENGINE.md
        §1.1): W ticks, or max(1, |Ref| x bps // 10000), in int64 unless that could overflow."""
        rows = self._insts
        width = rows["band_width"][idx]
        if idx.size and int(np.abs(ref).max()) > _INT64_MAX // max(1, int(width.max())):
            # ENGINE.md does not bound how far auctions may walk Ref; an edge past int64 is
            # held at its limit rather than raising after the uncross has been applied
            for k, p in zip(idx.tolist(), ref.tolist(), strict=True):
                lo, hi = self.instruments[k].band(p)
                rows[k]["lo"], rows[k]["hi"] = max(lo, -_INT64_MAX), min(hi, _INT64_MAX)
            return
        bps = np.maximum(1, np.abs(ref) * width // 10_000)
        w = np.where(rows["band_kind"][idx] == BAND_TICKS, width, bps)
        rows["lo"][idx] = ref - w
        rows["hi"][idx] = ref + w

    def _result(self, out: Array, status: Any, needed: Any) -> ProcessResult:
        written = int(self._ctr[ty.C_W])
        self._finish(out, written)
        ok = int(status) == STATUS_OK
        return ProcessResult(int(status), 1 if ok else 0, written, int(needed))

    def _auction_book(self, idx: Array, among: Array | None = None) -> BookRows:
        """The live orders of instrument indexes ``idx`` as auction rows, each numbered by
        its place in ``among`` (default ``idx``). One pass over the slots in use, since
        resting market orders sit in no level."""
        among = idx if among is None else among
        place = np.full(self._insts.size, -1, np.int64)
        place[idx] = np.searchsorted(among, idx)
        live = int(self._ctr[ty.C_LIVE])
        columns: list[Array] = [
            np.empty(live, np.bool_ if f.type == "BoolArray" else np.int64) for f in dataclasses.fields(BookRows)
        ]
        n = int(kern.gather_book(self._P, place, *columns))
        return BookRows(*(c[:n] for c in columns))

    def _backend(self, n_instruments: int) -> Backend:
        """The auction backend of ``EngineConfig.auction_backend`` for a determination over
        ``n_instruments`` (auto stays on the CPU for few)."""
        key = "small" if n_instruments < DEVICE_MIN_INSTRUMENTS else "large"
        backend = self._backends.get(key)
        if backend is None:
            backend = self._backends[key] = resolve_backend(self.config.auction_backend, n_instruments)
        return backend

    def _indexes(self, security_ids: Sequence[int]) -> Array:
        """Instrument indexes of ``security_ids``, ascending, each once; ValueError naming
        the first SecurityID that is not configured."""
        try:
            ids = np.unique(np.asarray([int(s) for s in security_ids], dtype=np.int64))
        except OverflowError:
            raise ValueError(f"SecurityIDs {list(security_ids)}: one is not a u32") from None
        k = np.searchsorted(self._sec_ids, ids)
        found = k < self._sec_ids.size
        found[found] = self._sec_ids[k[found]] == ids[found]
        if not found.all():
            raise ValueError(f"SecurityID {int(ids[np.flatnonzero(~found)[0]])} is not configured")
        idx: Array = k.astype(np.int64)
        return idx

    def _index(self, security_id: int) -> int:
        k = int(np.searchsorted(self._sec_ids, security_id))
        if k >= len(self._sec_ids) or int(self._sec_ids[k]) != security_id:
            raise ValueError(f"SecurityID {security_id} is not configured")
        return k

    # ------------------------------------------------------------------ hashes, checks
    def event_hash(self) -> bytes:
        """E_b of ENGINE.md §5 (32 zero bytes unless created with ``event_hash=True``)."""
        return self._ehash

    def instrument_rows(self) -> Array:
        """A copy of each instrument's runtime row (``types.INSTRUMENT``: phase, band
        ``lo``/``hi`` in ticks, limits), ascending SecurityID."""
        rows: Array = self._insts.copy()
        return rows

    def order_records(self) -> Array:
        """A copy of every live order record (``types.ORDER``) in slot order, unsorted: the
        raw table, for audits and test oracles that must not depend on the book walks."""
        slots = self._orders[: int(self._ctr[ty.C_OHW])]
        raw: Array = slots[slots["order_id"] != 0].copy()
        return raw

    def live_orders(self, inst: int | None = None) -> Array:
        """Live order records (``types.ORDER``) in the state-hash order of ENGINE.md §5;
        only instrument index ``inst``'s if given.

        The order is read off the books (``_levels.ranked_slots`` walks ladders and
        queues, several queues at a time), so only resting market orders, which sit in no
        level, are sorted here.
        """
        first, last = self._instrument_range(inst)
        hw = int(self._ctr[ty.C_OHW])
        slots = self._orders[:hw]
        market = (slots["level"] < 0) & (slots["order_id"] != 0)
        if inst is not None:
            market &= slots["inst"] == inst
        markets = np.flatnonzero(market)
        if markets.size > 1:
            markets = markets[np.lexsort((slots["prio"][markets], slots["side"][markets], slots["inst"][markets]))]
        order = self._ranked_slots(first, last, markets.astype(np.int64))
        # gathering whole 104-byte records as rows of int64 words: several times faster
        # than NumPy's field-by-field copy of a structured dtype
        words = slots.view(np.int64).reshape(hw, ty.ORDER.itemsize // 8)
        ranked: Array = np.take(words, order, axis=0).view(ty.ORDER).reshape(order.size)
        return ranked

    def _instrument_range(self, inst: int | None) -> tuple[int, int]:
        """(first, last + 1) instrument indexes for a walk; the kernels trust them."""
        if inst is None:
            return 0, len(self._insts)
        if not 0 <= inst < len(self._insts):
            raise ValueError(f"instrument index {inst} is outside 0..{len(self._insts) - 1}")
        return inst, inst + 1

    def book_orders(self, inst: int | None = None) -> Array:
        """The resting limit orders (``types.BOOK_ORDER``: instrument index, side, price in
        ticks, Shown, OrderID) in the order a snapshot lists them: per instrument bids then
        offers, levels best first, each level's queue front to back; only instrument index
        ``inst``'s if given. What ``live_orders`` gives less its resting market orders,
        which sit in no level, and less every field a snapshot does not show."""
        first, last = self._instrument_range(inst)
        slots = self._ranked_slots(first, last, np.zeros(0, np.int64))
        book = np.empty(slots.size, ty.BOOK_ORDER)
        kern.gather_book_orders(self._P, slots, book)
        return book

    def _ranked_slots(self, first: int, last: int, markets: Array) -> Array:
        """The slots of the live orders of instruments ``first`` to ``last - 1`` in book
        order, ``markets`` (sorted resting market order slots) before each side's levels
        (``_levels.ranked_slots``)."""
        out = np.empty(int(self._ctr[ty.C_LIVE]), np.int64)
        queues = np.empty((kern.Q_ROWS, int(self._ctr[ty.C_LEVELS])), np.int64)
        chains = np.empty((kern.Q_ROWS, kern.RANK_CHAINS), np.int64)
        n = kern.ranked_slots(self._P, first, last, markets, out, queues, chains)
        if n == -1:
            raise EngineInvariantError("the books hold more orders or levels than their counts")
        if n < 0:
            raise EngineInvariantError("a level's queue is not as long as its order count")
        return out[:n]

    def book_levels(self, inst: int | None = None) -> Array:
        """The occupied price levels (``types.BOOK_LEVEL``: instrument index, side, price in
        ticks, total Shown, order count), per instrument bids then offers, best first; only
        instrument index ``inst``'s if given. Read off the ladders: no order is visited."""
        first, last = self._instrument_range(inst)
        out = np.empty(int(self._ctr[ty.C_LEVELS]), np.int64)
        n = kern.ranked_levels(self._P, first, last, out)
        if n < 0:
            raise EngineInvariantError("book_levels: the ladders hold more levels than the level count")
        levels = self._levels[out[:n]]
        book = np.zeros(n, ty.BOOK_LEVEL)
        for name in ty.BOOK_LEVEL.names or ():
            book[name] = levels[name]
        return book

    def state_hash(self) -> bytes:
        """BLAKE2b-128 state hash of ENGINE.md §5."""
        c = self._ctr
        h = hashlib.blake2b(digest_size=16)
        h.update(
            struct.pack(
                "<8sQQQQQ", b"QFIXST01", int(c[ty.C_NEXT_OID]), int(c[ty.C_NEXT_EXEC]),
                int(c[ty.C_NEXT_TRADE]), int(c[ty.C_NEXT_PRIO]), self.last_time,
            )
        )  # fmt: skip
        nz = np.flatnonzero(self._last_cl)
        sess = np.zeros(nz.size, np.dtype([("s", "<u4"), ("c", "<u8")], align=False))
        sess["s"] = nz
        sess["c"] = self._last_cl[nz]
        h.update(struct.pack("<I", nz.size))
        h.update(sess.tobytes())
        live = self.live_orders()
        counts = (
            np.bincount(live["inst"], minlength=len(self._insts)) if live.size else np.zeros(len(self._insts), np.int64)
        )
        starts = np.concatenate(([0], np.cumsum(counts)))
        packed = np.zeros(live.size, _HASH_ORDER)
        for name in _HASH_ORDER.names or ():
            if name == "side":
                packed[name] = live["side"] + 1
            elif name == "ord_type":
                packed[name] = np.where(live["ord_type"] == codes.ORD_TYPE_MARKET, 1, 2)
            else:
                packed[name] = live[name]
        raw = packed.tobytes()
        size = _HASH_ORDER.itemsize
        for k, row in enumerate(self._insts):
            ind_p = int(row["ind_p"])
            h.update(
                struct.pack(
                    "<IBqQqqqBI", int(row["sec_id"]), int(row["phase"]), int(row["ref"]),
                    _u64(row["next_uncross"]), ind_p, int(row["ind_v"]), abs(int(row["ind_i"])),
                    int(row["ind_side"]), int(counts[k]),
                )
            )  # fmt: skip
            h.update(raw[int(starts[k]) * size : int(starts[k + 1]) * size])
        return h.digest()

    def check_invariants(self) -> None:
        """Raise EngineInvariantError if a structural invariant of ENGINE.md §6 fails."""
        code = int(kern.check_invariants(self._P))
        if code:
            raise EngineInvariantError(f"invariant {code}: {_INVARIANT_MESSAGES.get(code, 'unknown')}")

    # ------------------------------------------------------------------ introspection
    def worst_case_records(self) -> int:
        """Output records that always suffice for any one record or command of this engine:
        :func:`qfix.engine.config.worst_case_records` of its instruments and config."""
        return worst_case_records(self.instruments, self.config)

    @property
    def last_time(self) -> int:
        """LastTime of ENGINE.md §2.1 rule 3 (u64 ns)."""
        return _u64(self._ctr[ty.C_LAST_TIME])

    @property
    def resting_orders(self) -> int:
        return int(self._ctr[ty.C_RESTING])

    @property
    def occupied_levels(self) -> int:
        return int(self._ctr[ty.C_LEVELS])

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Refuses ``copy``, ``deepcopy`` and ``pickle``: the kernels reach the state
        through a table of its arrays' addresses (``_state``), so a copy would match
        orders in the original's arrays. Copy a book with ``qfix.engine.snapshot``
        (``restore(instruments, export(engine))``)."""
        raise TypeError(
            "an Engine cannot be copied or pickled; use qfix.engine.snapshot.restore(instruments, export(engine))"
        )

    def state_bytes(self) -> int:
        """Bytes of the order, level, ladder and index tables (the per-order figure's numerator)."""
        return int(
            self._orders.nbytes + self._levels.nbytes + self._words.nbytes + self._level_tab.nbytes
            + self._index_arr.nbytes + self._last_cl.nbytes + self._insts.nbytes
            + self._sides.nbytes
        )  # fmt: skip


__all__ = ["BAND_TICKS", "OUTPUT_FULL", "STATUS_OK", "Engine"]
