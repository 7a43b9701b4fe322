"""``qfix md``: watch one instrument's book live in the terminal, or print the feed as JSON."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
import zmq

from qfix.marketdata import feeds
from qfix.marketdata.ladder import ladder
from qfix.marketdata.subscriber import Subscriber, warm_up
from qfix.wire import codes
from qfix.wire.message import describe

__all__ = ["md"]


def _json_lines(endpoint: str, feed_names: tuple[str, ...], symbol_id: int | None, seconds: float) -> None:
    """Raw packets as JSON lines: one line per record, with its feed and ChannelSeqNum."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    for name in feed_names:
        feed = feeds.feed_by_name(name)
        prefixes = [feeds.topic(feed, symbol_id), feeds.topic(feed, 0)] if symbol_id else [f"{name.upper()}.".encode()]
        for prefix in prefixes:
            sub.setsockopt(zmq.SUBSCRIBE, prefix)
    sub.connect(endpoint)
    end = time.monotonic() + seconds if seconds else float("inf")
    try:
        while time.monotonic() < end:
            if not sub.poll(100):
                continue
            topic, header, data = [*sub.recv_multipart(), b"", b""][:3]
            where = feeds.parse_topic(topic)
            try:
                seq, sent = feeds.unpack_header(header)
            except ValueError:
                continue
            for i in range(len(data) // codes.MESSAGE_SIZE):
                record: dict[str, Any] = {"feed": feeds.FEED_NAMES.get(where[0], "?") if where else "?"}
                record["seq"] = seq + i if seq else 0
                record["sending_time"] = sent
                try:
                    record.update(describe(data[i * codes.MESSAGE_SIZE : (i + 1) * codes.MESSAGE_SIZE]))
                except ValueError as exc:
                    record["error"] = str(exc)
                sys.stdout.write(json.dumps(record, default=str) + "\n")
            sys.stdout.flush()
    finally:
        sub.close(0)
        ctx.term()


@click.command()
@click.option("--endpoint", default="tcp://127.0.0.1:5556", show_default=True, help="the market-data PUB.")
@click.option(
    "--snapshot-endpoint", default="tcp://127.0.0.1:5557", show_default=True, help="the snapshot and replay service."
)
@click.option("--symbol", default=None, help="instrument symbol (from the feed's SecurityDefinition).")
@click.option("--security-id", type=click.IntRange(1, 2**32 - 2), default=None, help="instrument id (not a symbol).")
@click.option("--depth", type=click.IntRange(1, 100), default=10, show_default=True, help="levels per side.")
@click.option("--json", "as_json", is_flag=True, help="print every record as a JSON line (no book).")
@click.option(
    "--feed",
    "feed_names",
    multiple=True,
    default=("L3", "L2", "BBO", "TRD"),
    show_default=True,
    help="feeds to follow (repeatable).",
)
@click.option("--seconds", type=click.FloatRange(0), default=0.0, help="stop after this long (0 = until Ctrl-C).")
def md(
    endpoint: str,
    snapshot_endpoint: str,
    symbol: str | None,
    security_id: int | None,
    depth: int,
    as_json: bool,
    feed_names: tuple[str, ...],
    seconds: float,
) -> None:
    """Show an instrument's live ladder (bids, asks, sizes, order counts, last trades), or
    with --json print the feed's records as JSON lines for piping."""
    try:
        feed_codes = [feeds.feed_by_name(n) for n in feed_names]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--feed") from None
    if as_json:
        _json_lines(endpoint, feed_names, security_id, seconds)
        return
    from rich.console import Console
    from rich.live import Live

    console = Console()
    ids = [security_id] if security_id else None
    with console.status("compiling the subscriber's kernels (once per installation)"):
        warm_up()
    end = time.monotonic() + seconds if seconds else float("inf")
    with Subscriber(endpoint, snapshot_endpoint, feed_codes, security_ids=ids) as sub:
        book = None
        with console.status(f"waiting for the feed on {endpoint} and a snapshot from {snapshot_endpoint}"):
            while book is None and time.monotonic() < end:
                sub.poll(100)
                book = _find(sub, symbol, security_id)
        if book is None:
            raise click.ClickException(
                f"no instrument {symbol or security_id} seen on {endpoint} (is the server running with market data?)"
            )
        with Live(console=console, auto_refresh=False) as live:
            shown = False
            while not shown or time.monotonic() < end:  # the ladder at least once
                shown = True
                sub.poll(100)
                stats = [s.stats for s in sub.feeds.values()]
                seqs = " ".join(
                    f"{feeds.FEED_NAMES[f]} {s.next_channel_seq - 1 if s.next_channel_seq else 0}"
                    for f, s in sub.feeds.items()
                )
                footer = (
                    f"seq {seqs} | gaps {sum(s.gaps for s in stats)} recovered by {sum(s.replays for s in stats)} "
                    f"replays, {sum(s.snapshots for s in stats)} snapshots | open {sub.open_gaps()}"
                )
                live.update(ladder(book, depth, footer=footer), refresh=True)


def _find(sub: Subscriber, symbol: str | None, security_id: int | None) -> Any:
    if security_id is not None:
        book = sub.books.get(security_id)
        return book if book is not None and book.definition is not None else None
    for book in sub.books.values():
        if book.definition is not None and (symbol is None or book.definition.symbol == symbol):
            return book
    return None
