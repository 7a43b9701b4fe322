"""Checkpoints: the whole server state at one journal sequence number, written atomically.

Theory of operation. A checkpoint file holds the engine snapshot
(:mod:`qfix.engine.snapshot` bytes, which carry their own checksum and are validated on
restore), the sequence number of the last journal record it covers, and a small JSON
document the server fills with the rest of its state (the session table, blocked
accounts, the output-buffer size and the state hash for a cross-check). The file is
``MAGIC``, format version u32, reserved u32, sequence u64, JSON length u32, the JSON,
snapshot length u64, the snapshot, then a BLAKE2b-256 of everything before it.

It is written as a temporary file, synced, renamed over its final name
(``checkpoint-<seq>.qck``) and the directory synced, so a crash leaves either the whole
new checkpoint or none of it. Recovery takes the newest intact one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from qfix.journal.files import Files, JournalError, OsFiles

__all__ = ["Checkpoint", "CheckpointError", "list_checkpoints", "load_checkpoint", "write_checkpoint"]

MAGIC: Final = b"QFIXCKPT"
FORMAT_VERSION: Final = 1
_HEAD: Final = struct.Struct("<8sIIQI")
_SNAP_LEN: Final = struct.Struct("<Q")
_DIGEST: Final = 32
_NAME_RE: Final = re.compile(r"^checkpoint-(\d{20})\.qck$")
_MAX_META: Final = 1 << 30


class CheckpointError(JournalError):
    """A checkpoint file is unreadable or damaged (the message names the file)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    path: Path
    seq: int  #: the last journal record the state includes
    meta: dict[str, Any]
    engine: bytes  #: qfix.engine.snapshot file bytes


def checkpoint_name(seq: int) -> str:
    return f"checkpoint-{seq:020d}.qck"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(seq, path) of the checkpoint files in ``directory``, ascending."""
    found = []
    for path in directory.iterdir() if directory.is_dir() else ():
        m = _NAME_RE.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def encode_checkpoint(seq: int, meta: dict[str, Any], engine: bytes) -> bytes:
    doc = json.dumps(meta, sort_keys=True).encode("utf-8")
    body = b"".join((_HEAD.pack(MAGIC, FORMAT_VERSION, 0, seq, len(doc)), doc, _SNAP_LEN.pack(len(engine)), engine))
    return body + hashlib.blake2b(body, digest_size=_DIGEST).digest()


def decode_checkpoint(data: bytes, path: Path) -> Checkpoint:
    def fail(why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path}: {why}")

    if len(data) < _HEAD.size + _SNAP_LEN.size + _DIGEST:
        raise fail(f"{len(data)} bytes is too short for a checkpoint")
    if hashlib.blake2b(data[:-_DIGEST], digest_size=_DIGEST).digest() != data[-_DIGEST:]:
        raise fail("BLAKE2b-256 checksum mismatch (damaged or cut short)")
    magic, version, reserved, seq, meta_len = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise fail("bad magic (not a qfix checkpoint)")
    if version != FORMAT_VERSION or reserved != 0:
        raise fail(f"format version {version} (reserved {reserved}); this qfix reads {FORMAT_VERSION}")
    at = _HEAD.size
    if meta_len > _MAX_META or at + meta_len + _SNAP_LEN.size > len(data) - _DIGEST:
        raise fail(f"its JSON length {meta_len} runs past the end")
    try:
        meta = json.loads(data[at : at + meta_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"its state document is not JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise fail("its state document is not a JSON object")
    at += meta_len
    (snap_len,) = _SNAP_LEN.unpack_from(data, at)
    at += _SNAP_LEN.size
    if at + snap_len != len(data) - _DIGEST:
        raise fail(f"its engine snapshot length {snap_len} does not match the file size")
    return Checkpoint(path, int(seq), meta, bytes(data[at : at + snap_len]))


def load_checkpoint(path: Path) -> Checkpoint:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot read: {exc.strerror or exc}") from None
    return decode_checkpoint(data, path)


def write_checkpoint(
    directory: Path, seq: int, meta: dict[str, Any], engine: bytes, files: Files | None = None
) -> Path:
    """Write a checkpoint atomically (temporary file, sync, rename, directory sync)."""
    files = files or OsFiles()
    final = directory / checkpoint_name(seq)
    tmp = directory / (final.name + ".tmp")
    try:
        files.remove(tmp)
        fd = files.open_append(tmp)
        try:
            files.write(fd, encode_checkpoint(seq, meta, engine))
            files.sync(fd)
        finally:
            files.close(fd)
        files.replace(tmp, final)
        files.sync_dir(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):  # a full disk must not fill up with half checkpoints
            files.remove(tmp)
        raise CheckpointError(f"checkpoint {final}: cannot write: {exc.strerror or exc}") from None
    return final


def remove_leftovers(directory: Path, files: Files | None = None) -> None:
    """Remove temporary checkpoint files a crash left behind (never renamed into place)."""
    files = files or OsFiles()
    for path in directory.glob("checkpoint-*.qck.tmp"):
        files.remove(path)
