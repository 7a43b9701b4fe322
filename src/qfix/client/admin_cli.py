"""``qfix admin``: operator commands to a running server (halt, resume, kill, reload, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["admin"]


@click.command()
@click.option("--endpoint", default="tcp://127.0.0.1:5555", show_default=True)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=Path(".qfix"), show_default=True)
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="admin key.")
@click.option("--server-key", "server_key_file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--pq-only", is_flag=True)
@click.argument(
    "op", type=click.Choice(["halt", "resume", "phase", "kill", "unblock", "reload", "end-of-day", "status"])
)
@click.argument("ids", nargs=-1, type=click.IntRange(0, 0xFFFF_FFFE))
@click.option(
    "--phase",
    type=click.Choice(["closed", "pre-open", "continuous", "pre-close", "halted"]),
    default=None,
    help="with op phase: the phase to move the instruments to.",
)
def admin(
    endpoint: str,
    home: Path,
    key_file: Path | None,
    server_key_file: Path | None,
    pq_only: bool,
    op: str,
    ids: tuple[int, ...],
    phase: str | None,
) -> None:
    """Send one admin command and print the server's reply as JSON.

    IDS are SecurityIDs for halt, resume and phase, accounts for kill (cancel every
    order of the accounts and refuse new ones) and unblock.

    \b
    qfix admin halt 1
    qfix admin phase 1 2 --phase pre-open
    qfix admin kill 101
    qfix admin reload        # re-read the allow-list; removed keys lose their sessions
    qfix admin end-of-day    # close the trading day now (Day orders expire)
    """
    from qfix.client import Client

    args: dict[str, Any] = {}
    if op in ("halt", "resume", "phase"):
        args["security_ids"] = list(ids)
    elif op in ("kill", "unblock"):
        args["accounts"] = list(ids)
    if op == "phase":
        if phase is None:
            raise click.BadParameter("op phase needs --phase", param_hint="--phase")
        args["phase"] = phase
    c = Client.from_files(
        endpoint,
        key_file or home / "admin.key",
        server_key_file or home / "server.key.pub",
        mode="pq-only" if pq_only else "hybrid",
        track_orders=False,
    )
    c.connect()
    reply = c.admin(op, **args)
    c.close()
    click.echo(json.dumps(reply, indent=2, sort_keys=True))
    if not reply.get("ok"):
        raise click.ClickException(str(reply.get("error")))
