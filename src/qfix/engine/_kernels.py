"""Entry point of the fast engine's continuous trading: one call of :func:`process` per batch.

Theory of operation
-------------------
The host keeps the engine state in preallocated arrays (built by ``Engine.__init__``) and
hands the kernels one table of their addresses, ``P``; every kernel that is not inlined
rebuilds the tuple ``S`` of views from it (``_state``), indexed by the ``S_*`` constants of
``qfix.engine.types``. :func:`process` writes the caller's OUTPUT buffer and INBOUND batch
into the table too, and every kernel reinterprets them as int64, uint32, uint16 and uint8
words (``_common._views``), so every field is one aligned little-endian load or store at
an index from ``_layout``.

Bounds are decided here, before a record changes anything: :func:`process` asks the
record's verdict (``_orders``) and the orders it could reach (``_match._reach``) for
ENGINE.md §2.4's bound U and stops with STATUS_FULL when the free space is smaller, so the
concatenated output never depends on the buffer size. The writers additionally refuse to
write past the buffer (setting ``C_ERR``), so a wrong bound can never corrupt memory.

The kernels are split by concern into sibling modules, in dependency order: ``_common``
(helpers, sorting), ``_index`` (the order indexes and lists), ``_ladder`` (the price
ladders and the level table), ``_levels`` (order slots, levels, snapshot relink),
``_output`` (record writers, the end-of-event block), ``_match`` (matching and its
simulations), ``_commands`` (bulk removals), ``_auction`` (phase changes, uncrosses,
indicative values), ``_orders`` (one handler per
inbound template) and ``_invariants``. This module re-exports the ``cache=True`` entry
points the host calls (:func:`process`, ``command_bulk``, ``uncross_chains``,
``publish_indicative``, ``relink``,
``ranked_slots``, ``gather_book_orders``, ``ranked_levels``, ``check_invariants``); every other kernel is
compiled into them.
Numba's cache only watches the file of the cached function itself, so the split relies on
the test scripts keying ``NUMBA_CACHE_DIR`` by a digest of every engine and wire module.
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

import numpy as np

from qfix.engine._auction import TICK, U_PER_INSTRUMENT, U_PER_ORDER, gather_book, publish_indicative, uncross_chains
from qfix.engine._commands import (
    _collect,
    command_bulk,
)
from qfix.engine._common import (
    STATUS_BAD,
    STATUS_FULL,
    STATUS_OK,
    U_BASE,
    _later,
    _views,
    njit,
)
from qfix.engine._invariants import check_invariants
from qfix.engine._layout import (
    HDR_BLOCK_LENGTH_H,
    HDR_SCHEMA_ID_H,
    HDR_TEMPLATE_ID_H,
    HDR_VERSION_H,
    IN_B,
    IN_H,
    IN_I,
    IN_Q,
    IN_RECV_TIME_Q,
    IN_SESSION_ACCOUNT_I,
    IN_SESSION_I,
    NOS_QTY_I,
    NOS_SIDE_B,
    OCRR_QTY_I,
    OMC_ACCOUNT_I,
)
from qfix.engine._levels import Q_ROWS, RANK_CHAINS, gather_book_orders, ranked_levels, ranked_slots, relink
from qfix.engine._match import (
    _matches_on_entry,
    _reach,
)
from qfix.engine._orders import (
    _cancel,
    _mass,
    _mass_check,
    _nos,
    _nos_verdict,
    _replace,
    _replace_verdict,
)
from qfix.engine._prefetch import DEEP_BOOK_ORDERS, prefetch_ahead
from qfix.engine._state import bind, state
from qfix.engine.types import (
    BULK_MASS_CANCEL,
    C_CAP,
    C_ERR,
    C_LAST_TIME,
    C_RESTING,
    C_W,
    G_MAX_SESSIONS,
    NO_PRICE,
    S_CFG,
    S_CTR,
    S_IN,
    S_INSTS,
    S_NARROW,
    S_OUT,
    S_PTRS,
)
from qfix.wire.codes import (
    BLOCK_LENGTH,
    EXEC_REASON_NONE,
    NULL_U32,
    SCHEMA_ORDER_ENTRY,
    SCHEMA_VERSION,
    SIDE_BUY,
    TEMPLATE_NEW_ORDER_SINGLE,
    TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST,
    TEMPLATE_ORDER_CANCEL_REQUEST,
    TEMPLATE_ORDER_MASS_CANCEL_REQUEST,
)


@njit(cache=True, _nrt=False)
def process(P, out, batch, n):
    """Run inbound records 0..n-1 of ``batch`` (INBOUND) into ``out`` (OUTPUT).

    Returns (status, consumed, needed, written).

    Both arrays are reinterpreted as bytes here (cheaper than NumPy views on the host).
    Every header and SessionID is checked first; a bad one returns (STATUS_BAD, index, 0) with nothing
    changed. Invariant: a record starts only if the free output space is at least its
    bound U (ENGINE.md §2.4), so the concatenated output equals an unbounded run's.
    """
    S = state(P)
    ctr = S[S_CTR]
    cfg = S[S_CFG]
    insts = S[S_INSTS]
    ctr[C_W] = 0
    ctr[C_CAP] = out.shape[0]
    ctr[C_ERR] = 0
    ob = out.view(np.uint8)
    ib = batch.view(np.uint8)
    bind(P, S_OUT, ob)
    bind(P, S_IN, ib)
    I = _views(ib)
    i64, i32, i16, i8 = I
    for r in range(n):
        h = r * IN_H
        tid = i16[h + HDR_TEMPLATE_ID_H]
        if (
            i16[h + HDR_BLOCK_LENGTH_H] != BLOCK_LENGTH
            or tid < TEMPLATE_NEW_ORDER_SINGLE
            or tid > TEMPLATE_ORDER_MASS_CANCEL_REQUEST
            or i16[h + HDR_SCHEMA_ID_H] != SCHEMA_ORDER_ENTRY
            or i16[h + HDR_VERSION_H] != SCHEMA_VERSION
        ):
            return STATUS_BAD, r, 0, 0
        if np.int64(i32[r * IN_I + IN_SESSION_I]) >= cfg[G_MAX_SESSIONS]:
            return STATUS_BAD, r, 0, 0
    empty = S[S_NARROW][0][:0]
    deep = ctr[C_RESTING] >= DEEP_BOOK_ORDERS
    for r in range(n):
        if deep:
            prefetch_ahead(S, I, r, n)
        tid = i16[r * IN_H + HDR_TEMPLATE_ID_H]
        free = ctr[C_CAP] - ctr[C_W]
        t = _later(i64[r * IN_Q + IN_RECV_TIME_Q], ctr[C_LAST_TIME])
        mass_reason = EXEC_REASON_NONE
        mass_ii = -1
        mass_sf = -1
        mass_n = 0
        reason = EXEC_REASON_NONE
        ii = np.int64(-1)
        price = np.int64(0)
        limit = NO_PRICE
        slot = -1
        rule = 0
        disp = np.int64(0)
        if tid in (TEMPLATE_NEW_ORDER_SINGLE, TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST):
            # §2.4: only the opposite orders the order can reach count, and none if it is
            # rejected before matching or cannot match in this phase
            if tid == TEMPLATE_NEW_ORDER_SINGLE:
                qty = np.int64(i32[r * IN_I + NOS_QTY_I])
                reason, ii, price, limit = _nos_verdict(S, I, r, t)
                reach_limit = limit
            else:
                qty = np.int64(i32[r * IN_I + OCRR_QTY_I])
                reason, ii, slot, rule, price, disp = _replace_verdict(S, I, r, t)
                reach_limit = price
            side = np.int64(i8[r * IN_B + NOS_SIDE_B]) - SIDE_BUY
            if reason != EXEC_REASON_NONE or not _matches_on_entry(insts, ii):
                reach_limit = NO_PRICE
            lots, cnt = _reach(S, ii, side, reach_limit, qty)
            u = np.int64(U_BASE + 8 * (lots + cnt))
        elif tid == TEMPLATE_ORDER_CANCEL_REQUEST:
            u = np.int64(U_BASE)
        else:
            mass_reason, mass_ii, mass_sf = _mass_check(S, I, r)
            if mass_reason == EXEC_REASON_NONE:
                acct = np.int64(i32[r * IN_I + OMC_ACCOUNT_I])
                if acct == NULL_U32:
                    acct = np.int64(i32[r * IN_I + IN_SESSION_ACCOUNT_I])
                mass_n = _collect(S[S_PTRS], BULK_MASS_CANCEL, acct, 0, mass_ii, mass_sf, 0, empty)
            u = np.int64(U_BASE + 4 * mass_n)
        if free < u:
            return STATUS_FULL, r, u, ctr[C_W]
        ctr[C_LAST_TIME] = t
        if tid == TEMPLATE_NEW_ORDER_SINGLE:
            _nos(S[S_PTRS], r, t, reason, ii, price, limit)
        elif tid == TEMPLATE_ORDER_CANCEL_REQUEST:
            _cancel(S[S_PTRS], r, t)
        elif tid == TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST:
            _replace(S[S_PTRS], r, t, reason, ii, slot, rule, price, disp)
        else:
            _mass(S[S_PTRS], r, t, mass_reason, mass_ii, mass_sf, mass_n)
    return STATUS_OK, n, 0, ctr[C_W]


__all__ = [
    "Q_ROWS",
    "RANK_CHAINS",
    "STATUS_BAD",
    "STATUS_FULL",
    "STATUS_OK",
    "TICK",
    "U_BASE",
    "U_PER_INSTRUMENT",
    "U_PER_ORDER",
    "check_invariants",
    "command_bulk",
    "gather_book",
    "gather_book_orders",
    "process",
    "publish_indicative",
    "ranked_levels",
    "ranked_slots",
    "relink",
    "uncross_chains",
]
