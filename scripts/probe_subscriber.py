"""What applying the feed costs a subscriber, per record, without sockets.

Runs ENGINE.md's ``multi`` stream (its 500,000-message quick version, as cached under
``bench-out/streams`` by ``qfix bench engine --quick``) through an engine in calls of
``--batch`` messages and a publisher, as the server does, and keeps every feed packet as
the three frames a SUB socket would deliver. Then, per pass, a fresh ``SubscriberCore`` on
all four feeds joins with a snapshot of the empty books (before the first engine call), applies the prefill's packets
untimed and then every other packet, timed in process CPU time, in tables of up to
``TABLE_ROWS`` packets laid out as the jitted receive leaves them (``feed_packets``, as
the SDK's ``Subscriber`` applies what it reads, with a set of update notices per table;
packing the tables is not timed). A second set of cores does the same without notices
(``updates=None``, as the net benchmark's subscriber, which reads the books directly),
and a third takes the packets as pyzmq's lists of frames, ``TABLE_ROWS`` at a time
(``feed_messages``, the path of a subscriber reading through pyzmq: packing them into a
table is timed). Beside them, in the same process, the floor
of any Python subscriber: reading each packet's topic and header and each record's
template id with ``struct``, and nothing else. At the end the books must equal the
engine's. Medians of ``--passes``. Usage:

    .venv/bin/python scripts/probe_subscriber.py [--messages N] [--batch 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from qfix.bench.engine import _instruments, _stream
from qfix.engine import Engine, EngineConfig
from qfix.journal.entries import Batch
from qfix.journal.replay import EngineDriver
from qfix.marketdata import _recv, feeds
from qfix.marketdata.publisher import Chunk, Packet, Publisher
from qfix.marketdata.service import SnapshotService
from qfix.marketdata.subscriber import TABLE_ROWS, SubscriberCore
from qfix.server.feed import book_view, reference_records
from qfix.testing.marketdata import book_differences, feed_messages
from qfix.wire import codes


def _feed(
    messages: int, batch: int, cores: list[SubscriberCore]
) -> tuple[Engine, list[list[bytes]], list[list[bytes]], int]:
    """The engine at the end and the packets of the prefill and of the timed messages (with
    their count of sequenced records); ``cores`` join before the first engine call."""
    records, prefill, _, _ = _stream("multi", True, Path("bench-out/streams"))
    records = records[: prefill + messages]
    engine = Engine(_instruments("multi"), EngineConfig())
    driver = EngineDriver(engine, out_size=1 << 20)
    publisher = Publisher([i.security_id for i in engine.instruments], retention=0)

    def view(security_id: int) -> Any:
        inst = int(publisher.index_of(np.array([security_id]))[0]) if security_id else None
        return book_view(engine, 1, inst)

    service = SnapshotService(publisher, view)
    start: list[Packet | Chunk] = [p for f in feeds.ALL_FEEDS for p in publisher.reset(f, 1)]
    start += publisher.publish(reference_records(engine, 1).reshape(-1, codes.MESSAGE_SIZE), 1)
    first = feed_messages(start)
    for core in cores:
        _join(core, service, first)
    packets: list[list[list[bytes]]] = [[], []]
    sequenced = 0
    for part, (lo, hi) in enumerate(((0, prefill), (prefill, records.size))):
        for at in range(lo, hi, batch):
            md: list[Any] = []
            driver.apply(Batch(records[at : min(at + batch, hi)]), md.append)
            parts = [out["message"][out["dest"] == codes.MD_DEST] for out in md]
            msgs = np.concatenate(parts) if parts else np.zeros((0, codes.MESSAGE_SIZE), np.uint8)
            items = publisher.publish(msgs, 2 + at)
            if part:
                sequenced += sum(int(i.records.shape[0]) for i in items)
            packets[part] += feed_messages(items)
    filled, live = packets
    return engine, filled, live, sequenced


def _join(core: SubscriberCore, service: SnapshotService, first: list[list[bytes]]) -> None:
    for msg in first:
        core.feed_message(msg)
    while True:
        request, _ = core.next_request(0.0, 0)
        if request is None:
            return
        for packet in service.handle(request, 1).packets:
            core.reply_message([bytes(f) for f in packet.frames()])


def _tables(live: list[list[bytes]], rows: int) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], int]]:
    """The messages as packet tables of ``rows`` rows, as ``_recv.recv_packets`` fills them."""
    out = []
    columns = ((_recv.TOPIC_AT, _recv.TOPIC_LEN), (_recv.HEADER_AT, _recv.HEADER_LEN), (_recv.BODY_AT, _recv.BODY_LEN))
    for lo in range(0, len(live), rows):
        chunk = live[lo : lo + rows]
        arena = np.frombuffer(b"".join(f for msg in chunk for f in msg), np.uint8)
        table = np.zeros((len(chunk), _recv.COLUMNS), np.int64)
        at = 0
        for row, msg in enumerate(chunk):
            for frame, (at_col, len_col) in zip(msg, columns, strict=True):
                table[row, at_col] = at
                table[row, len_col] = len(frame)
                at += len(frame)
            table[row, _recv.FRAMES] = len(msg)
        out.append((arena, table, len(chunk)))
    return out


_HEAD = struct.Struct("<QQ")
_TEMPLATE = struct.Struct("<H")


def _floor(live: list[list[bytes]]) -> int:
    """Read what any subscriber must read, and nothing more."""
    total = 0
    head, template = _HEAD.unpack, _TEMPLATE.unpack_from
    for topic, header, data in live:
        feeds.parse_topic(topic)
        head(header)
        for at in range(0, len(data), codes.MESSAGE_SIZE):
            total += template(data, at + 2)[0]
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=500_000, help="after the prefill, which is not timed")
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    variants = ("tables", "tables_no_notices", "pyzmq_messages")
    cores = {v: [SubscriberCore(feeds.ALL_FEEDS) for _ in range(args.passes)] for v in variants}
    every = [core for v in variants for core in cores[v]]
    engine, filled, live, sequenced = _feed(args.messages, args.batch, every)
    tables = _tables(live, TABLE_ROWS)
    seconds: dict[str, list[float]] = {v: [] for v in (*variants, "floor")}
    for k in range(args.passes):
        t0 = time.process_time()
        _floor(live)
        seconds["floor"].append(time.process_time() - t0)
        for v in variants:
            core = cores[v][k]
            for msg in filled:
                core.feed_message(msg)
            t0 = time.process_time()
            if v == "pyzmq_messages":
                for lo in range(0, len(live), TABLE_ROWS):
                    core.feed_messages(live[lo : lo + TABLE_ROWS], set())
            else:
                notices = v == "tables"
                for arena, table, count in tables:
                    # a fresh set per table, as Subscriber.poll collects one per poll
                    core.feed_packets(arena, table, count, set() if notices else None)
            seconds[v].append(time.process_time() - t0)
    differences = [d for core in every for d in book_differences(core.books, engine)]
    us = {v: statistics.median(t) / sequenced * 1e6 for v, t in seconds.items()}
    core_us, floor_us = us["tables"], us["floor"]
    result = {
        "workload": "multi-quick",
        "messages": args.messages,
        "batch": args.batch,
        "packets": len(live),
        "records": sequenced,
        "records_per_packet": sequenced / len(live),
        "table_rows": TABLE_ROWS,
        "subscriber_us_per_record": core_us,
        "subscriber_records_per_s": 1e6 / core_us,
        "no_notices_us_per_record": us["tables_no_notices"],
        "pyzmq_messages_us_per_record": us["pyzmq_messages"],
        "floor_us_per_record": floor_us,
        "subscriber_over_floor": core_us / floor_us,
        "books_equal": not differences and all(core.idle() for core in every),
        "passes": args.passes,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
