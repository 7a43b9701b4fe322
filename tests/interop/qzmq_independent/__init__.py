"""Independent, minimal QZMQ v1 implementation for interop tests (QZMQ.md §10.3).

Written from /work/shared/design/QZMQ.md alone, on ``cryptography`` (>= 47), hashlib
and hmac; it imports nothing from ``qfix``.  Sans-I/O: objects take frames (bytes)
and return frames; there are no sockets and no clocks (``now`` is an argument, in
seconds, default 0).  Byte-exact to the spec, but minimal: no rate limits, token
buckets, pending caps, known nets, handshake timeouts, re-key timers/rate limits
(§5.2 "Timing"), key files or multi-routing-id management.

Importing
---------
Tests run as ``cd /work/main && .venv/bin/python -m pytest`` in pytest's default
``prepend`` import mode.  ``tests/`` has a ``conftest.py`` and no ``__init__.py``, so
pytest puts ``tests/`` on ``sys.path`` and ``tests/interop`` is the top-level package
``interop`` (checked with pytest 9.2):

* from a test module inside ``tests/interop/`` (recommended place for the interop
  test): ``from .qzmq_independent import Client, Server`` -- works in every import
  mode (also ``--import-mode=importlib``) and if ``tests/__init__.py`` is ever added;
* from any other test module: ``from interop.qzmq_independent import Client, Server``.
* Avoid ``from tests.interop.qzmq_independent import ...``: it only resolves under
  ``python -m pytest`` (cwd on ``sys.path``), not under a bare ``pytest``, and loads a
  second copy of the modules next to ``interop.qzmq_independent``.

Constants (all ints)
--------------------
``HYBRID = 1``, ``PQ_ONLY = 2``, ``SUITE = 0x0001``;
``ALG_ML_DSA_44 = 1``, ``ALG_ML_DSA_65 = 2``, ``ALG_ML_DSA_87 = 3``;
``ERR_MISMATCH = 1``, ``ERR_FAILED = 2``;
record types ``R_DATA = 0x10``, ``R_READY = 0x11``, ``R_KEY_UPDATE = 0x12``,
``R_REKEY_INIT = 0x13``, ``R_REKEY_RESP = 0x14``, ``R_REKEY_DONE = 0x15``,
``R_DATA_FIXED = 0x16``, ``R_CLOSE = 0x17``; ``CLOSE_NORMAL = 0`` .. ``CLOSE_USAGE_LIMIT = 4``.

Keys are passed as objects or raw bytes: a private key is a ``cryptography`` ML-DSA
private key object or its 32-byte FIPS 204 seed ξ; a public key is a ``cryptography``
ML-DSA public key object or its raw FIPS 204 bytes (``public_bytes_raw()``).

class Client(*, mode, server_public_key, client_alg, client_key, client_random=None,
             mlkem_seed=None, x25519_private=None, rekey_after_records=2**30,
             rekey_after_blocks=2**32, max_bad_records=64)
    One connection attempt.  ``server_public_key``: the pinned ML-DSA-65 key.
    ``client_alg``: 1/2/3; ``client_key``: private key of that alg (object or seed).
    Optional fixed inputs for reproducible runs: ``client_random`` (32 B),
    ``mlkem_seed`` (64 B ``d ‖ z``), ``x25519_private`` (32 B, HYBRID only).
    ``rekey_after_*``: send-side KEY_UPDATE thresholds (§5.1; may only be lowered).

    hello() -> bytes                 CLIENT_HELLO without cookie (START → WAIT_SH).
    receive(frame, now=0.0) -> Output
        WAIT_SH: HELLO_RETRY → Output.frames == [CLIENT_HELLO with cookie];
                 SERVER_HELLO → frames == [CLIENT_AUTH], state WAIT_READY;
                 ERROR 01 (version 01) → failed == 1; anything else → failed == 2
                 (frames == [ERROR 02] unless the input was an ERROR).
        WAIT_READY: the READY record → events == ["ESTABLISHED"], state ESTABLISHED;
                 anything else → failed == 2, nothing sent.
        ESTABLISHED: records, as Session.receive.
    state: "START" | "WAIT_SH" | "WAIT_READY" | "ESTABLISHED" | "FAILED" | "CLOSED"
    established: bool;  failure: int | None (1 / 2);  hello_retries: int
    session: Session | None          set once SERVER_HELLO verified (WAIT_READY on).
    client_kid, client_pk_raw, server_pk_raw: bytes
    handshake_secrets: dict          "HS", "c_hs", "s_hs", "TH_f", "c_ap", "s_ap",
                                     "exp", "chain", "th_rk" (for KAT cross-checks).

class Server(*, mode, server_key, clients, cookie_policy="never", cookie_key=None,
             previous_cookie_key=None, peer="", routing_id=b"", server_random=None,
             x25519_private=None, rekey_after_records=2**30, rekey_after_blocks=2**32,
             max_bad_records=64)
    Server state for ONE routing id.  ``server_key``: ML-DSA-65 private key (object or
    seed).  ``clients``: iterable of ``(alg, public_key)``, the allow-list (kid is
    computed).  ``cookie_policy``: "never" or "always" (HELLO_RETRY for every hello
    without a cookie).  ``cookie_key``/``previous_cookie_key``: the current and the
    previous 32-byte cookie key K (current random if None).  ``peer``: the
    Peer-Address text and ``routing_id``: the routing id bytes, both bound into
    cookies.  ``server_random`` (32 B) and ``x25519_private`` (32 B) fix the
    server's randomness for reproducible runs (ML-KEM encapsulation stays random).

    receive(frame, now=0.0) -> Output
        First byte 0x51 → handshake (§3.4): CLIENT_HELLO → frames == [SERVER_HELLO]
        (events ["SERVER_HELLO"]), [HELLO_RETRY] (["HELLO_RETRY"]) or [ERROR]
        (["ERROR"]); CLIENT_AUTH → [READY record] (["ESTABLISHED"]) or [ERROR 02].
        Other first byte → the session's Session.receive, or dropped (["DROPPED"]).
        ``now`` is the monotonic clock in seconds; cookies use int(now) mod 2**32.
    rotate_cookie_key(new_key=None)  current K becomes the previous one.
    state: "NONE" | "WAIT_CA" | "ESTABLISHED" | "CLOSED";  established: bool
    session: Session | None;  dropped: int;  used_cookies: set[bytes]
    server_kid, server_pk_raw: bytes;  handshake_secrets: dict (as Client's)

class Session   (client.session / server.session; never built directly)
    send_data(msgs: Sequence[bytes]) -> list[bytes]      one DATA record
    send_fixed(msgs: bytes | Sequence[bytes]) -> list[bytes]
                                     one DATA_FIXED record of 1..1091 60-byte messages
    send_key_update() -> list[bytes] KEY_UPDATE, then ratchet the send secret
    start_rekey(*, mlkem_seed=None, x25519_private=None) -> list[bytes]
                                     client only: REKEY_INIT (IDLE → WAIT_RESP)
    request_rekey() -> list[bytes]   server only: the empty REKEY_INIT request
    close(reason=0) -> list[bytes]   CLOSE(reason); the session is then closed
    receive(record, now=0.0) -> Output   the §4 receive procedure (prefer calling
                                     Client.receive / Server.receive)
    exporter(label: bytes | str, context: bytes, length: int) -> bytes
    channel_binding: bytes           Exporter("EXPORTER-Channel-Binding", "", 32)
    Every send method returns the list of frames to transmit in order: when a usage
    threshold is reached it is [KEY_UPDATE, record] (§5.1).  Re-key replies are
    automatic: the server answers REKEY_INIT with REKEY_RESP, the client answers
    REKEY_RESP with REKEY_DONE and a server request with REKEY_INIT (in Output.frames).
    Introspection: state ("WAIT_READY" | "ESTABLISHED" | "CLOSED"), closed,
    rekey_state ("IDLE" | "WAIT_RESP" | "WAIT_DONE"), rekey_requested,
    rekeys_completed, send_epoch, recv_epoch, send_seq, recv_next, send_secret,
    recv_secret, duplicates, bad_records, peer_kid, peer_alg, sealed_nonces
    (list of (key, nonce) sealed), rekey_after_records / rekey_after_blocks (settable).

class Output (dataclass), returned by every receive():
    frames: list[bytes]              to send to the peer, in order
    messages: list[bytes]            delivered application messages (DATA: each
                                     u16-framed message; DATA_FIXED: each 60 B)
    payloads: list[tuple[int, bytes]]  (record type, plaintext) per delivered record
    events: list[str]                "HELLO_RETRY", "SERVER_HELLO", "ERROR",
                                     "ESTABLISHED", "DATA", "DATA_FIXED", "KEY_UPDATE",
                                     "REKEY_REQUEST" (client got a request),
                                     "REKEY_INIT" (server answered one), "REKEYED" (new
                                     keys installed on this side), "CLOSED", "FAILED",
                                     "DUPLICATE", "BAD_RECORD", "DROPPED"
    failed: int | None               Failed(MISMATCH=1 | FAILED=2) during the handshake
    closed: tuple[int, bool] | None  Closed(reason, authenticated): authenticated is
                                     True only for a verified CLOSE from the peer; on a
                                     fatal error (reason 1 or 4) frames holds our CLOSE.

Module ``schedule`` (``from .qzmq_independent import schedule``): pure functions of
the key schedule, for KAT cross-checks: ``H``, ``hmac384``, ``extract``, ``expand``,
``expand_label(S, label, ctx, L)`` (EL), ``derive_secret(S, label, th)`` (D),
``traffic_keys(S) -> (key, iv)``, ``salt0(mode)``, ``handshake_secret(mode, ikm)``,
``master_secret(hs)``, ``item(tag, data)``, ``transcript_hash([(tag, data), ...])``,
``finished_mac(hs_secret, th)``, ``application_secrets(hs, th_f) -> dict``,
``next_traffic_secret(S)``, ``record_nonce(iv, seq)``,
``rekey_derive(chain, th_rk, init_pt, resp_pt, ikm) -> dict``,
``exporter(exp, label, context, L)``, ``channel_binding(exp)``,
``make_cookie(K, ts, peer, routing_id, body)``, ``kid(pk_raw)``.

Example::

    c = Client(mode=HYBRID, server_public_key=spk, client_alg=ALG_ML_DSA_44, client_key=seed44)
    s = Server(mode=HYBRID, server_key=seed65, clients=[(ALG_ML_DSA_44, pk44)])
    sh = s.receive(c.hello()).frames[0]          # SERVER_HELLO
    auth = c.receive(sh).frames[0]               # CLIENT_AUTH
    ready = s.receive(auth).frames[0]            # READY
    assert c.receive(ready).events == ["ESTABLISHED"]
    for f in c.session.send_data([b"hello"]):
        print(s.receive(f).messages)             # [b'hello']
"""

