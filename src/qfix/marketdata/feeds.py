"""The four market-data feeds of WIRE.md §6.3: ids, topics, packet header, routing.

A feed is a stream of 60-byte schema-61 records cut into packets; each packet is one
ZeroMQ message of three frames ``[topic][header][records]``. The topic names the feed and
one SecurityID (``L3.0000000042``), so ZeroMQ's prefix filter does per-instrument
subscription; the 16-byte header holds the ChannelSeqNum of the packet's first record
(0 for an unsequenced packet) and the SendingTime. Which feed carries a record follows
from its template alone (``FEEDS_OF_TEMPLATE``).
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Final

import numpy as np

from qfix.wire import codes

__all__ = [
    "ALL_FEEDS",
    "CHANNEL_SECURITY_ID",
    "FEEDS_OF_TEMPLATE",
    "FEED_NAMES",
    "HEADER",
    "HEADER_SIZE",
    "TRADE_TEMPLATE",
    "feed_bit",
    "feed_by_name",
    "pack_header",
    "parse_topic",
    "topic",
    "unpack_header",
]

ALL_FEEDS: Final = (codes.MD_FEED_L3, codes.MD_FEED_L2, codes.MD_FEED_BBO, codes.MD_FEED_TRD)
#: the feed's topic prefix (WIRE.md §6.3), by MDFeed code
FEED_NAMES: Final = {codes.MD_FEED_L3: "L3", codes.MD_FEED_L2: "L2", codes.MD_FEED_BBO: "BBO", codes.MD_FEED_TRD: "TRD"}
#: SecurityID of channel-level records (heartbeats, resets, request completions)
CHANNEL_SECURITY_ID: Final = 0

#: the template whose last record of an event carries LastTradeMsg, per feed (0: none)
TRADE_TEMPLATE: Final = {
    codes.MD_FEED_L3: codes.TEMPLATE_ORDER_EXECUTED,
    codes.MD_FEED_L2: 0,
    codes.MD_FEED_BBO: 0,
    codes.MD_FEED_TRD: codes.TEMPLATE_TRADE,
}

HEADER: Final = struct.Struct("<QQ")  #: ChannelSeqNum of the first record, SendingTime
HEADER_SIZE: Final = HEADER.size


def u64_as_i64(value: int) -> int:
    """A u64 (SendingTime) as the int64 of the same bits: jitted code takes it with one
    signature whatever the value (one of 2^63 or more would not convert to int64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def feed_bit(feed: int) -> int:
    """The bit of ``feed`` in ``FEEDS_OF_TEMPLATE``'s masks."""
    return 1 << (feed - 1)


def _routing() -> np.ndarray:
    every = sum(feed_bit(f) for f in ALL_FEEDS)
    table = np.zeros(256, np.uint8)
    # status, auction and reference records go to every feed, so each feed is self-contained
    for tid in (
        codes.TEMPLATE_SECURITY_STATUS,
        codes.TEMPLATE_INDICATIVE_AUCTION,
        codes.TEMPLATE_SECURITY_DEFINITION,
        codes.TEMPLATE_SECURITY_LIMITS,
    ):
        table[tid] = every
    for tid in (
        codes.TEMPLATE_ADD_ORDER,
        codes.TEMPLATE_ORDER_EXECUTED,
        codes.TEMPLATE_ORDER_REDUCED,
        codes.TEMPLATE_ORDER_DELETE,
        codes.TEMPLATE_ORDER_REPLACE,
    ):
        table[tid] = feed_bit(codes.MD_FEED_L3)
    table[codes.TEMPLATE_BOOK_LEVEL] = feed_bit(codes.MD_FEED_L2)
    table[codes.TEMPLATE_BEST_BID_OFFER] = feed_bit(codes.MD_FEED_BBO)
    table[codes.TEMPLATE_TRADE] = feed_bit(codes.MD_FEED_TRD)
    return table


#: per template id (< 256), the bit mask of the feeds that carry it; 0 = not published
FEEDS_OF_TEMPLATE: Final = _routing()


@lru_cache(maxsize=1 << 16)
def topic(feed: int, security_id: int) -> bytes:
    """``L3.0000000042``: the feed's name, a dot and the SecurityID in 10 digits."""
    return f"{FEED_NAMES[feed]}.{security_id:010d}".encode("ascii")


def feed_by_name(name: str) -> int:
    """The MDFeed code of ``L3``, ``L2``, ``BBO`` or ``TRD`` (any case)."""
    for code, feed_name in FEED_NAMES.items():
        if feed_name == name.upper():
            return code
    raise ValueError(f"unknown feed {name!r}; expected one of {sorted(FEED_NAMES.values())}")


def parse_topic(topic: bytes) -> tuple[int, int] | None:
    """(feed, SecurityID) of a topic, None if it is not one of ours."""
    name, dot, digits = topic.partition(b".")
    if not dot or len(digits) != 10 or not digits.isdigit():
        return None
    try:
        return feed_by_name(name.decode("ascii")), int(digits)
    except (UnicodeDecodeError, ValueError):
        return None


def pack_header(channel_seq: int, sending_time: int) -> bytes:
    return HEADER.pack(channel_seq, sending_time)


def unpack_header(data: bytes) -> tuple[int, int]:
    """(ChannelSeqNum, SendingTime) of a packet header; ValueError if it is not 16 bytes."""
    if len(data) != HEADER_SIZE:
        raise ValueError(f"packet header is {len(data)} bytes, expected {HEADER_SIZE}")
    seq, sent = HEADER.unpack(data)
    return int(seq), int(sent)
