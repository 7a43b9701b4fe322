"""The engine's resting books as ``batch_match`` input: what an uncross of every instrument
would do now, computed on the side without changing the engine (a what-if, or the
indicative values of a call phase for many instruments at once).

Prices stay in the engine's ticks, lots are each order's Leaves (hidden quantity
included, as ENGINE.md §7.4 counts them), priority is PrioSeq, and Ref is each
instrument's current reference price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qfix.engine.auction.orders import Int64Array, Orders
from qfix.wire import codes

if TYPE_CHECKING:  # the engine imports this package for its own uncross
    from qfix.engine.engine import Engine

#: ``side`` of an engine order record that is a buy
_BUY = 0


def engine_books(engine: Engine) -> tuple[Orders, Orders, Int64Array]:
    """(bids, asks, ref) of every live order of ``engine``, instrument ``k`` being the
    engine's instrument index ``k`` (ascending SecurityID)."""
    live = engine.live_orders()
    buy = live["side"] == _BUY

    def side(mask: np.ndarray) -> Orders:
        picked = live[mask]
        return Orders.from_arrays(
            picked["inst"],
            picked["price"],
            picked["leaves"],
            picked["ord_type"] == codes.ORD_TYPE_MARKET,
            picked["prio"],
        )

    return side(buy), side(~buy), engine.instrument_rows()["ref"].astype(np.int64)
