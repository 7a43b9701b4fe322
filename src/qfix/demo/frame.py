"""``qfix demo --frame``: one order frame taken apart, checked and matched, without sockets.

Builds a sample order-entry frame (new orders, a cancel, a replace, a mass cancel and
two deliberately malformed messages), encodes it, runs the server-side frame and
header checks, prints every message decoded next to its outcome, then hands the
accepted messages to the matching engine in one batch and prints every execution
report and market-data record it produced.
"""

from __future__ import annotations

import time
from decimal import Decimal

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
        message.new_order_single(cl_ord_id=2, security_id=42, side="sell", qty=100, price="65001.00", account=8),
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


_OUT_FIELDS = (
    "ClOrdID",
    "OrderID",
    "ExecType",
    "OrdStatus",
    "LastPx",
    "LastQty",
    "LeavesQty",
    "ExecReason",
    "MDEntryPx",
    "MDEntrySize",
    "MDEntryType",
    "MDUpdateAction",
    "BidPx",
    "OfferPx",
    "TradeID",
)


def run_engine(frame: bytes, now: int) -> np.ndarray:
    """The frame's accepted messages as one engine batch (session 0 trading for accounts 7 and 8)."""
    from qfix.engine import Engine, EngineConfig, InstrumentConfig
    from qfix.wire import schema

    result = codec.validate(frame, now)
    assert result.frame is not None
    accepted = result.frame.raw[result.accepted]
    batch = codec.to_inbound(accepted, session_id=0, session_account=7, recv_time=now)
    # one instrument: tick 0.01, reference 65,000.00, limits within +-1,000.00
    instrument = InstrumentConfig(
        security_id=42, symbol="BTC-USD", tick_size_p9=10_000_000, ref=6_500_000, band_width=100_000
    )
    engine = Engine([instrument], EngineConfig(max_orders=1024, max_levels=1024, max_instruments=4, max_sessions=4))
    out = np.zeros(4096, schema.OUTPUT)
    status = engine.process(batch, out)
    return out[: status.written]


def render_outputs(outputs: np.ndarray) -> Table:
    table = Table(title=f"engine output: {len(outputs)} records from one process() call")
    for column in ("#", "dest", "record", "fields"):
        table.add_column(column, overflow="fold")
    for index, record in enumerate(outputs):
        shown = message.describe(record["message"].tobytes())
        dest = "MD" if int(record["dest"]) == codes.MD_DEST else f"session {int(record['dest'])}"
        fields = [f"{name}={_cell(shown[name])}" for name in _OUT_FIELDS if name in shown and shown[name] is not None]
        table.add_row(str(index), dest, shown["template"], " ".join(fields))
    return table


def show_frame(console: Console, no_engine: bool) -> None:
    """Build, check and print a sample order frame, then match it in the engine."""
    frame = sample_frame()
    now = time.time_ns()
    console.print(render(frame, now))
    console.print(f"first message on the wire: [bold]{frame[:60].hex()}[/]")
    if not no_engine:
        with console.status("matching (the first run on a machine compiles the engine: minutes)"):
            outputs = run_engine(frame, now)
        console.print(render_outputs(outputs))
