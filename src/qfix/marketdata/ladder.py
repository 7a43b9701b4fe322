"""A book as a terminal ladder (rich), for ``qfix md`` and the demo. Display only."""

from __future__ import annotations

from rich.table import Table

from qfix.marketdata.book import BID, OFFER, Book, Level
from qfix.wire.message import p9_to_price

__all__ = ["ladder", "one_line"]


def _levels(book: Book, side: int, depth: int) -> list[Level]:
    """L3-derived levels when the book has orders, else the L2 feed's."""
    levels = book.l3_levels(side) if book.orders else book.l2_levels(side)
    return levels[:depth]


def _px(price: int | None) -> str:
    value = None if price is None else p9_to_price(price)
    return "-" if value is None else str(value)


def ladder(book: Book, depth: int = 10, *, title: str = "", footer: str = "") -> Table:
    """Offers above (best at the bottom), bids below (best at the top), then the last trades."""
    d = book.definition
    name = d.symbol if d is not None and d.symbol else str(book.security_id)
    table = Table(title=title or f"{name} ({book.security_id})", caption=footer or None, expand=False)
    table.add_column("orders", justify="right", style="dim")
    table.add_column("bid size", justify="right", style="green")
    table.add_column("price", justify="right")
    table.add_column("ask size", justify="right", style="red")
    table.add_column("orders", justify="right", style="dim")
    for lv in reversed(_levels(book, OFFER, depth)):
        table.add_row("", "", _px(lv.price), f"{lv.size:,}", f"{lv.orders:,}")
    table.add_section()
    for lv in _levels(book, BID, depth):
        table.add_row(f"{lv.orders:,}", f"{lv.size:,}", _px(lv.price), "", "")
    trades = list(book.trades)[-5:]
    if trades:
        table.add_section()
        for t in reversed(trades):
            side = {1: "buy", 2: "sell"}.get(t.aggressor, "auction")
            table.add_row("", "", f"{_px(t.price)}", f"{t.qty:,} {side}", f"#{t.trade_id}")
    return table


def one_line(book: Book, depth: int = 3) -> str:
    """``SYMBOL bids ... | asks ... | last ...`` in one line."""
    d = book.definition
    name = d.symbol if d is not None and d.symbol else str(book.security_id)
    bids = " ".join(f"{_px(lv.price)}x{lv.size}" for lv in _levels(book, BID, depth)) or "-"
    asks = " ".join(f"{_px(lv.price)}x{lv.size}" for lv in _levels(book, OFFER, depth)) or "-"
    text = f"{name}  bids {bids} | asks {asks}"
    if book.trades:
        last = book.trades[-1]
        text += f" | last {_px(last.price)} x {last.qty}"
    return text
