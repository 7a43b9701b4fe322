"""``qfix server``: run a matching shard from a configuration file or the embedded default."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import click
import zmq

__all__ = ["server"]


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML configuration (docs/server.md). Without it the default setup in --home is used.",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".qfix"),
    show_default=True,
    help="where the default setup (keys, allow-list, qfix.toml) is created on first start.",
)
@click.option("--host", default=None, help="bind address (default from the config: 127.0.0.1).")
@click.option("--fix-port", type=click.IntRange(0, 65535), default=None, help="order-entry port (0 = any free port).")
@click.option("--md-port", type=click.IntRange(0, 65535), default=None, help="market-data PUB port.")
@click.option(
    "--snapshot-port",
    "md_snapshot_port",
    type=click.IntRange(0, 65535),
    default=None,
    help="market-data snapshot and replay port.",
)
@click.option("--batch", type=click.IntRange(1, 1_000_000), default=None, help="most messages per engine call.")
@click.option(
    "--idle-spin-us",
    type=click.IntRange(0, 100_000),
    default=None,
    help="poll this long before the idle loop sleeps (latency for CPU; docs/server.md).",
)
@click.option("--pq-only", is_flag=True, default=None, help="QZMQ without X25519 (ML-KEM-768 only).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, help="Prometheus on 127.0.0.1.")
@click.option("--status-interval", type=click.FloatRange(0, 3600), default=None, help="seconds between status lines.")
@click.option(
    "--durability",
    type=click.Choice(["fsync", "batch-async", "none"]),
    default=None,
    help="journal mode (default from the config: fsync); docs/journal.md.",
)
@click.option(
    "--journal-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="journal directory (default from the config: journal/ beside it).",
)
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING"]))
def server(
    config_path: Path | None,
    home: Path,
    host: str | None,
    fix_port: int | None,
    md_port: int | None,
    md_snapshot_port: int | None,
    batch: int | None,
    idle_spin_us: int | None,
    pq_only: bool | None,
    metrics_port: int | None,
    status_interval: float | None,
    durability: str | None,
    journal_dir: Path | None,
    log_level: str,
) -> None:
    """Run the order-matching server until SIGINT or SIGTERM.

    Prints a status line every second: orders/s | msgs/s | Gbps in/out | trades |
    batches | ns/order | sessions. Flags override the configuration file.
    """
    from qfix.server import Server, ensure_default_setup, load_config, with_overrides

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log = logging.getLogger("qfix.server")
    if config_path is None:
        config_path = ensure_default_setup(home)
        log.info("using the default setup in %s (keys, allow-list, qfix.toml)", home)
    config = with_overrides(
        load_config(config_path),
        host=host,
        fix_port=fix_port,
        md_port=md_port,
        md_snapshot_port=md_snapshot_port,
        batch=batch,
        idle_spin_us=idle_spin_us,
        pq_only=pq_only,
        metrics_port=metrics_port,
        status_interval=status_interval,
        durability=durability,
        journal_dir=journal_dir,
    )
    started = time.monotonic()
    log.info("loading the engine kernels (the first start on a machine compiles them: a few minutes)")
    try:
        srv = Server(config, on_status=lambda line: click.echo(line))
    except zmq.ZMQError as exc:  # e.g. the address is in use
        raise click.ClickException(f"cannot bind {config.fix_endpoint}: {exc}") from None

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in hand and closing sessions", signum)
        srv.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    log.info(
        "listening on %s (%s, %d instruments, batch %d) after %.1f s",
        srv.fix_endpoint,
        config.qzmq.mode.name.lower().replace("_", "-"),
        len(config.instruments),
        config.batch,
        time.monotonic() - started,
    )
    if srv.md is not None:
        log.info("market data on %s, snapshots and replay on %s", *srv.md_endpoints)
    if srv.metrics.port:
        log.info("Prometheus metrics on http://127.0.0.1:%d/metrics", srv.metrics.port)
    srv.serve_forever()
    if srv.failure:
        raise click.ClickException(f"stopped: {srv.failure}")
