"""Planning an uncross of the engine's own books: the clearing price of each instrument on
an auction backend, the fills it allocates and the remainders it cancels (ENGINE.md §7.4,
§7.5), as flat arrays the engine's uncross kernel applies without deciding anything.

The input is one row per live order of the instruments taking part (:class:`BookRows`), the
engine's order slots already read into columns; instruments are numbered 0..n-1 in chain
order. The determination is the one ``batch_match`` runs, so every backend gives the same
plan, and allocation runs per instrument with that instrument's margin rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qfix.engine.auction.allocation import allocate
from qfix.engine.auction.clearing import NO_PRICE, Clearing
from qfix.engine.auction.grid import build_grid
from qfix.engine.auction.orders import Int64Array, Orders
from qfix.engine.backends import Backend

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BookRows:
    """Live orders of the instruments taking part, one row each, in any order."""

    instrument: Int64Array  #: 0..n-1, the instrument's place in the chain order
    slot: Int64Array  #: the engine's order slot
    buy: BoolArray
    price: Int64Array  #: limit price in ticks (ignored for market orders)
    leaves: Int64Array  #: Leaves, hidden quantity included
    market: BoolArray
    priority: Int64Array  #: PrioSeq
    order_id: Int64Array
    ioc: BoolArray  #: TimeInForce IOC (cancelled after the uncross if left over)

    def side(self, buy: bool) -> tuple[Orders, Int64Array]:
        """One side as ``batch_match`` input, and the slot of each of its rows."""
        rows = np.flatnonzero(self.buy if buy else ~self.buy)
        orders = Orders(
            self.instrument[rows], self.price[rows], self.leaves[rows], self.market[rows], self.priority[rows]
        )
        return orders, self.slot[rows]


@dataclass(frozen=True)
class UncrossPlan:
    """What uncrossing each instrument does; offsets have n + 1 entries, instrument ``k``'s
    rows being ``start[k]:start[k + 1]``."""

    clearing: Clearing  #: P (the wire null where V = 0), V and signed I per instrument
    fill_start: Int64Array
    buy_slot: Int64Array  #: per fill, in the pairing order of §7.5 rule 4
    sell_slot: Int64Array
    fill_qty: Int64Array
    cancel_start: Int64Array
    cancel_slot: Int64Array  #: market and IOC orders, ascending OrderID per instrument

    @classmethod
    def nothing(cls, n: int) -> UncrossPlan:
        """The plan of ``n`` instruments none of which uncrosses (plain phase changes)."""
        none = np.zeros(0, np.int64)
        starts = np.zeros(n + 1, np.int64)
        zeros = np.zeros(n, np.int64)
        clearing = Clearing(np.full(n, NO_PRICE, np.int64), zeros, zeros.copy())
        return cls(clearing, starts, none, none, none, starts.copy(), none)


def determine_book(book: BookRows, ref: Int64Array, backend: Backend) -> Clearing:
    """§7.4's (P, V, I) of each of the ``len(ref)`` instruments over ``book``."""
    return _determine(book.side(True)[0], book.side(False)[0], ref, backend)


def _determine(bids: Orders, asks: Orders, ref: Int64Array, backend: Backend) -> Clearing:
    return backend.determine(build_grid(bids, asks, ref, backend.host_empty)).clearing


def _offsets(instrument: Int64Array, n: int) -> Int64Array:
    """n + 1 offsets of the runs of ``instrument`` (sorted ascending) for 0..n-1."""
    start: Int64Array = np.searchsorted(instrument, np.arange(n + 1, dtype=np.int64)).astype(np.int64)
    return start


def plan_uncross(book: BookRows, ref: Int64Array, pro_rata: BoolArray, backend: Backend) -> UncrossPlan:
    """The uncross of every instrument of ``book`` (``len(ref)`` of them): ``ref`` is each
    one's reference price in ticks, ``pro_rata`` its margin rule (else time)."""
    n = int(ref.size)
    bids, bid_slot = book.side(True)
    asks, ask_slot = book.side(False)
    clearing = _determine(bids, asks, ref, backend)
    parts = []
    for rule in (False, True):
        volume = np.where(pro_rata == rule, clearing.volume, 0)
        if not volume.any():
            continue
        _, _, t_inst, t_bid, t_ask, t_qty = allocate(clearing.price, volume, bids, asks, rule)
        parts.append((t_inst, bid_slot[t_bid], ask_slot[t_ask], t_qty))
    if parts:
        inst = np.concatenate([p[0] for p in parts])
        # one margin rule per instrument, so a stable sort keeps each one's pairing order
        order = np.argsort(inst, kind="stable")
        inst = inst[order]
        buy_slot, sell_slot, qty = (np.concatenate([p[k] for p in parts])[order] for k in (1, 2, 3))
    else:
        inst = buy_slot = sell_slot = qty = np.zeros(0, np.int64)
    left_over = np.flatnonzero(book.market | book.ioc)
    left_over = left_over[np.lexsort((book.order_id[left_over], book.instrument[left_over]))]
    return UncrossPlan(
        clearing,
        _offsets(inst, n),
        buy_slot.astype(np.int64),
        sell_slot.astype(np.int64),
        qty.astype(np.int64),
        _offsets(book.instrument[left_over], n),
        book.slot[left_over].astype(np.int64),
    )


def warm(backend: Backend) -> None:
    """Compile (or load from Numba's cache) every planning pass, both margin rules, on a
    one-lot cross, so that a server's first uncross does not wait on a compile."""
    two = np.arange(2, dtype=np.int64)
    book = BookRows(
        instrument=np.zeros(2, np.int64),
        slot=two,
        buy=np.array([True, False]),
        price=np.ones(2, np.int64),
        leaves=np.ones(2, np.int64),
        market=np.zeros(2, np.bool_),
        priority=two,
        order_id=two + 1,
        ioc=np.zeros(2, np.bool_),
    )
    for rule in (False, True):
        plan_uncross(book, np.ones(1, np.int64), np.array([rule]), backend)
