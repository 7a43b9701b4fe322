"""``Engine.live_orders`` walks the books (ladders and queues) instead of sorting every
live order: it must give exactly what a sort by ENGINE.md §5's state-hash order gives,
for all instruments and for each one, with resting market orders in call phases too.
``Engine.book_orders`` is the same walk less the market orders and the fields a
snapshot does not show."""

from __future__ import annotations

import numpy as np
import pytest

from qfix.engine import Engine, output_buffer
from qfix.engine.contract import OUTPUT_FULL, EngineInvariantError
from qfix.engine.types import BOOK_ORDER, C_OHW
from qfix.testing import generators as gen
from qfix.wire import codes
from qfix.wire.schema import INBOUND


def _sorted_live(engine: Engine, inst: int | None = None) -> np.ndarray:
    """The state-hash order by brute force: instrument, side (bids first), market orders
    first, price (best first), PrioSeq."""
    slots = engine._orders[: int(engine._ctr[C_OHW])]
    live = slots[slots["order_id"] != 0]
    if inst is not None:
        live = live[live["inst"] == inst]
    market = live["ord_type"] == codes.ORD_TYPE_MARKET
    price_key = np.where(market, 0, np.where(live["side"] == 0, -live["price"], live["price"]))
    return live[np.lexsort((live["prio"], price_key, ~market, live["side"], live["inst"]))]


def _book_orders(live: np.ndarray) -> np.ndarray:
    """What ``Engine.book_orders`` must give for live records in book order: the limit
    orders' snapshot fields."""
    limit = live[live["ord_type"] == codes.ORD_TYPE_LIMIT]
    book = np.zeros(limit.size, BOOK_ORDER)
    for name in BOOK_ORDER.names or ():
        book[name] = limit[name]
    return book


def _run(engine: Engine, records: np.ndarray) -> None:
    out = output_buffer(1 << 14)
    done = 0
    while done < records.size:
        result = engine.process(records[done:], out)
        done += result.consumed
        assert result.status in (0, OUTPUT_FULL)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_the_walk_equals_a_sort(seed: int) -> None:
    instruments = gen.default_random_instruments()
    config = gen.default_random_config()
    records = gen.random_stream(seed, 4_000, instruments, config=config, depth=(20, 60))
    engine = Engine(instruments, config)
    markets_seen = 0
    for start in range(0, records.size, 250):
        _run(engine, records[start : start + 250])
        want = _sorted_live(engine)
        got = engine.live_orders()
        assert got.tobytes() == want.tobytes()
        markets_seen += int((got["ord_type"] == codes.ORD_TYPE_MARKET).sum())
        assert np.array_equal(engine.book_orders(), _book_orders(want))
        for inst in range(len(instruments)):
            assert engine.live_orders(inst).tobytes() == _sorted_live(engine, inst).tobytes()
            assert np.array_equal(engine.book_orders(inst), _book_orders(_sorted_live(engine, inst)))
    assert markets_seen > 0, "no resting market order was ever checked"


def test_an_instrument_index_outside_the_book_is_refused() -> None:
    engine = Engine(gen.default_random_instruments(), gen.default_random_config())
    for bad in (-1, 6, 100_000):
        with pytest.raises(ValueError, match="instrument index"):
            engine.live_orders(bad)
        with pytest.raises(ValueError, match="instrument index"):
            engine.book_levels(bad)


def _deep_book(n: int = 20_000, levels: int = 100) -> Engine:
    """One instrument with ``n`` resting limit orders over ``levels`` prices a side (inside
    its band), arriving in random price order, so each queue's slots lie far apart."""
    instruments = gen.default_random_instruments()[:1]
    inst = instruments[0]
    engine = Engine(instruments, gen.default_random_config())
    rng = np.random.default_rng(5)
    session, account = gen.default_random_sessions()[0]
    raw = b""
    for k in range(n):
        buy = bool(rng.random() < 0.5)
        depth = int(rng.integers(1, levels + 1))
        ticks = inst.ref - depth if buy else inst.ref + depth
        raw += gen.pack_new_order(
            clordid=k + 1, price=ticks * inst.tick_size_p9, qty=int(rng.integers(1, 50)), sec=inst.security_id,
            account=codes.NULL_U32, min_qty=codes.NULL_U32, max_floor=codes.NULL_U32,
            side=codes.SIDE_BUY if buy else codes.SIDE_SELL, ord_type=codes.ORD_TYPE_LIMIT, tif=codes.TIF_GTC,
            exec_inst=0, smp=codes.SMP_DEFAULT, expire=codes.NULL_DATE, session=session,
            session_account=account, recv_time=1_700_000_000_000_000_000 + k,
        )  # fmt: skip
    rows = np.frombuffer(raw, INBOUND)
    _run(engine, rows)
    return engine


def test_many_queues_walked_side_by_side_keep_the_order() -> None:
    engine = _deep_book()
    got = engine.live_orders()
    assert got.size == engine.resting_orders == 20_000
    assert got.tobytes() == _sorted_live(engine).tobytes()
    assert np.array_equal(engine.book_orders(), _book_orders(got))


@pytest.mark.parametrize("change", [-1, 1])
def test_a_queue_that_disagrees_with_its_count_is_an_invariant_error(change: int) -> None:
    engine = _deep_book(2_000, 50)
    occupied = np.flatnonzero((engine._levels["inst"] >= 0) & (engine._levels["count"] > 1))
    engine._levels["count"][occupied[len(occupied) // 2]] += change
    # a count one too high may also overrun the live count before any queue is walked
    for read in (engine.live_orders, engine.book_orders):
        with pytest.raises(EngineInvariantError, match=r"queue is not as long|more orders or levels than"):
            read()
