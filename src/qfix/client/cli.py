"""``qfix client``: send orders from the command line or a CSV file and print the reports."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

__all__ = ["client"]

_CSV_FIELDS = ("side", "qty", "security_id", "price", "tif")


def _parse_order(text: str, where: str) -> dict[str, Any]:
    parts = [p.strip() for p in text.split(",")]
    if not 3 <= len(parts) <= 5:
        raise click.BadParameter(f"{where}: expected SIDE,QTY,SECURITY_ID[,PRICE[,TIF]], got {text!r}")
    side, qty, sec = parts[:3]
    price = parts[3] if len(parts) > 3 and parts[3] else None
    tif = parts[4] if len(parts) > 4 and parts[4] else ("day" if price else "ioc")
    if side not in ("buy", "sell"):
        raise click.BadParameter(f"{where}: side {side!r}; use buy or sell")
    try:
        order = {"side": side, "qty": int(qty), "security_id": int(sec), "tif": tif}
        if price is not None:
            order["price"] = Decimal(price)
    except (ValueError, ArithmeticError):
        raise click.BadParameter(f"{where}: quantity and security id must be integers, price a decimal") from None
    return order


def _read_csv(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise click.BadParameter(f"{path}: {exc}") from None
    orders = []
    for n, row in enumerate(rows, start=2):
        missing = [f for f in _CSV_FIELDS[:3] if not row.get(f)]
        if missing:
            raise click.BadParameter(f"{path}:{n}: missing {', '.join(missing)} (columns: {', '.join(_CSV_FIELDS)})")
        text = ",".join(row.get(f) or "" for f in _CSV_FIELDS)
        orders.append(_parse_order(text, f"{path}:{n}"))
    return orders


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


@click.command()
@click.option("--endpoint", default="tcp://127.0.0.1:5555", show_default=True, help="the server's order entry.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".qfix"),
    show_default=True,
    help="the default setup written by `qfix server` (client-1.key, server.key.pub).",
)
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--server-key", "server_key_file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--pq-only", is_flag=True, help="QZMQ without X25519; must match the server.")
@click.option(
    "--order",
    "orders",
    multiple=True,
    metavar="SIDE,QTY,SECURITY_ID[,PRICE[,TIF]]",
    help="e.g. buy,10,1,65000.00,gtc (no price: a market IOC order). Repeatable.",
)
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="orders file.")
@click.option("--cancel-all", is_flag=True, help="send a mass cancel for all instruments after the orders.")
@click.option("--wait", type=click.FloatRange(0, 600), default=1.0, show_default=True, help="seconds of quiet to stop.")
@click.option("--json", "as_json", is_flag=True, help="print each received message as a JSON line.")
def client(
    endpoint: str,
    home: Path,
    key_file: Path | None,
    server_key_file: Path | None,
    pq_only: bool,
    orders: tuple[str, ...],
    csv_file: Path | None,
    cancel_all: bool,
    wait: float,
    as_json: bool,
) -> None:
    """Connect, send orders, print every report until the server has been quiet for --wait s."""
    from rich.console import Console
    from rich.table import Table

    from qfix.client import Client

    todo = [_parse_order(o, f"--order {i + 1}") for i, o in enumerate(orders)]
    if csv_file is not None:
        todo += _read_csv(csv_file)
    c = Client.from_files(
        endpoint,
        key_file or home / "client-1.key",
        server_key_file or home / "server.key.pub",
        mode="pq-only" if pq_only else "hybrid",
    )
    c.connect(timeout=10.0)
    for o in todo:
        c.new_order(**o)
    if cancel_all:
        c.mass_cancel()
    c.flush()
    shown = ("template", "ClOrdID", "OrderID", "ExecType", "OrdStatus", "LastQty", "LastPx", "LeavesQty")
    table = Table(*shown, "reason")
    for report in c.reports(timeout=wait):
        if as_json:
            click.echo(json.dumps({k: _plain(v) for k, v in report.items()}))
            continue
        reason = report.get("ExecReason") or report.get("BusinessRejectReason") or ""
        table.add_row(*(str(_plain(report.get(k, ""))) for k in shown), str(reason))
    if not as_json:
        Console().print(table)
    c.close()
