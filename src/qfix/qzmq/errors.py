"""The QZMQ branch of the qfix exception tree (drawn whole in :mod:`qfix.errors`).

Peer misbehaviour never raises out of the state machines: it becomes an event
(``Failed``, ``Closed``) or a counter. Exceptions are for local mistakes::

    QfixError
    └── QzmqError
        ├── ConfigError            bad local configuration (names the key and the fix);
        │                          also a qfix.errors.ConfigError and a ValueError
        └── LocalProtocolError     the caller used a connection wrongly
            └── ConnectionClosed   sending on a connection that is not established

Crypto failures surface as :class:`qfix.crypto.CryptoError` only from key loading;
inside the protocol they are translated, in the handshake (:mod:`qfix.qzmq._client`,
:mod:`qfix.qzmq._server`) and the record layer (:mod:`qfix.qzmq._session`), into
fail-closed events.
"""

from __future__ import annotations

from qfix import errors as _errors

__all__ = ["ConfigError", "ConnectionClosed", "LocalProtocolError", "QzmqError"]


class QzmqError(_errors.QfixError):
    """Base of every QZMQ exception."""


class ConfigError(QzmqError, _errors.ConfigError):
    """A QZMQ configuration value is invalid."""


class LocalProtocolError(QzmqError):
    """The caller asked for something the protocol state does not allow."""


class ConnectionClosed(LocalProtocolError):
    """The connection is not (or no longer) established."""
