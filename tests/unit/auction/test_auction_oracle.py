"""Random books against the brute-force oracle (every tick), for the determination on every
backend that loads and for allocation and pairing on the host."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from auction_oracle import Book, allocate, clearing, to_arrays
from hypothesis import given, settings
from hypothesis import strategies as st

from qfix.engine.auction import batch_match, build_grid
from qfix.engine.auction.allocation import _muldiv_floor
from qfix.engine.auction.clearing import determine
from qfix.engine.backends import BackendUnavailable, availability, load
from qfix.engine.backends.segmented import determine_arrays


class NumpyOps:
    """The segmented formulation's primitives in NumPy: checks the formulation itself on
    every run, whichever device libraries are installed."""

    def asarray(self, host: Any) -> Any:
        return np.asarray(host)

    def full(self, n: int, value: int) -> Any:
        return np.full(n, value, np.int64)

    def cumsum(self, a: Any) -> Any:
        return np.cumsum(a)

    def take(self, a: Any, index: Any) -> Any:
        return np.take(a, index)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return np.where(condition, a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return np.minimum(a, b)

    def abs(self, a: Any) -> Any:
        return np.abs(a)

    def astype_int64(self, a: Any) -> Any:
        return a.astype(np.int64)

    def segment_max(self, n: int, seg: Any, values: Any, initial: int) -> Any:
        out = self.full(n, initial)
        np.maximum.at(out, seg, values)
        return out

    def segment_min(self, n: int, seg: Any, values: Any, initial: int) -> Any:
        out = self.full(n, initial)
        np.minimum.at(out, seg, values)
        return out

    def scatter_add_ones(self, size: int, index: Any) -> Any:
        out = np.zeros(size, np.int64)
        np.add.at(out, index, 1)
        return out


def _order(lo: int, hi: int) -> st.SearchStrategy[tuple[int | None, int, int]]:
    price = st.one_of(st.none(), st.integers(lo, hi)) if lo <= hi else st.none()
    return st.tuples(price, st.integers(1, 60), st.integers(0, 50))


@st.composite
def books(draw: Any, max_instruments: int = 6) -> list[Book]:
    out = []
    for _ in range(draw(st.integers(1, max_instruments))):
        base = draw(st.integers(-40, 40))
        width = draw(st.sampled_from([0, 2, 6, 30]))
        ref = base + draw(st.integers(-width - 5, width + 5))
        market_rate = draw(st.sampled_from([0.0, 0.2]))
        orders = _order(base - width, base + width)
        bids = draw(st.lists(orders, max_size=12))
        asks = draw(st.lists(orders, max_size=12))
        if not market_rate:
            bids = [(base if p is None else p, q, t) for p, q, t in bids]
            asks = [(base if p is None else p, q, t) for p, q, t in asks]
        out.append(Book(ref, bids, asks))
    return out


#: the device backends that load here, each checked against the reference on every example
BACKENDS = [load(name) for name, why_not in availability().items() if why_not is None and name != "cpu"]


@settings(max_examples=300)
@given(books())
def test_determination_equals_brute_force(case: list[Book]) -> None:
    bids, asks, ref = to_arrays(case)
    grid = build_grid(bids, asks, ref)
    expected = [clearing(book) for book in case]
    reference = determine(*grid.arrays())
    assert [tuple(int(a[s]) for a in reference) for s in range(len(case))] == expected
    formulation = determine_arrays(NumpyOps(), grid.arrays())
    for got, want in zip(formulation, reference, strict=True):
        assert np.array_equal(got, want)
    for backend in BACKENDS:
        result = backend.determine(grid).clearing
        assert np.array_equal(result.price, reference[0]), backend.name
        assert np.array_equal(result.volume, reference[1]), backend.name
        assert np.array_equal(result.imbalance, reference[2]), backend.name


@settings(max_examples=300)
@given(books(), st.booleans(), st.booleans())
def test_allocation_and_trades_follow_the_text(case: list[Book], pro_rata: bool, arrival_order: bool) -> None:
    if arrival_order:  # priorities rising with the rows: the counting-sort path ranks the limits
        for book in case:
            book.bids = [(p, q, k) for k, (p, q, _) in enumerate(book.bids)]
            book.asks = [(p, q, k) for k, (p, q, _) in enumerate(book.asks)]
    bids, asks, ref = to_arrays(case)
    result = batch_match(bids, asks, ref, allocation="pro_rata" if pro_rata else "time", backend="cpu")
    row_b = row_a = 0
    for book in case:
        price, volume, _ = clearing(book)
        want_b = allocate(book.bids, price, volume, True, pro_rata) if volume else [0] * len(book.bids)
        want_a = allocate(book.asks, price, volume, False, pro_rata) if volume else [0] * len(book.asks)
        assert result.bid_filled[row_b : row_b + len(book.bids)].tolist() == want_b
        assert result.ask_filled[row_a : row_a + len(book.asks)].tolist() == want_a
        assert sum(want_b) == sum(want_a) == volume
        row_b += len(book.bids)
        row_a += len(book.asks)
    trades = result.trades
    # every fill is paired exactly once, at the instrument's clearing price
    assert np.array_equal(np.bincount(trades.bid, trades.qty, len(bids)).astype(np.int64), result.bid_filled)
    assert np.array_equal(np.bincount(trades.ask, trades.qty, len(asks)).astype(np.int64), result.ask_filled)
    assert np.array_equal(trades.price, result.clearing.price[trades.instrument])
    assert np.all(bids.instrument[trades.bid] == trades.instrument)
    assert np.all(asks.instrument[trades.ask] == trades.instrument)
    assert np.all(trades.qty > 0)
    # what rests afterwards does not cross
    for s in range(len(case)):
        left_b = (bids.instrument == s) & ~bids.market & (result.bid_filled < bids.qty)
        left_a = (asks.instrument == s) & ~asks.market & (result.ask_filled < asks.qty)
        if left_b.any() and left_a.any():
            assert bids.price[left_b].max() < asks.price[left_a].min()


@given(st.integers(0, 2**63 - 2), st.integers(0, 2**63 - 1), st.integers(1, 2**63 - 1))
def test_muldiv_is_exact(a: int, b: int, c: int) -> None:
    a = a % c  # the precondition a < c
    assert _muldiv_floor(a, b, c) == a * b // c


def test_pro_rata_with_a_margin_over_2_to_the_32_lots() -> None:
    """A level may hold more than 2^32 lots in total; shares stay exact."""
    qty = 2**32 - 1
    book = Book(10, [(10, qty, t) for t in range(5)], [(10, qty, 0), (10, qty, 1), (10, qty, 2), (10, 7, 3)])
    bids, asks, ref = to_arrays([book])
    got = batch_match(bids, asks, ref, allocation="pro_rata", backend="cpu").bid_filled.tolist()
    assert got == allocate(book.bids, 10, 3 * qty + 7, True, True)
    assert sum(got) == 3 * qty + 7


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("instrument", 3, "bids.instrument[1] = 3: outside 0..1"),
        ("qty", 0, "bids.qty[1] = 0: lots must be"),
        ("price", 2**62, "bids.price[1] = 4611686018427387904: a limit price must be inside"),
    ],
)
def test_bad_orders_are_refused_by_name(field: str, value: int, message: str) -> None:
    bids, asks, ref = to_arrays([Book(10, [(10, 1, 0), (10, 1, 1)], [(10, 2, 0)]), Book(10)])
    getattr(bids, field)[1] = value
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        batch_match(bids, asks, ref, backend="cpu")


def test_unknown_allocation_and_backend() -> None:
    bids, asks, ref = to_arrays([Book(10)])
    with pytest.raises(ValueError, match="allocation 'fifo'"):
        batch_match(bids, asks, ref, allocation="fifo")
    with pytest.raises(BackendUnavailable, match="unknown auction backend 'tpu'"):
        batch_match(bids, asks, ref, backend="tpu")
