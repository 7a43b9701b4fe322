"""State layouts of the fast engine: NumPy dtypes and integer constants (hftbacktest style).

Theory of operation: every piece of hot state is a preallocated NumPy array created once
by :class:`qfix.engine.engine.Engine` and handed, as one tuple indexed by the ``S_*``
constants below, to the ``@njit(cache=True)`` kernels re-exported by
``qfix.engine._kernels``. Order and level tables are arrays of packed records (one
record per slot, so one order's fields share one or two cache lines); each instrument
side's price ladder is a sorted segment of 64-tick occupancy words in one shared pool,
and an open-addressing table maps (side, price) to its level (``_ladder``); three more
tables map OrderID, (SessionID, ClOrdID) and Account to order slots (``_index``).
Scalars that change (next ids, counts, the output cursor) live in one int64 counter
array, indexed by the ``C_*`` constants below.

The kernels fold these module-level ints as compile-time constants; Numba's cache does
not notice when they change, which is why the test scripts key ``NUMBA_CACHE_DIR`` by a
digest of every engine and wire module.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: one order slot (104 bytes). Quantities are u4 (wire Qty); kernels widen them to int64
#: on every read. ``side`` is 0 buy / 1 sell; ``ord_type``/``tif`` keep the wire chars.
ORDER: Final = np.dtype(
    [
        ("order_id", "<i8"),
        ("clordid", "<u8"),
        ("price", "<i8"),  # ticks; 0 for market
        ("prio", "<i8"),  # PrioSeq
        ("qty", "<u4"),  # OrderQty (current total)
        ("cum", "<u4"),
        ("leaves", "<u4"),
        ("shown", "<u4"),
        ("display", "<u4"),  # 0 = not an iceberg
        ("session", "<u4"),
        ("account", "<u4"),
        ("group", "<u4"),  # STP group
        ("inst", "<i4"),  # instrument index (ascending SecurityID)
        ("level", "<i4"),  # level slot, -1 for a resting market order
        ("prev", "<i4"),  # level queue links; ``next`` also links the free list
        ("next", "<i4"),
        ("ses_prev", "<i4"),  # the session's order list (cancel-on-disconnect)
        ("ses_next", "<i4"),
        ("acc_prev", "<i4"),  # the account's order list (mass cancel, admin cancel)
        ("acc_next", "<i4"),
        ("expire", "<u2"),  # ExpireDate, 65535 = none
        ("side", "u1"),
        ("ord_type", "u1"),
        ("tif", "u1"),
        ("post_only", "u1"),
        ("stp", "u1"),  # resolved STP mode 1..4
        ("pad", "u1"),
    ],
    align=True,
)

#: one price level (40 bytes): an intrusive FIFO of order slots
LEVEL: Final = np.dtype(
    [
        ("price", "<i8"),
        ("total", "<i8"),  # sum of Shown (named so as not to shadow ndarray.size)
        ("count", "<i4"),
        ("head", "<i4"),  # also links the free list
        ("tail", "<i4"),
        ("inst", "<i4"),  # -1 while the slot is free (the level table's growth skips it)
        ("touch", "<i4"),  # index in the chain's touched list, -1 if untouched
        ("side", "u1"),
    ],
    align=True,
)

#: one occupied price level as ``Engine.book_levels`` returns it (``side`` 0 buy / 1 sell)
BOOK_LEVEL: Final = np.dtype([("inst", "<i4"), ("side", "u1"), ("price", "<i8"), ("total", "<i8"), ("count", "<i4")])
#: one resting limit order as ``Engine.book_orders`` returns it (``side`` 0 buy / 1 sell,
#: ``price`` in ticks)
BOOK_ORDER: Final = np.dtype([("inst", "<i4"), ("side", "u1"), ("price", "<i8"), ("shown", "<u4"), ("order_id", "<u8")])

#: one instrument (configuration and runtime); all int64 so kernels never mix signedness
INSTRUMENT: Final = np.dtype(
    [
        (name, "<i8")
        for name in (
            "sec_id",
            "tick",
            "ref",
            "band_kind",
            "band_width",
            "lo",
            "hi",
            "max_qty",
            "max_notional",
            "collar",
            "phase",
            "default_stp",
            "fba",
            "allocation",
            "next_uncross",
            "ind_p",
            "ind_v",
            "ind_i",
            "ind_side",
            "n_orders",
            "lots",
        )
    ]
)

#: one instrument side (index 2 * instrument + side): its ladder segment in the word pool
#: (``n`` occupied words from ``off``, room for ``cap``), open lots, and its best level
SIDE: Final = np.dtype([("off", "<i8"), ("cap", "<i8"), ("n", "<i8"), ("lots", "<i8"), ("best", "<i8")])

#: one ladder word: the occupied ticks ``key * 64 + bit`` of a side's rank (price for
#: bids, -price for offers, so both ascend towards the best); key and bits share a line
WORD: Final = np.dtype([("key", "<i8"), ("bits", "<u8")])
WORD_SHIFT: Final = 6  #: log2 of the ticks one word covers
WORD_MASK: Final = (1 << WORD_SHIFT) - 1

# --- state indices (the ``S`` every kernel rebuilds from ``P``, ``_state``; arrays built by ``Engine.__init__``) ---
S_CTR: Final = 0  #: int64 counters, indexed by ``C_*``
S_CFG: Final = 1  #: int64 configuration, indexed by ``G_*``
S_ORDERS: Final = 2  #: ``ORDER`` records (recarray view)
S_LEVELS: Final = 3  #: ``LEVEL`` records, MaxLevels + 1
S_INSTS: Final = 4  #: ``INSTRUMENT`` records, ascending SecurityID
S_SIDES: Final = 5  #: ``SIDE`` records, 2 per instrument
S_WORDS: Final = 6  #: ``WORD`` records: every side's ladder segment (``_ladder``)
S_LEVEL_TAB: Final = 7  #: int32 (side, price) -> level table (``_ladder``)
S_INDEX: Final = 8  #: int32: OrderID, ClOrdID and Account tables, then session list heads (``_index``)
S_INST_TAB: Final = 9  #: int64 SecurityID -> instrument index table (``_common.instrument_table``)
S_LAST_CL: Final = 10  #: last ClOrdID per SessionID
S_STP_MAP: Final = 11  #: int64 (2, n): STP group map, row ``STP_ACCOUNT`` ascending, row ``STP_GROUP``
S_TOUCHED: Final = 12  #: int64 (5, MaxLevels + 8): the chain's touched-level list, rows ``T_*``
S_SCRATCH: Final = 13  #: int32 scratch, MaxOrders (bulk removals, queue replay)
S_WIDE: Final = 14  #: int64 scratch (2, max(MaxOrders, MaxLevels + 8, 2 instruments + 2))
S_NARROW: Final = 15  #: int64 scratch (2, max(MaxLevels + 8, 2 instruments + 2))
#: Arrays in the state. The kernels receive them as one table of addresses (``_state``),
#: so the count no longer costs every call.
N_STATE: Final = 16
#: the call's OUTPUT buffer and INBOUND batch as bytes: the entry point writes their
#: addresses into the table (``_state.bind``), so handlers rebuild them like the state
S_OUT: Final = 16
S_IN: Final = 17
#: ``S[S_PTRS]``: the address table ``P`` itself (``_state.state`` appends it to ``S``)
S_PTRS: Final = 18

# --- rows of the two-row and five-row state arrays ------------------------------------
STP_ACCOUNT: Final = 0
STP_GROUP: Final = 1
T_LV: Final = 0  #: touched level slot (-1 once dropped)
T_PX: Final = 1  #: its price at the chain's start
T_SIDE: Final = 2  #: its side
T_SIZE: Final = 3  #: its size at the chain's start
T_CNT: Final = 4  #: its order count at the chain's start
N_TOUCHED_ROWS: Final = 5

# --- counter array indices (int64 ``ctr``) ----------------------------------------------
C_NEXT_OID: Final = 0
C_NEXT_EXEC: Final = 1
C_NEXT_TRADE: Final = 2
C_NEXT_PRIO: Final = 3
C_LAST_TIME: Final = 4
C_LIVE: Final = 5  #: order slots in use (resting orders + a taker in flight)
C_LEVELS: Final = 6  #: occupied levels
C_OFREE: Final = 7  #: head of the order free list (-1 none)
C_LFREE: Final = 8  #: head of the level free list
C_POOL_TOP: Final = 9  #: bump pointer of the word pool
C_OHW: Final = 10  #: order slots ever used (scan bound)
C_LHW: Final = 11  #: level slots ever used
C_NTOUCH: Final = 12  #: entries in the touched-level list of the current chain
C_ERR: Final = 13  #: non-zero after an internal bound violation (raises on the host)
C_W: Final = 14  #: output cursor
C_CAP: Final = 15  #: output capacity (records)
C_LAST_MD: Final = 16  #: output index of the chain's last MD record of the instrument
C_LAST_TRADE: Final = 17  #: output index of its last Trade record
C_BB_PX: Final = 18  #: best bid/offer at the start of the instrument's chain
C_BB_SZ: Final = 19
C_BA_PX: Final = 20
C_BA_SZ: Final = 21
C_RESTING: Final = 22  #: resting (live) orders, the capacity figure of ENGINE.md §4
C_OID_DISP: Final = 23  #: bound on any OrderID-table entry's distance from its home (``_index``)
C_CL_DISP: Final = 24  #: the same for the ClOrdID table
C_ACC_DISP: Final = 25  #: the same for the Account table
C_LV_DISP: Final = 26  #: the same for the level table (``_ladder``)
C_POOL_REPACKS: Final = 27  #: times the word pool was repacked (tests and diagnostics)
N_COUNTERS: Final = 32

# --- configuration array indices (int64 ``cfg``) ----------------------------------------
G_MAX_ORDERS: Final = 0
G_MAX_LEVELS: Final = 1
G_MAX_SESSIONS: Final = 2
G_OID_BITS: Final = 3  #: log2 of the OrderID table entries in use (grows, ``_index``)
G_CL_BITS: Final = 4  #: the same for the ClOrdID table (the two grow together)
G_POOL_SIZE: Final = 5
G_INDEX_BITS_MAX: Final = 6  #: log2 of the index tables' allocated entries
G_LV_BITS: Final = 7  #: log2 of the level-table entries in use (grows up to its length)
N_CONFIG: Final = 8

# --- kinds of bulk removal (``command_bulk``'s ``kind``; ``_collect`` also takes 0) ---
BULK_MASS_CANCEL: Final = 0  #: OrderMassCancelRequest: one account, optional instrument and side
BULK_SESSIONS: Final = 1  #: ``Engine.cancel_sessions``: cancel-on-disconnect
BULK_ACCOUNTS: Final = 2  #: ``Engine.cancel_accounts``: admin cancel
BULK_EXPIRE: Final = 3  #: ``Engine.expire``: GTD orders past their ExpireDate
BULK_END_OF_DAY: Final = 4  #: ``Engine.end_of_day``: all but GTC and still-valid GTD

# --- what ``check_invariants`` returns (0: all hold; messages in ``engine.py``) -----------
INV_MAP_OVER_CAPACITY: Final = 1
INV_MAP_UNSORTED: Final = 2
INV_LEVEL_MISFILED: Final = 3
INV_QUEUE_LINKS: Final = 4
INV_PRIO_ORDER: Final = 5
INV_LEVEL_TOTALS: Final = 6
INV_BOOK_CROSSED: Final = 7
INV_LEVEL_COUNT: Final = 8
INV_QTY_IDENTITIES: Final = 9
INV_INDEX_MISSING: Final = 10
INV_TIF_RESTING: Final = 11
INV_SLOT_ACCOUNTING: Final = 12
INV_OPEN_LOTS: Final = 13
INV_ORDER_LISTS: Final = 14
INV_LADDER_WORDS: Final = 15
INV_BEST_LEVEL: Final = 16
INV_LEVEL_TABLE: Final = 17

# --- internal codes -----------------------------------------------------------------------
NO_PRICE: Final = -(2**63)  #: "no best price" sentinel inside kernels
ERR_OUTPUT_BOUND: Final = 1  #: a chain exceeded its bound U (a bug; records were dropped)
ERR_POOL: Final = 2  #: the word pool could not grow (a bug)

__all__ = [name for name in dir() if name.isupper()]
