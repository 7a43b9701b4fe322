"""The snapshot packing as it was written first, one instrument at a time, kept as the
oracle of :func:`qfix.marketdata.snapshot.snapshot_packets`, which builds every
instrument's records at once (tests/unit/marketdata/test_snapshot_packing.py)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.marketdata.publisher import MEI_AT, RPT_SEQ_AT, SECURITY_ID_AT, TRANSACT_TIME_AT, Packet, Publisher
from qfix.marketdata.snapshot import VIEW_LEVEL, BookView
from qfix.wire import codes
from qfix.wire.codec import new_records

Array = npt.NDArray[Any]

_MSG: Final = codes.MESSAGE_SIZE
_MAX_RECORDS: Final = codes.MAX_MSGS_PER_FRAME
_OFFER: Final = 1


def _raw(rec: Array) -> Array:
    return rec.view(np.uint8).reshape(-1, _MSG)


def _levels(orders: Array) -> Array:
    """The levels (``VIEW_LEVEL``) of one instrument's orders, in the orders' order."""
    if orders.size == 0:
        return np.zeros(0, VIEW_LEVEL)
    key_change = np.ones(orders.size, bool)
    key_change[1:] = (orders["side"][1:] != orders["side"][:-1]) | (orders["price"][1:] != orders["price"][:-1])
    starts = np.flatnonzero(key_change)
    levels = np.zeros(starts.size, VIEW_LEVEL)
    levels["inst"] = orders["inst"][starts]
    levels["side"] = orders["side"][starts]
    levels["price"] = orders["price"][starts]
    levels["total"] = np.add.reduceat(orders["shown"].astype(np.int64), starts)
    levels["count"] = np.diff(np.append(starts, orders.size))
    return levels


def _body(feed: int, orders: Array | None, levels: Array | None) -> Array:
    """One instrument's body records; ``levels`` (if given) serve the level feeds."""
    if feed == codes.MD_FEED_L3:
        if orders is None:
            raise ValueError("an L3 snapshot needs a view with orders")
        rec = new_records(codes.TEMPLATE_SNAPSHOT_ORDER, orders.size)
        rec["OrderID"] = orders["order_id"]
        rec["MDEntryPx"] = orders["price"]
        rec["MDEntrySize"] = orders["shown"]
        rec["MDEntryType"] = np.where(orders["side"] == _OFFER, codes.MD_ENTRY_OFFER, codes.MD_ENTRY_BID)
        return _raw(rec)
    if levels is None:
        if orders is None:
            raise ValueError("a snapshot view needs orders or levels")
        levels = _levels(orders)
    side, price, total = levels["side"], levels["price"], levels["total"]
    if feed == codes.MD_FEED_L2:
        rec = new_records(codes.TEMPLATE_BOOK_LEVEL, levels.size)
        rec["MDEntryPx"] = price
        rec["MDEntrySize"] = total
        rec["NumberOfOrders"] = levels["count"]
        rec["MDEntryType"] = np.where(side == _OFFER, codes.MD_ENTRY_OFFER, codes.MD_ENTRY_BID)
        rec["MDUpdateAction"] = codes.MD_UPDATE_NEW
        return _raw(rec)
    if feed == codes.MD_FEED_BBO:
        rec = new_records(codes.TEMPLATE_BEST_BID_OFFER, 1)
        bids, offers = np.flatnonzero(side != _OFFER), np.flatnonzero(side == _OFFER)
        rec["BidPx"] = price[bids[0]] if bids.size else codes.NULL_PRICE
        rec["BidSize"] = total[bids[0]] if bids.size else 0
        rec["OfferPx"] = price[offers[0]] if offers.size else codes.NULL_PRICE
        rec["OfferSize"] = total[offers[0]] if offers.size else 0
        return _raw(rec)
    return np.zeros((0, _MSG), np.uint8)


def oracle_snapshot_packets(
    feed: int, view: BookView, publisher: Publisher, security_id: int, now: int
) -> tuple[list[Packet], int]:
    """One feed's snapshot of instrument ``security_id`` (0 = every instrument), as
    unsequenced packets, and the number of records in them. ValueError if the SecurityID
    is not configured."""
    ids = publisher.security_ids
    chosen = publisher.index_of(np.array([security_id], np.int64)) if security_id else np.arange(ids.size)
    last = int(publisher.channel_seq[feed])
    wanted = np.stack([chosen, chosen + 1])
    by_order = np.searchsorted(view.orders["inst"], wanted) if view.orders is not None else None
    by_level = np.searchsorted(view.levels["inst"], wanted) if view.levels is not None else None
    packets: list[Packet] = []
    total = 0
    for i, k in enumerate(chosen.tolist()):
        orders = (
            view.orders[by_order[0, i] : by_order[1, i]] if by_order is not None and view.orders is not None else None
        )
        levels = (
            view.levels[by_level[0, i] : by_level[1, i]] if by_level is not None and view.levels is not None else None
        )
        body = _body(feed, orders, levels)
        start = new_records(codes.TEMPLATE_SNAPSHOT_START, 1)
        start["LastChannelSeqNum"] = last
        start["TotNumReports"] = body.shape[0] + view.reference.shape[1]
        start["TradingStatus"] = view.status[k]
        end = new_records(codes.TEMPLATE_SNAPSHOT_END, 1)
        end["LastChannelSeqNum"] = last
        records = np.concatenate([_raw(start), view.reference[k], body, _raw(end)])
        # every record: the instrument's prefix as of L, and RecoveryMsg
        records[:, TRANSACT_TIME_AT : TRANSACT_TIME_AT + 8] = np.array([publisher.last_time[k]], "<u8").view(np.uint8)
        records[:, SECURITY_ID_AT : SECURITY_ID_AT + 4] = np.array([ids[k]], "<u4").view(np.uint8)
        records[:, RPT_SEQ_AT : RPT_SEQ_AT + 4] = np.array([publisher.rpt_seq[feed, k]], "<u4").view(np.uint8)
        records[:, MEI_AT] = codes.MEI_RECOVERY_MSG
        records[-1, MEI_AT] |= codes.MEI_END_OF_EVENT
        for cut in range(0, records.shape[0], _MAX_RECORDS):
            packets.append(Packet(feed, int(ids[k]), 0, now, records[cut : cut + _MAX_RECORDS]))
        total += records.shape[0]
    return packets, total