from . import schedule
from .endpoints import Client, Server, error_frame
from .schedule import (
    ALG_ML_DSA_44,
    ALG_ML_DSA_65,
    ALG_ML_DSA_87,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_REKEY_OVERDUE,
    CLOSE_SUPERSEDED,
    CLOSE_USAGE_LIMIT,
    ERR_FAILED,
    ERR_MISMATCH,
    HYBRID,
    PQ_ONLY,
    R_CLOSE,
    R_DATA,
    R_DATA_FIXED,
    R_KEY_UPDATE,
    R_READY,
    R_REKEY_DONE,
    R_REKEY_INIT,
    R_REKEY_RESP,
    SUITE,
)
from .session import Output, ProtocolUsageError, Session

__all__ = [
    "ALG_ML_DSA_44",
    "ALG_ML_DSA_65",
    "ALG_ML_DSA_87",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_REKEY_OVERDUE",
    "CLOSE_SUPERSEDED",
    "CLOSE_USAGE_LIMIT",
    "ERR_FAILED",
    "ERR_MISMATCH",
    "HYBRID",
    "PQ_ONLY",
    "R_CLOSE",
    "R_DATA",
    "R_DATA_FIXED",
    "R_KEY_UPDATE",
    "R_READY",
    "R_REKEY_DONE",
    "R_REKEY_INIT",
    "R_REKEY_RESP",
    "SUITE",
    "Client",
    "Output",
    "ProtocolUsageError",
    "Server",
    "Session",
    "error_frame",
    "schedule",
]
