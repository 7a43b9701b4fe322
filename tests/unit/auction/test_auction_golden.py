"""ENGINE.md §7.7's golden ladders and allocation examples, on every backend that loads."""

from __future__ import annotations

import numpy as np
import pytest
from auction_oracle import Book, clearing, parse, to_arrays

from qfix.engine.auction import NO_PRICE, batch_match, build_grid
from qfix.engine.backends import availability

# name: (buys, sells, Ref, P, V, I)
LADDERS = {
    "cme1": (
        "51:10 50:20 49:30 48:40 47:50 46:70 45:100 44:1 43:30",
        "51:30 50:100 49:1 48:25 47:1 46:100 45:90 44:4 43:6",
        46,
        46,
        200,
        20,
    ),
    "cme2": (
        "51:10 50:20 49:30 48:40 47:50 46:30 45:100 44:1 43:30",
        "51:30 50:100 49:1 48:25 46:50 45:90 44:4 43:6",
        46,
        47,
        150,
        0,
    ),
    "buy_pressure": ("12:50 12:70", "10:100", 10, 12, 100, 20),
    "sell_pressure": ("12:100", "10:50 10:70", 12, 10, 100, -20),
    "ref_inside": ("12:100", "10:100", 11, 11, 100, 0),
    "ref_above": ("12:100", "10:100", 15, 12, 100, 0),
    "gap": ("52:10 50:5", "50:10 52:5", 40, 51, 10, 0),
    "mixed": ("52:10 51:5", "50:10 52:5", 45, 50, 10, 5),
    "market_mix": ("M:25 101:10", "99:20 100:10 102:30", 100, 101, 30, 5),
    "market_only": ("M:30", "M:20", 100, 100, 20, 10),
}


def _books() -> list[Book]:
    return [Book(ref, parse(buys), parse(sells)) for buys, sells, ref, *_ in LADDERS.values()]


@pytest.mark.parametrize("name", list(LADDERS))
def test_oracle_agrees_with_the_golden_ladders(name: str) -> None:
    buys, sells, ref, price, volume, imbalance = LADDERS[name]
    assert clearing(Book(ref, parse(buys), parse(sells))) == (price, volume, imbalance)


@pytest.mark.parametrize("backend", [name for name, why_not in availability().items() if why_not is None])
def test_every_ladder_in_one_call(backend: str) -> None:
    """All ladders as the instruments of one batch: segments must not leak into each other."""
    bids, asks, ref = to_arrays(_books())
    result = batch_match(bids, asks, ref, backend=backend)
    assert result.backend == backend
    expected = np.array([ladder[3:] for ladder in LADDERS.values()], np.int64)
    got = np.stack([result.clearing.price, result.clearing.volume, result.clearing.imbalance], axis=1)
    assert got.tolist() == expected.tolist()


def _fills(name: str, allocation: str = "time") -> tuple[list[int], list[int]]:
    buys, sells, ref, *_ = LADDERS[name]
    bids, asks, ref_array = to_arrays([Book(ref, parse(buys), parse(sells))])
    result = batch_match(bids, asks, ref_array, allocation=allocation, backend="cpu")
    return result.bid_filled.tolist(), result.ask_filled.tolist()


def test_time_fills_of_the_golden_ladders() -> None:
    # cme1: the buy 46:70 is the margin and gets 50; every other eligible order fills
    bid_fill, ask_fill = _fills("cme1")
    assert bid_fill == [10, 20, 30, 40, 50, 50, 0, 0, 0]
    assert ask_fill == [0, 0, 0, 0, 0, 100, 90, 4, 6]
    assert _fills("buy_pressure")[0] == [50, 50]
    assert _fills("sell_pressure")[1] == [50, 50]
    # mixed: P = 50 by rule 5, and the better-priced 51:5 on the surplus side gets nothing
    assert _fills("mixed")[0] == [10, 0]
    # market_mix: the market buy fills first, then 101:10 is the margin with 5
    assert _fills("market_mix")[0] == [25, 5]


def test_pro_rata_examples() -> None:
    """ENGINE.md: Rm 10 over (7, 5, 3) -> (5, 3, 2); Rm 7 over (4, 4, 4) -> (3, 2, 2)."""
    for sizes, rest, expected in (((7, 5, 3), 10, [5, 3, 2]), ((4, 4, 4), 7, [3, 2, 2])):
        bids = " ".join(f"10:{q}" for q in sizes)
        book = Book(10, parse(bids), parse(f"10:{rest}"))
        b, a, ref = to_arrays([book])
        assert batch_match(b, a, ref, allocation="pro_rata", backend="cpu").bid_filled.tolist() == expected
        assert batch_match(b, a, ref, allocation="time", backend="cpu").bid_filled.tolist() == [
            min(q, max(0, rest - sum(sizes[:i]))) for i, q in enumerate(sizes)
        ]


def test_no_cross_and_empty_instruments() -> None:
    books = [Book(100, parse("99:10"), parse("101:10")), Book(5), Book(7, parse("M:10"))]
    bids, asks, ref = to_arrays(books)
    result = batch_match(bids, asks, ref, backend="cpu")
    assert result.clearing.price.tolist() == [NO_PRICE] * 3
    assert result.clearing.volume.tolist() == [0, 0, 0]
    assert result.clearing.imbalance.tolist() == [0, 0, 0]
    assert len(result.trades) == 0
    grid = build_grid(bids, asks, ref)
    assert grid.seg_start.tolist() == [0, 3, 4, 5]  # 99, Ref 100, 101; then each Ref alone
