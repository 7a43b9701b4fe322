"""Every exception qfix raises on purpose, as one tree rooted at :class:`QfixError`.

``except qfix.errors.QfixError`` catches any expected failure (bad configuration, a
refused key file, a malformed frame, a misused connection, an unwritable output path)
and nothing else: a bug still surfaces as its own exception with a traceback. The
``qfix`` command turns a QfixError into a one-line message and a non-zero exit status
in one place (:mod:`qfix.cli`). Classes keep a conventional base where callers may
already catch one (``ValueError``, ``RuntimeError``), and stay importable from the
package that raises them::

    QfixError                             qfix.errors: root; message only
    ├── ConfigError (ValueError)          qfix.errors: bad local configuration (names the key)
    │   ├── qzmq.ConfigError              qfix.qzmq.errors: ... of a QZMQ Config (also a QzmqError)
    │   └── ServerConfigError             qfix.server.config: a server configuration file or flag is refused
    ├── OutputPathError                   qfix.errors: a file the user asked for cannot be written there
    ├── BenchmarkError                    qfix.errors: a benchmark run could not produce its figures
    │   └── DocumentError                 qfix.errors: a benchmark JSON document is unreadable or misshapen
    ├── FrameError (ValueError)           qfix.wire.codec: a frame fails stage F (length)
    ├── EngineInvariantError (RuntimeError)  qfix.engine.contract: an ENGINE.md §6 invariant failed
    ├── SnapshotError (ValueError)        qfix.engine.snapshot: a snapshot file is malformed (names the field)
    ├── JournalError                      qfix.journal.files: the journal cannot be written or read; stop acknowledging
    │   ├── JournalCorruptError           qfix.journal.files: durable bytes are damaged (names file and offset)
    │   └── CheckpointError               qfix.journal.checkpoint: a checkpoint file is unreadable or damaged
    ├── EntryError (ValueError)           qfix.journal.entries: a checksummed record's payload does not fit its kind
    ├── AdminError (ValueError)           qfix.server.admin: an admin command is refused (sent back as the reply)
    ├── RequestError (ValueError)         qfix.marketdata.service: a snapshot or replay request is refused (Invalid)
    ├── CryptoError                       qfix.crypto.primitives
    │   ├── InvalidKeyError (ValueError)  qfix.crypto.primitives: a malformed or invalid key or key share
    │   ├── AuthenticationError           qfix.crypto.primitives: a tag, MAC or signature did not verify
    │   └── KeyFileError                  qfix.crypto.keys: a key file or allow-list is refused
    └── QzmqError                         qfix.qzmq.errors
        ├── qzmq.ConfigError              (drawn above: also a ConfigError)
        ├── ClientError                   qfix.client.client: cannot connect, or the connection ended
        └── LocalProtocolError            qfix.qzmq.errors: the caller used a connection wrongly
            └── ConnectionClosed          qfix.qzmq.errors: sending on a connection not established

``qfix.engine.ConfigError`` is :class:`ConfigError` itself. Foreign exceptions
(``OSError``, ``json.JSONDecodeError``, cryptography's and zmq's) are translated into
these where they first meet qfix code, once; the ``qfix`` command additionally reports
an ``OSError`` from a path the user gave as one line.

This module imports nothing from qfix, so any package can build on it.
"""

from __future__ import annotations

__all__ = ["BenchmarkError", "ConfigError", "DocumentError", "OutputPathError", "QfixError"]


class QfixError(Exception):
    """Base of every exception qfix raises on purpose; ``str()`` is the whole message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(QfixError, ValueError):
    """A configuration value is invalid; the message names the key and, where it can, the fix."""


class OutputPathError(QfixError):
    """A file the user asked qfix to write cannot be written at that path."""


class BenchmarkError(QfixError):
    """A benchmark run could not produce its figures (a check failed or a peer stalled)."""


class DocumentError(BenchmarkError):
    """A benchmark JSON document cannot be read, is not JSON, or is not shaped as one."""
