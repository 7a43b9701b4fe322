"""The QZMQ exception tree.

Peer misbehaviour never raises out of the state machines: it becomes an event
(``Failed``, ``Closed``) or a counter. Exceptions are for local mistakes::

    QzmqError
    ├── ConfigError            bad local configuration (names the key and the fix)
    └── LocalProtocolError     the caller used a connection wrongly
        └── ConnectionClosed   sending on a connection that is not established

Crypto failures surface as :class:`qfix.crypto.CryptoError` only from key loading;
inside the protocol they are translated, in :mod:`qfix.qzmq._handshake` and
:mod:`qfix.qzmq._record`, into fail-closed events.
"""

from __future__ import annotations

__all__ = ["ConfigError", "ConnectionClosed", "LocalProtocolError", "QzmqError"]


class QzmqError(Exception):
    """Base of every QZMQ exception."""


class ConfigError(QzmqError, ValueError):
    """A configuration value is invalid."""


class LocalProtocolError(QzmqError):
    """The caller asked for something the protocol state does not allow."""


class ConnectionClosed(LocalProtocolError):
    """The connection is not (or no longer) established."""
