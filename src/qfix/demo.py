"""``qfix demo``: what the package can show today, end to end on one machine.

Builds a sample order-entry frame (new orders, a cancel, a replace, a mass cancel and
two deliberately malformed messages), encodes it, runs the server-side frame and
header checks, and prints every message decoded next to its outcome. Later issues
extend the demo to the local server.
"""

from __future__ import annotations

import time
from decimal import Decimal

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from qfix.wire import codec, codes, message

_SHORT = {1: "New", 2: "Cancel", 3: "Replace", 4: "MassCxl"}
_SHOWN = ("ClOrdID", "SecurityID", "Side", "OrdType", "TimeInForce", "Price", "OrderQty")
_LABELS = ("ClOrdID", "Sec", "Side", "Type", "TIF", "Price", "Qty")


def sample_frame() -> bytes:
    """A frame of 8 client messages, two of them malformed on purpose."""
    orders = [
        message.new_order_single(cl_ord_id=1, security_id=42, side="buy", qty=250, price="65000.50", tif="gtc"),
        message.new_order_single(cl_ord_id=2, security_id=42, side="sell", qty=100, price="65001.00"),
        message.new_order_single(cl_ord_id=3, security_id=42, side="buy", qty=40, tif="ioc"),
        message.order_cancel_replace_request(
            cl_ord_id=4, orig_cl_ord_id=1, security_id=42, side="buy", qty=300, price="65000.75", tif="gtc"
        ),
        message.order_cancel_request(cl_ord_id=5, orig_cl_ord_id=2, security_id=42, side="sell"),
        message.order_mass_cancel_request(cl_ord_id=6, security_id=42),
    ]
    bad_schema = message.new_order_single(cl_ord_id=7, security_id=42, side="buy", qty=1, price="1")
    bad_schema["schemaId"] = 61
    bad_reserved = message.new_order_single(cl_ord_id=8, security_id=42, side="sell", qty=1, price="1")
    bad_reserved["Reserved"][0] = 0xEE
    records = [np.frombuffer(r.tobytes(), np.uint8) for r in [*orders, bad_schema, bad_reserved]]
    return codec.encode(np.stack(records))


def _cell(value: object) -> str:
    """Compact display: enum values keep only their name ("1 Buy" -> "Buy")."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    return text.split(" ", 1)[1] if " " in text else text


def render(frame: bytes, now: int) -> Table:
    result = codec.validate(frame, now)
    assert result.frame is not None
    table = Table(title=f"order-entry frame: {len(frame)} bytes, {result.frame.count} messages")
    for column in ("#", "msg", *_LABELS, "outcome"):
        table.add_column(column, overflow="fold")
    brr = codes.NAMES["BusinessRejectReason"]
    for index, raw in enumerate(result.frame.raw):
        shown = message.describe(raw.tobytes())
        reason = int(result.reasons[index])
        outcome = "[green]accepted[/]" if reason == 0 else f"[red]reject {reason} {brr[reason]}[/]"
        cells = [_cell(shown.get(name)) for name in _SHOWN]
        table.add_row(str(index), _SHORT.get(shown["templateId"], shown["template"]), *cells, outcome)
    return table


@click.command("demo")
def demo() -> None:
    """Build, encode, check and print a sample order-entry frame."""
    console = Console()
    frame = sample_frame()
    console.print(render(frame, time.time_ns()))
    console.print(f"first message on the wire: [bold]{frame[:60].hex()}[/]")
