"""Events the QZMQ state machines hand to the application.

On the server every event carries ``conn``, the id the server gave the session when
CLIENT_AUTH verified (``0`` on a client); the server's sessions are keyed by this id
and by the authenticated client kid, never by a routing id.
"""

from __future__ import annotations

from dataclasses import dataclass

from qfix.qzmq._constants import CloseReason, ErrorCode

__all__ = ["Closed", "Established", "Event", "Failed", "Messages", "SealedFixed"]


@dataclass(frozen=True, slots=True)
class Established:
    """The peer is authenticated; application records may flow."""

    kid: bytes  #: the peer's key id (client kid on the server, server kid on a client)
    accounts: tuple[int, ...]  #: the client's accounts (first = SessionAccount); () on a client
    channel_binding: bytes  #: Exporter("EXPORTER-Channel-Binding", "", 32)
    conn: int = 0
    #: on the server: seconds from accepting the CLIENT_HELLO to the verified CLIENT_AUTH
    #: (the handshake's cryptography and the client's round trip); 0.0 on a client
    handshake_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Messages:
    """Plaintext of one authentic DATA or DATA_FIXED record.

    ``frames`` is one frame of k x 60 bytes for DATA_FIXED (``fixed`` true), or the
    messages of a DATA record, in order.
    """

    frames: tuple[bytes, ...]
    fixed: bool
    conn: int = 0


@dataclass(frozen=True, slots=True)
class SealedFixed:
    """A DATA_FIXED record of an established session, not yet opened (only from a
    ``ServerEndpoint`` asked for them, ``sealed_fixed=True``): the caller opens it with
    the compiled record kernels on the session's leased row, or gives it to
    ``ServerProtocol.receive_sealed``, which does all that ``receive`` would have done."""

    frame: bytes | memoryview
    conn: int = 0


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended. ``authenticated`` is true only for a verified CLOSE from the
    peer; anything else may have lost records in flight (possible truncation)."""

    reason: CloseReason
    authenticated: bool
    conn: int = 0


@dataclass(frozen=True, slots=True)
class Failed:
    """The client handshake failed (MISMATCH is only a hint: ERROR is unauthenticated)."""

    code: ErrorCode
    conn: int = 0


Event = Established | Messages | SealedFixed | Closed | Failed
