"""An independent brute-force reading of ENGINE.md §7.4 and §7.5 for the auction tests:
every tick from the lowest to the highest of {limit prices, Ref}, the rules applied to
explicit sets, allocation written from the text with Python integers. Slow and obvious on
purpose; it shares no code with qfix.engine.auction."""

from __future__ import annotations

from dataclasses import dataclass, field

NO_PRICE = 2**63 - 1


@dataclass
class Book:
    """One instrument: orders as (price or None for market, qty, priority)."""

    ref: int
    bids: list[tuple[int | None, int, int]] = field(default_factory=list)
    asks: list[tuple[int | None, int, int]] = field(default_factory=list)


def demand(book: Book, p: int) -> int:
    return sum(q for price, q, _ in book.bids if price is None or price >= p)


def supply(book: Book, p: int) -> int:
    return sum(q for price, q, _ in book.asks if price is None or price <= p)


def clearing(book: Book) -> tuple[int, int, int]:
    """(P, V, I) by the four-step rule over every tick."""
    members = [p for p, _, _ in book.bids + book.asks if p is not None] + [book.ref]
    ticks = range(min(members), max(members) + 1)
    table = {p: (min(demand(book, p), supply(book, p)), demand(book, p) - supply(book, p)) for p in ticks}
    best_v = max(v for v, _ in table.values())
    if best_v == 0:
        return NO_PRICE, 0, 0
    kept = [p for p in ticks if table[p][0] == best_v]
    best_abs = min(abs(table[p][1]) for p in kept)
    kept = [p for p in kept if abs(table[p][1]) == best_abs]
    if all(table[p][1] > 0 for p in kept):
        price = max(kept)
    elif all(table[p][1] < 0 for p in kept):
        price = min(kept)
    else:
        nearest = min(abs(p - book.ref) for p in kept)
        closest = [p for p in kept if abs(p - book.ref) == nearest]
        assert len(closest) == 1, "ENGINE.md says rule 5 is unique"
        price = closest[0]
    return price, best_v, table[price][1]


def allocate(orders: list[tuple[int | None, int, int]], p: int, volume: int, is_buy: bool, pro_rata: bool) -> list[int]:
    """Lots per order (in the given order) at price p for one side."""
    filled = [0] * len(orders)

    def eligible(i: int) -> bool:
        price = orders[i][0]
        return price is None or (price >= p if is_buy else price <= p)

    def level_key(i: int) -> tuple[int, int]:
        price = orders[i][0]
        if price is None:
            return (0, 0)
        return (1, -price if is_buy else price)

    ranked = sorted((i for i in range(len(orders)) if eligible(i)), key=lambda i: (level_key(i), orders[i][2], i))
    levels: list[list[int]] = []
    for i in ranked:
        if levels and level_key(levels[-1][0]) == level_key(i):
            levels[-1].append(i)
        else:
            levels.append([i])
    rest = volume
    for level in levels:
        total = sum(orders[i][1] for i in level)
        if total <= rest:
            for i in level:
                filled[i] = orders[i][1]
            rest -= total
            continue
        if rest > 0:
            if pro_rata:
                shares = [rest * orders[i][1] // total for i in level]
                left = rest - sum(shares)
                for k, i in enumerate(level):
                    filled[i] = shares[k] + (1 if k < left else 0)
            else:
                for i in level:
                    take = min(orders[i][1], rest)
                    filled[i] = take
                    rest -= take
        rest = 0
    return filled


def parse(side: str, first_priority: int = 0) -> list[tuple[int | None, int, int]]:
    """ENGINE.md §7.7's notation, "price:lots" in time order, "M" for market."""
    orders: list[tuple[int | None, int, int]] = []
    for k, item in enumerate(side.split()):
        price, lots = item.split(":")
        orders.append((None if price == "M" else int(price), int(lots), first_priority + k))
    return orders


def to_arrays(books: list[Book]):  # type: ignore[no-untyped-def]
    """bids, asks (qfix Orders) and ref for a list of books, book i being instrument i."""
    import numpy as np

    from qfix.engine.auction import Orders

    def side(pick):  # type: ignore[no-untyped-def]
        rows = [(s, o) for s, book in enumerate(books) for o in pick(book)]
        return Orders.from_arrays(
            instrument=np.array([s for s, _ in rows], np.int64),
            price=np.array([0 if o[0] is None else o[0] for _, o in rows], np.int64),
            qty=np.array([o[1] for _, o in rows], np.int64),
            market=np.array([o[0] is None for _, o in rows], np.bool_),
            priority=np.array([o[2] for _, o in rows], np.int64),
        )

    return side(lambda b: b.bids), side(lambda b: b.asks), np.array([b.ref for b in books], np.int64)
