"""Market data: the publisher (feeds, RptSeq, ChannelSeqNum), the snapshot and replay
service, and the subscriber that rebuilds every book with gap recovery (WIRE.md §6.3-6.6)."""

from qfix.marketdata.book import BID, OFFER, Book, Definition, Level, Trade
from qfix.marketdata.feeds import ALL_FEEDS, FEED_NAMES, feed_by_name, topic
from qfix.marketdata.publisher import Packet, Publisher, Retention
from qfix.marketdata.recovery import FeedState, FeedStats, Want
from qfix.marketdata.service import SnapshotService
from qfix.marketdata.snapshot import VIEW_ORDER, BookView, snapshot_packets
from qfix.marketdata.subscriber import Subscriber, Update

__all__ = [
    "ALL_FEEDS",
    "BID",
    "FEED_NAMES",
    "OFFER",
    "VIEW_ORDER",
    "Book",
    "BookView",
    "Definition",
    "FeedState",
    "FeedStats",
    "Level",
    "Packet",
    "Publisher",
    "Retention",
    "SnapshotService",
    "Subscriber",
    "Trade",
    "Update",
    "Want",
    "feed_by_name",
    "snapshot_packets",
    "topic",
]
