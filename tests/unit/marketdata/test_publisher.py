"""The publisher's numbering, packing and per-feed MatchEventIndicator (WIRE.md §6.4),
the replay ring and the service's statuses (§6.5), on hand-made engine output."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qfix.marketdata import feeds
from qfix.marketdata.publisher import Chunk, Packet, Publisher
from qfix.marketdata.recovery import Want
from qfix.marketdata.service import SnapshotService, parse_request
from qfix.marketdata.snapshot import VIEW_ORDER, BookView
from qfix.marketdata.subscriber import encode_request
from qfix.wire import codes, schema

EOE = codes.MEI_END_OF_EVENT
LT = codes.MEI_LAST_TRADE_MSG
L3, L2, BBO, TRD = codes.MD_FEED_L3, codes.MD_FEED_L2, codes.MD_FEED_BBO, codes.MD_FEED_TRD


def rec(template_id: int, security_id: int, mei: int = 0, t: int = 5, tag: int = 0) -> np.ndarray:
    """One engine market-data record; ``tag`` goes into the first body u64 (to follow it)."""
    r = np.zeros(1, schema.TEMPLATES[template_id].dtype)
    r["blockLength"] = 52
    r["templateId"] = template_id
    r["schemaId"] = 61
    r["TransactTime"] = t
    r["SecurityID"] = security_id
    r["MatchEventIndicator"] = mei
    raw = r.view(np.uint8).reshape(1, 60).copy()
    raw[0, 24:32] = np.array([tag], "<u8").view(np.uint8)
    return raw


def stack(*rows: np.ndarray) -> np.ndarray:
    return np.concatenate(rows)


def by_feed(items: list[Packet | Chunk]) -> dict[int, list[Packet]]:
    out: dict[int, list[Packet]] = {}
    for item in items:
        packets = item.packets() if isinstance(item, Chunk) else [item]
        for p in packets:
            out.setdefault(p.feed, []).append(p)
    return out


def fields(packets: list[Packet], name: str) -> list[int]:
    values: list[int] = []
    for p in packets:
        for r in p.records:
            tid = int(r[2])
            values.append(int(r.view(schema.TEMPLATES[tid].dtype)[0][name]))
    return values


def test_each_feed_is_numbered_and_packed_by_instrument() -> None:
    pub = Publisher([3, 7])
    # engine order interleaves instruments 7 and 3; each instrument keeps its own order
    out = stack(
        rec(codes.TEMPLATE_ADD_ORDER, 7, tag=1),
        rec(codes.TEMPLATE_BOOK_LEVEL, 7, EOE, tag=2),
        rec(codes.TEMPLATE_ADD_ORDER, 3, tag=3),
        rec(codes.TEMPLATE_ORDER_DELETE, 7, tag=4),
        rec(codes.TEMPLATE_BOOK_LEVEL, 3, EOE, tag=5),
        rec(codes.TEMPLATE_BOOK_LEVEL, 7, EOE, tag=6),
    )
    got = by_feed(pub.publish(out, 99))
    assert [p.security_id for p in got[L3]] == [3, 7]
    assert [p.seq for p in got[L3]] == [1, 2]  # ChannelSeqNum of each packet's first record
    assert fields(got[L3], "RptSeq") == [1, 1, 2]
    assert [int(r[24]) for p in got[L3] for r in p.records] == [3, 1, 4]
    assert [int(r[24]) for p in got[L2] for r in p.records] == [5, 2, 6]
    assert fields(got[L2], "RptSeq") == [1, 1, 2]
    assert set(got) == {L3, L2}
    # the next call continues both numberings
    again = by_feed(pub.publish(stack(rec(codes.TEMPLATE_ORDER_DELETE, 3, EOE)), 100))
    assert again[L3][0].seq == 4 and fields(again[L3], "RptSeq") == [2]
    assert pub.channel_seq[L3] == 4 and pub.channel_seq[L2] == 3
    assert [bytes(f) for f in again[L3][0].frames()][:2] == [b"L3.0000000003", feeds.pack_header(4, 100)]


def test_match_event_indicator_is_derived_per_feed() -> None:
    pub = Publisher([1])
    out = stack(
        rec(codes.TEMPLATE_ORDER_EXECUTED, 1, tag=1),
        rec(codes.TEMPLATE_TRADE, 1, tag=2),
        rec(codes.TEMPLATE_ORDER_EXECUTED, 1, tag=3),
        rec(codes.TEMPLATE_TRADE, 1, LT, tag=4),
        rec(codes.TEMPLATE_ADD_ORDER, 1, tag=5),
        rec(codes.TEMPLATE_BOOK_LEVEL, 1, tag=6),
        rec(codes.TEMPLATE_BEST_BID_OFFER, 1, EOE, tag=7),  # end of the first event
        rec(codes.TEMPLATE_SECURITY_STATUS, 1, EOE, tag=8),  # a second event, on every feed
    )
    got = by_feed(pub.publish(out, 1))
    assert fields(got[L3], "MatchEventIndicator") == [0, LT, EOE, EOE]
    assert fields(got[TRD], "MatchEventIndicator") == [0, EOE | LT, EOE]
    assert fields(got[L2], "MatchEventIndicator") == [EOE, EOE]
    assert fields(got[BBO], "MatchEventIndicator") == [EOE, EOE]
    assert fields(got[L2], "RptSeq") == [1, 2]


def test_long_runs_are_cut_at_1091_records() -> None:
    pub = Publisher([1, 2])
    out = stack(*[rec(codes.TEMPLATE_ADD_ORDER, 1) for _ in range(2500)], rec(codes.TEMPLATE_ADD_ORDER, 2, EOE))
    out[2499, 59] = EOE
    packets = by_feed(pub.publish(out, 1))[L3]
    assert [p.count for p in packets] == [1091, 1091, 318, 1]
    assert [p.seq for p in packets] == [1, 1092, 2183, 2501]
    assert [p.security_id for p in packets] == [1, 1, 1, 2]


def test_a_feed_resets_before_rpt_seq_passes_its_limit() -> None:
    pub = Publisher([1, 2])
    pub.rpt_seq[L3, 0] = 2**32 - 2
    items = pub.publish(stack(rec(codes.TEMPLATE_ADD_ORDER, 1), rec(codes.TEMPLATE_ADD_ORDER, 1, EOE)), 1)
    reset = items[0]
    assert isinstance(reset, Packet) and reset.seq == 0 and reset.security_id == 0
    hb = reset.records[0].view(schema.CHANNEL_HEARTBEAT)[0]
    assert int(hb["ChannelEvent"]) == codes.CHANNEL_EVENT_RESET and int(hb["LastChannelSeqNum"]) == 0
    packets = by_feed(items[1:])[L3]
    assert packets[0].seq == 1 and fields(packets, "RptSeq") == [1, 2]


def test_a_record_of_an_unknown_instrument_is_refused() -> None:
    with pytest.raises(ValueError, match="unconfigured SecurityID"):
        Publisher([1]).publish(rec(codes.TEMPLATE_ADD_ORDER, 5), 1)


def _filled(keep: int = 100) -> Publisher:
    pub = Publisher([1, 2], retention=keep)
    for i in range(30):
        pub.publish(stack(rec(codes.TEMPLATE_ADD_ORDER, 1 + i % 2, EOE), rec(codes.TEMPLATE_ADD_ORDER, 2, EOE)), i)
    return pub


def test_replay_resends_the_packets_of_a_range() -> None:
    pub = _filled()
    ring = pub.retention[L3]
    last = int(pub.channel_seq[L3])
    assert last == 60
    got = ring.replay(10, 5, 0, 100, last)
    assert got.status == codes.REQUEST_COMPLETED
    assert [p.seq for p in got.packets] == [10, 11, 13, 14]  # the packets holding 10..14
    assert got.last_seq == 14
    only = ring.replay(1, 60, 1, 100, last)
    assert {p.security_id for p in only.packets} == {1} and only.records == 15
    cut = ring.replay(1, 60, 0, 7, last)
    assert cut.status == codes.REQUEST_TRUNCATED and cut.records <= 7 and cut.last_seq == cut.packets[-1].last_seq
    assert ring.replay(61, 5, 0, 100, last).status == codes.REQUEST_COMPLETED
    assert ring.replay(61, 5, 0, 100, last).records == 0


def test_replay_before_the_retained_window_is_unavailable() -> None:
    pub = _filled(keep=10)
    ring = pub.retention[L3]
    assert ring.held == 10 and ring.first_seq == 51  # one record per packet here
    got = ring.replay(1, 5, 0, 100, int(pub.channel_seq[L3]))
    assert got.status == codes.REQUEST_UNAVAILABLE and not got.packets


def _service(pub: Publisher) -> SnapshotService:
    orders = np.zeros(3, VIEW_ORDER)
    orders["inst"] = [0, 0, 1]
    orders["side"] = [0, 1, 0]
    orders["price"] = [100, 101, 50]
    orders["shown"] = [5, 6, 7]
    orders["order_id"] = [11, 12, 13]
    reference = np.zeros((2, 2, 60), np.uint8)
    view = BookView(orders, np.array([17, 2], np.uint8), reference)
    return SnapshotService(pub, lambda security_id: view, replay_max_records=100)


def test_a_snapshot_names_its_sequence_number_and_rpt_seq() -> None:
    pub = _filled()
    svc = _service(pub)
    reply = svc.handle(encode_request(Want(L2, "snapshot", 1, 0), 9, 0), 123)
    assert reply.status == codes.REQUEST_COMPLETED
    start, *body, end = reply.packets[0].records
    s = start.view(schema.SNAPSHOT_START)[0]
    assert int(s["LastChannelSeqNum"]) == pub.channel_seq[L2] == 0  # nothing on L2 yet
    assert int(s["TotNumReports"]) == len(body) == 2 + 2  # two reference records, two levels
    assert all(int(r[59]) & codes.MEI_RECOVERY_MSG for r in reply.packets[0].records)
    assert int(end[59]) == codes.MEI_RECOVERY_MSG | EOE
    done = reply.packets[-1].records[0].view(schema.REQUEST_COMPLETE)[0]
    assert int(done["RequestID"]) == 9 and int(done["RecordCount"]) == 6


def test_busy_and_invalid_requests() -> None:
    svc = _service(_filled())
    good = encode_request(Want(L3, "snapshot", 0, 0), 4, 0)
    busy = svc.busy(good, 1)
    assert busy.status == codes.REQUEST_BUSY and len(busy.packets) == 1
    assert svc.handle(good[:30], 1).status == codes.REQUEST_INVALID
    bad_feed = bytearray(good)
    bad_feed[32] = 5
    reply = svc.handle(bytes(bad_feed), 1)
    assert reply.status == codes.REQUEST_INVALID
    done = reply.packets[0].records[0].view(schema.REQUEST_COMPLETE)[0]
    assert int(done["RequestID"]) == 4 and reply.packets[0].feed == L3
    assert svc.invalid == 2


@pytest.mark.parametrize(
    ("at", "value", "match"),
    [
        (2, 1, "templateId"),
        (0, 50, "blockLength"),
        (4, 60, "schemaId"),
        (6, 1, "version"),
        (45, 1, "Reserved"),
        (44, 7, "MDFeed"),
    ],
)
def test_parse_request_names_the_fault(at: int, value: int, match: str) -> None:
    data = bytearray(encode_request(Want(L3, "replay", 0, 0, start=1, count=2), 1, 0))
    data[at] = value
    with pytest.raises(ValueError, match=match):
        parse_request(bytes(data), lambda sec: True)


def test_channel_packets_are_unsequenced() -> None:
    pub = _filled()
    hb: Any = pub.heartbeat(TRD, 77)
    assert hb.seq == 0 and hb.frames()[0] == b"TRD.0000000000"
    r = hb.records[0].view(schema.CHANNEL_HEARTBEAT)[0]
    assert int(r["LastChannelSeqNum"]) == pub.channel_seq[TRD]


def test_the_whole_snapshot_share_must_be_a_share() -> None:
    pub = _filled()
    for share in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="whole_share"):
            SnapshotService(pub, lambda security_id: None, whole_share=share)  # type: ignore[arg-type,return-value]
