"""Market data alone rebuilds the engine's book (ENGINE.md §2.2, §2.3; WIRE.md §3.4).

An L3 consumer that applies AddOrder / OrderExecuted / OrderReduced / OrderDelete /
OrderReplace as WIRE.md says (set the displayed size to LeavesQty, AddOrder joins the
tail), an L2 consumer of BookLevel and a BBO consumer must each agree with the engine's
own book after every message of a random stream.
"""

from __future__ import annotations

import numpy as np

from qfix.testing import ReferenceEngine, decode
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema


class _L3:
    def __init__(self) -> None:
        self.orders: dict[int, tuple[int, int, int]] = {}  # id -> (sec, entry type, px p9)
        self.size: dict[int, int] = {}
        self.queue: dict[tuple[int, int, int], list[int]] = {}

    def add(self, sec: int, oid: int, px: int, size: int, kind: int) -> None:
        if oid in self.orders:  # refill: leaves its place, joins the tail
            self.remove(oid)
        self.orders[oid] = (sec, kind, px)
        self.size[oid] = size
        self.queue.setdefault((sec, kind, px), []).append(oid)

    def remove(self, oid: int) -> None:
        key = self.orders.pop(oid)
        del self.size[oid]
        self.queue[key].remove(oid)
        if not self.queue[key]:
            del self.queue[key]

    def apply(self, r: dict[str, int | str]) -> None:
        t, sec = r["template"], int(r.get("SecurityID", 0))
        if t == "AddOrder":
            self.add(sec, int(r["OrderID"]), int(r["MDEntryPx"]), int(r["MDEntrySize"]), int(r["MDEntryType"]))
        elif t == "OrderExecuted":
            oid = int(r["OrderID"])
            if int(r["LeavesQty"]) == 0:
                self.remove(oid)  # gone, or an AddOrder refill follows
            else:
                self.size[oid] = int(r["LeavesQty"])
        elif t == "OrderReduced":
            self.size[int(r["OrderID"])] = int(r["LeavesQty"])
        elif t == "OrderDelete":
            self.remove(int(r["OrderID"]))
        elif t == "OrderReplace":
            self.remove(int(r["OrigOrderID"]))
            self.add(sec, int(r["OrderID"]), int(r["MDEntryPx"]), int(r["MDEntrySize"]), int(r["MDEntryType"]))


def test_l3_l2_and_bbo_rebuild_the_book() -> None:
    insts, cfg = default_random_instruments(), default_random_config()
    ticks = {i.security_id: i.tick_size_p9 for i in insts}
    records = random_stream(13, 2_500)
    eng = ReferenceEngine(insts, cfg)
    out = np.zeros(1 << 16, dtype=schema.OUTPUT)
    l3 = _L3()
    l2: dict[tuple[int, int, int], tuple[int, int]] = {}
    bbo: dict[int, tuple[int, int, int, int]] = {}
    for rec in records:
        res = eng.process(rec[None], out)
        for k in range(res.written):
            r = decode(out["message"][k].tobytes(), int(out["dest"][k]))
            l3.apply(r)
            if r["template"] == "BookLevel":
                key = (int(r["SecurityID"]), int(r["MDEntryType"]), int(r["MDEntryPx"]))
                if r["MDUpdateAction"] == C.MD_UPDATE_DELETE:
                    assert key in l2 and r["MDEntrySize"] == 0 and r["NumberOfOrders"] == 0
                    del l2[key]
                else:
                    assert (key in l2) == (r["MDUpdateAction"] == C.MD_UPDATE_CHANGE)
                    l2[key] = (int(r["MDEntrySize"]), int(r["NumberOfOrders"]))
            elif r["template"] == "BestBidOffer":
                bbo[int(r["SecurityID"])] = (int(r["BidPx"]), int(r["BidSize"]), int(r["OfferPx"]), int(r["OfferSize"]))
        for sec, tick in ticks.items():
            expect_best = []
            for side, kind in ((C.SIDE_BUY, C.MD_ENTRY_BID), (C.SIDE_SELL, C.MD_ENTRY_OFFER)):
                book = eng.book(sec, side)
                got_l2 = sorted(
                    ((px, size, n) for (s, k2, px), (size, n) in l2.items() if s == sec and k2 == kind),
                    reverse=side == C.SIDE_BUY,
                )
                assert got_l2 == [(p * tick, size, n) for p, size, n in book]
                got_l3 = sorted(
                    ((px, sum(l3.size[o] for o in q), len(q)) for (s, k2, px), q in l3.queue.items()
                     if s == sec and k2 == kind),
                    reverse=side == C.SIDE_BUY,
                )  # fmt: skip
                assert got_l3 == got_l2
                expect_best.append((book[0][0] * tick, book[0][1]) if book else (C.NULL_PRICE, 0))
            if sec in bbo:
                assert bbo[sec] == (*expect_best[0], *expect_best[1])
            else:
                assert expect_best == [(C.NULL_PRICE, 0), (C.NULL_PRICE, 0)]
        # queue order: L3 FIFO per level equals the engine's PrioSeq order
        live = sorted(eng.live_orders(), key=lambda o: o["prio"])
        for (sec, kind, px), q in l3.queue.items():
            side = C.SIDE_BUY if kind == C.MD_ENTRY_BID else C.SIDE_SELL
            assert q == [
                o["order_id"] for o in live
                if o["security_id"] == sec and o["side"] == side and not o["market"] and o["price"] * ticks[sec] == px
            ]  # fmt: skip
