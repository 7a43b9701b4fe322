"""The write-ahead journal: record codec, segment files with group commit, checkpoints, replay.

Everything that changes the server's state is journaled in sequence before it takes
effect (:mod:`qfix.journal.entries`); a batch's reports leave only after its record is
as durable as the mode promises (:class:`JournalWriter`); a restart loads the newest
checkpoint and replays the journal after it (:mod:`qfix.journal.replay`, driven by
the server's recovery). docs/journal.md states the guarantees and their limits.
"""

from qfix.journal.checkpoint import Checkpoint, CheckpointError, list_checkpoints, load_checkpoint, write_checkpoint
from qfix.journal.entries import Entry, EntryError, Kind, decode, encode
from qfix.journal.files import (
    DURABILITY_MODES,
    Files,
    JournalCorruptError,
    JournalError,
    JournalWriter,
    OsFiles,
    TornTail,
    cut_torn_tail,
    list_segments,
    read_journal,
)
from qfix.journal.replay import REFUSED, EngineDriver, is_engine_entry

__all__ = [
    "DURABILITY_MODES",
    "REFUSED",
    "Checkpoint",
    "CheckpointError",
    "EngineDriver",
    "Entry",
    "EntryError",
    "Files",
    "JournalCorruptError",
    "JournalError",
    "JournalWriter",
    "Kind",
    "OsFiles",
    "TornTail",
    "cut_torn_tail",
    "decode",
    "encode",
    "is_engine_entry",
    "list_checkpoints",
    "list_segments",
    "load_checkpoint",
    "read_journal",
    "write_checkpoint",
]
