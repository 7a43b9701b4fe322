"""Uniform-price call auctions over arrays: price grids, clearing-price determination on a
chosen backend, allocation and trades (ENGINE.md §7).

The public entry point is :func:`batch_match`::

    import numpy as np
    from qfix.engine.auction import Orders, batch_match

    # one instrument (index 0), Ref 11: a bid for 100 lots at 12, an offer of 100 at 10
    bids = Orders.from_arrays(instrument=[0], price=[12], qty=[100])
    asks = Orders.from_arrays(instrument=[0], price=[10], qty=[100])
    result = batch_match(bids, asks, ref=np.array([11]))
    result.clearing.price   # array([11]): rule 5, the price nearest Ref
    result.trades.qty       # array([100])

:func:`engine_books` turns an engine's resting books into the same input, so
``batch_match(*engine_books(engine))`` shows what uncrossing every instrument would do
now, without changing the engine.
"""

from __future__ import annotations

from qfix.engine.auction.allocation import ALLOCATIONS, PRO_RATA, TIME, Trades
from qfix.engine.auction.batch import BatchMatch, batch_match
from qfix.engine.auction.books import engine_books
from qfix.engine.auction.clearing import NO_PRICE, Clearing
from qfix.engine.auction.grid import PriceGrid, build_grid
from qfix.engine.auction.orders import Orders

__all__ = [
    "ALLOCATIONS",
    "NO_PRICE",
    "PRO_RATA",
    "TIME",
    "BatchMatch",
    "Clearing",
    "Orders",
    "PriceGrid",
    "Trades",
    "batch_match",
    "build_grid",
    "engine_books",
]
