"""``qfix demo``: the live local demo, or (``--frame``) one frame taken apart without sockets."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

__all__ = ["demo"]


@click.command("demo")
@click.option("--seconds", type=click.FloatRange(1, 3600), default=10, show_default=True, help="trading time.")
@click.option("--clients", type=click.IntRange(1, 4), default=3, show_default=True, help="simulated traders.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="keep the keys and qfix.toml here (default: a temporary directory).",
)
@click.option("--pq-only", is_flag=True, help="QZMQ without X25519.")
@click.option("--frame", is_flag=True, help="instead: take one sample order frame apart and match it (no sockets).")
@click.option("--no-engine", is_flag=True, help="with --frame: only build, check and print the frame.")
def demo(seconds: float, clients: int, home: Path | None, pq_only: bool, frame: bool, no_engine: bool) -> None:
    """Run a local server with simulated trading clients and a market-data watcher.

    Prints the server's status line every second with BTC-USD's top levels as a
    market-data subscriber rebuilds them from the feed, then its ladder, and a summary
    of what every client sent, got acknowledged and filled.
    """
    console = Console()
    if frame:
        from qfix.demo.frame import show_frame

        show_frame(console, no_engine)
        return
    from qfix.demo.live import run_demo

    results = run_demo(seconds, clients, home, pq_only, console)
    if any(r.error for r in results) or len(results) < clients:
        raise click.ClickException("a trading client failed (see above)")
