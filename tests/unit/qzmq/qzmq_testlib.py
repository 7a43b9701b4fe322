"""Helpers shared by the QZMQ tests: fixed keys, client/server pairs, a frame pump."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from qfix.crypto import AllowEntry, AllowList, SignatureAlg, SigningKey
from qfix.qzmq import (
    ClientConnection,
    ClientState,
    Config,
    Established,
    Event,
    Mode,
    ServerProtocol,
)

PEER = "192.0.2.7"
RID = b"\x00\x80\x00\x00\x29"


def fixed_key(alg: SignatureAlg, n: int) -> SigningKey:
    """A deterministic key (seed = n repeated): keygen from seed is cheap and stable."""
    return SigningKey.from_seed(alg, bytes([n]) * 32)


SERVER_KEY = fixed_key(SignatureAlg.ML_DSA_65, 1)
CLIENT_KEYS = {alg: fixed_key(alg, 10 + alg) for alg in SignatureAlg}
ACCOUNTS = (1001, 1002)


def allow_list(*keys: SigningKey, accounts: tuple[int, ...] = ACCOUNTS) -> AllowList:
    return AllowList([AllowEntry(k.verify_key(), accounts) for k in keys])


DEFAULT_ALLOW = allow_list(*CLIENT_KEYS.values())


def config(**kw: object) -> Config:
    kw.setdefault("cookie_policy", "never")
    return Config(**kw)  # type: ignore[arg-type]


def make_server(
    cfg: Config | None = None,
    *,
    allow: AllowList | None = None,
    now: float = 0.0,
    keys: tuple[SigningKey, ...] = (SERVER_KEY,),
) -> ServerProtocol:
    return ServerProtocol(list(keys), allow or DEFAULT_ALLOW, cfg or config(), now=now)


def make_client(
    cfg: Config | None = None,
    *,
    alg: SignatureAlg = SignatureAlg.ML_DSA_65,
    key: SigningKey | None = None,
    server: SigningKey = SERVER_KEY,
) -> ClientConnection:
    return ClientConnection(key or CLIENT_KEYS[alg], server.verify_key(), cfg or config())


@dataclass
class Link:
    """A client and a server joined by an in-memory, in-order frame path."""

    server: ServerProtocol
    client: ClientConnection
    rid: bytes = RID
    peer: str = PEER
    now: float = 0.0
    server_events: list[Event] = field(default_factory=list)
    client_events: list[Event] = field(default_factory=list)
    wire: list[tuple[str, bytes]] = field(default_factory=list)
    #: frames the server addressed to other routing ids while this link pumped
    stray: list[tuple[bytes, bytes]] = field(default_factory=list)

    def to_server(self) -> list[bytes]:
        return self.client.data_to_send()

    def to_client(self) -> list[bytes]:
        out = []
        for rid, f in self.server.data_to_send():
            (out if rid == self.rid else self.stray).append(f if rid == self.rid else (rid, f))
        return out

    def pump(self, rounds: int = 20) -> tuple[list[Event], list[Event]]:
        """Deliver frames both ways until nothing moves; return the new events."""
        se: list[Event] = []
        ce: list[Event] = []
        for _ in range(rounds):
            moved = False
            for f in self.to_server():
                moved = True
                self.wire.append(("c2s", f))
                se += self.server.receive(self.rid, f, self.now, self.peer)
            for f in self.to_client():
                moved = True
                self.wire.append(("s2c", f))
                ce += self.client.receive(f, self.now)
            if not moved:
                break
        self.server_events += se
        self.client_events += ce
        return se, ce


def establish(
    mode: Mode = Mode.HYBRID,
    alg: SignatureAlg = SignatureAlg.ML_DSA_65,
    cfg: Config | None = None,
    server: ServerProtocol | None = None,
    rid: bytes = RID,
    peer: str = PEER,
    now: float = 0.0,
) -> tuple[Link, int]:
    cfg = cfg or config(mode=mode)
    link = Link(server or make_server(cfg, now=now), make_client(cfg, alg=alg), rid, peer, now)
    link.client.connect(now)
    se, ce = link.pump()
    assert link.client.state is ClientState.ESTABLISHED, (se, ce)
    est = [e for e in se if isinstance(e, Established)]
    assert len(est) == 1
    return link, est[0].conn


_counter = itertools.count(1)


def fresh_rid() -> bytes:
    return b"\x00" + next(_counter).to_bytes(4, "big")
