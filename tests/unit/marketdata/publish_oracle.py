"""The publisher's numbering and packing as whole-array NumPy operations: the first
implementation, kept as the oracle of the jitted one (``qfix.marketdata._sequence``).

``oracle_publish`` takes copies of the numbering state and returns, per feed, the
records, packet bounds and SecurityIDs the publisher must produce."""

from __future__ import annotations

from typing import Any

import numpy as np

from qfix.marketdata import feeds
from qfix.marketdata.publisher import MEI_AT, RPT_SEQ_AT, SECURITY_ID_AT, TEMPLATE_ID_AT, TRANSACT_TIME_AT, column
from qfix.wire import codes

Array = Any
_MAX = codes.MAX_MSGS_PER_FRAME


def _group_starts(sorted_keys: Array) -> Array:
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def oracle_publish(
    msgs: Array, security_ids: Array, rpt_seq: Array, channel_seq: Array, last_time: Array
) -> dict[int, tuple[int, Array, Array, Array]]:
    """feed -> (first ChannelSeqNum, records, bounds, SecurityIDs); updates the state arrays.
    Assumes no RptSeq overflows (the caller checks)."""
    tids = column(msgs, TEMPLATE_ID_AT, "<u2")
    inst = np.searchsorted(security_ids, column(msgs, SECURITY_ID_AT, "<u4").astype(np.int64))
    order = np.argsort(inst, kind="stable")
    msgs, inst, tids = msgs[order], inst[order], tids[order]
    times = column(msgs, TRANSACT_TIME_AT, "<u8").astype(np.int64)
    ends = (msgs[:, MEI_AT] & codes.MEI_END_OF_EVENT) != 0
    starts = _group_starts(inst)
    before = np.cumsum(ends) - ends
    event = before - np.repeat(before[starts], np.diff(np.append(starts, inst.size)))
    last_of_inst = np.append(starts[1:], inst.size) - 1
    np.maximum.at(last_time, inst[last_of_inst], times[last_of_inst])
    masks = feeds.FEEDS_OF_TEMPLATE[np.minimum(tids, 255)]
    out = {}
    for feed in feeds.ALL_FEEDS:
        rows = np.flatnonzero(masks & feeds.feed_bit(feed))
        if not rows.size:
            continue
        m, i, ev, t = msgs[rows], inst[rows], event[rows], tids[rows]
        st = _group_starts(i)
        counts = np.diff(np.append(st, i.size))
        insts = i[st]
        rank = np.arange(i.size) - np.repeat(st, counts)
        m[:, RPT_SEQ_AT : RPT_SEQ_AT + 4] = (rpt_seq[feed, i] + rank + 1).astype("<u4").reshape(-1, 1).view(np.uint8)
        rpt_seq[feed, insts] += counts
        last = np.ones(i.size, bool)
        last[:-1] = (i[1:] != i[:-1]) | (ev[1:] != ev[:-1])
        mei = np.where(last, codes.MEI_END_OF_EVENT, 0).astype(np.uint8)
        trade_tid = feeds.TRADE_TEMPLATE[feed]
        if trade_tid:
            trades = np.flatnonzero(t == trade_tid)
            if trades.size:
                ti, te = i[trades], ev[trades]
                tl = np.ones(trades.size, bool)
                tl[:-1] = (ti[1:] != ti[:-1]) | (te[1:] != te[:-1])
                mei[trades[tl]] |= codes.MEI_LAST_TRADE_MSG
        m[:, MEI_AT] = mei
        first_seq = int(channel_seq[feed]) + 1
        channel_seq[feed] += i.size
        firsts = np.concatenate([np.arange(s, s + c, _MAX) for s, c in zip(st.tolist(), counts.tolist(), strict=True)])
        out[feed] = (first_seq, m, np.append(firsts, i.size), security_ids[i[firsts]])
    return out
