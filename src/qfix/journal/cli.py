"""``qfix journal verify|dump|replay``: inspect a journal directory, print it, replay it.

Thin adapters over :mod:`qfix.journal`. ``replay`` needs the instruments and engine
limits the journal was written with, so it reads the server's configuration file.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
import numpy as np

from qfix.journal import entries as ent
from qfix.journal.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from qfix.journal.files import JournalCorruptError, TornTail, list_segments, read_journal

__all__ = ["journal"]

_DIR = click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))


@click.group()
def journal() -> None:
    """Inspect, print and replay a server's journal directory (docs/journal.md)."""


def _describe(entry: ent.Entry) -> dict[str, Any]:
    if isinstance(entry, ent.Batch):
        recs = entry.records
        sessions = sorted({int(s) for s in recs["SessionID"]}) if recs.size else []
        times = recs["RecvTime"]
        return {
            "records": int(recs.size),
            "sessions": sessions,
            "recv_time": [int(times.min()), int(times.max())] if recs.size else [],
        }
    if isinstance(entry, ent.OpenSession):
        return {"session_id": entry.session_id, "kid": entry.kid.hex()}
    doc: dict[str, Any] = {}
    for name in entry.__slots__:
        value = getattr(entry, name)
        doc[name] = list(value) if isinstance(value, tuple) else value
    return doc


@journal.command()
@_DIR
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of lines.")
def verify(directory: Path, as_json: bool) -> None:
    """Check every segment and checkpoint; exit 1 if any is damaged.

    A torn final write (what a crash leaves) is reported but is not damage: the
    server discards it on start, and it was never acknowledged."""
    kinds: Counter[str] = Counter()
    torn: list[TornTail] = []
    first = last = 0
    problems: list[str] = []
    segments = list_segments(directory)
    start = segments[0].first_seq - 1 if segments else 0
    try:
        for seq, kind, payload in read_journal(directory, start, torn=torn):
            entry = ent.decode(kind, payload)
            kinds[ent.Kind(kind).name] += 1
            first = first or seq
            last = seq
            del entry
    except (JournalCorruptError, ent.EntryError) as exc:
        problems.append(str(exc))
    checkpoints = []
    for seq, path in list_checkpoints(directory):
        try:
            ck = load_checkpoint(path)
            checkpoints.append({"file": path.name, "seq": seq, "ok": True, "state_hash": ck.meta.get("state_hash")})
        except CheckpointError as exc:
            checkpoints.append({"file": path.name, "seq": seq, "ok": False, "error": str(exc)})
            problems.append(str(exc))
    doc = {
        "directory": str(directory),
        "segments": [s.path.name for s in segments],
        "records": sum(kinds.values()),
        "first_seq": first,
        "last_seq": last,
        "kinds": dict(sorted(kinds.items())),
        "torn_tail": [{"file": t.path.name, "offset": t.offset, "bytes": t.length, "why": t.why} for t in torn],
        "checkpoints": checkpoints,
        "problems": problems,
        "ok": not problems,
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"{directory}: {len(segments)} segment(s), records {first}..{last} ({doc['records']})")
        for name, n in sorted(kinds.items()):
            click.echo(f"  {name:<16} {n}")
        for t in torn:
            click.echo(f"  torn final write in {t.path.name} at offset {t.offset} ({t.length} bytes): {t.why}")
        for ck_doc in checkpoints:
            state = "ok" if ck_doc["ok"] else f"DAMAGED: {ck_doc['error']}"
            click.echo(f"  checkpoint {ck_doc['file']} (sequence {ck_doc['seq']}): {state}")
        for p in problems:
            click.echo(f"DAMAGED: {p}", err=True)
    if problems:
        raise SystemExit(1)


@journal.command()
@_DIR
@click.option("--from", "from_seq", type=click.IntRange(1), default=1, show_default=True, help="first sequence number.")
@click.option("--count", type=click.IntRange(1), default=None, help="most records to print.")
@click.option("--records", is_flag=True, help="also print each order of a batch (hex of its 80 bytes).")
def dump(directory: Path, from_seq: int, count: int | None, records: bool) -> None:
    """Print records as JSON lines: sequence, kind and what the record holds."""
    for printed, (seq, kind, payload) in enumerate(read_journal(directory, from_seq - 1), 1):
        entry = ent.decode(kind, payload)
        doc = {"seq": seq, "kind": ent.Kind(kind).name, **_describe(entry)}
        if records and isinstance(entry, ent.Batch):
            raw = np.ascontiguousarray(entry.records).view(np.uint8).reshape(-1, 80)
            doc["inbound"] = [bytes(r).hex() for r in raw]
        click.echo(json.dumps(doc))
        if count is not None and printed >= count:
            break


@journal.command()
@_DIR
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="the server configuration the journal was written with (instruments, engine limits).",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON document.")
def replay(directory: Path, config_path: Path, as_json: bool) -> None:
    """Replay the journal into a fresh engine and print the resulting hashes.

    Starts from the journal's first record when it is all there, else from the oldest
    checkpoint; the event hash is computed (as the live server does only when
    ``engine.event_hash`` is on)."""
    import dataclasses

    from qfix.engine import Engine
    from qfix.engine import snapshot as engine_snapshot
    from qfix.journal.replay import INITIAL_OUTPUT, REFUSED, EngineDriver, is_engine_entry
    from qfix.server.config import load_config

    config = load_config(config_path)
    engine_config = dataclasses.replace(config.engine, event_hash=True)
    segments = list_segments(directory)
    start = 0
    out_size = INITIAL_OUTPUT
    engine = Engine(config.instruments, engine_config)
    if segments and segments[0].first_seq > 1:
        older = [(s, p) for s, p in list_checkpoints(directory) if s >= segments[0].first_seq - 1]
        if not older:
            raise JournalCorruptError(f"journal {directory}: starts at {segments[0].first_seq} with no checkpoint")
        ck = load_checkpoint(older[0][1])
        engine = engine_snapshot.restore(config.instruments, engine_snapshot.loads(ck.engine), engine_config)
        start, out_size = ck.seq, int(ck.meta.get("out_size", INITIAL_OUTPUT))
    driver = EngineDriver(engine, out_size)
    torn: list[TornTail] = []
    started = time.perf_counter()
    last = start
    applied = orders = 0
    for seq, kind, payload in read_journal(directory, start, torn=torn):
        entry = ent.decode(kind, payload)
        if is_engine_entry(entry):
            with contextlib.suppress(*REFUSED):  # refused live just the same, and changed nothing
                driver.apply(entry, lambda _out: None)
            applied += 1
            if isinstance(entry, ent.Batch):
                orders += entry.records.size
        last = seq
    seconds = time.perf_counter() - started
    doc = {
        "from_seq": start,
        "last_seq": last,
        "engine_records": applied,
        "orders": orders,
        "seconds": round(seconds, 3),
        "state_hash": engine.state_hash().hex(),
        "event_hash": engine.event_hash().hex(),
        "resting_orders": engine.resting_orders,
        "torn_tail_bytes": sum(t.length for t in torn),
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        for key, value in doc.items():
            click.echo(f"{key:<16} {value}")
