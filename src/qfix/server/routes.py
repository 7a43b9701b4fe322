"""The tables the compiled read (``_serve.read_frames``) finds a message's connection and
session in: which connections' frames it takes, by routing id, and every session's
accounts for stage S. Rebuilt only when a connection, a lease row or an account list
changed (each has a version counter), so a pass pays nothing for them."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from qfix.server import _pass, _serve
from qfix.server.session import OrderEntry

__all__ = ["RoutedLeases", "Routes"]

Array = npt.NDArray[Any]


class RoutedLeases(Protocol):
    """What the routes need of the QZMQ sessions (``ServerProtocol``)."""

    @property
    def lease_version(self) -> int: ...

    def lease(self, conn: int) -> int: ...

    def lease_row(self, conn: int) -> int: ...

    def routing_id(self, conn: int) -> bytes | None: ...


class Routes:
    """Which connections the compiled read takes frames of: every connection of a
    trading session (``entry.by_conn``) whose routing id has a key
    (``_serve.routing_key``). Those of ``excluded`` keys (operators: their commands take
    effect in sequence, through the Python path) have a slot that stops the read
    (``_serve.SESSION_OTHERS``). A connection whose session cannot lend its record state
    keeps a slot with ``_pass.FRAME_NOT_LEASED``: its records are left to the Python
    path in order."""

    def __init__(self, entry: OrderEntry, leases: RoutedLeases, excluded: frozenset[bytes]) -> None:
        self.entry = entry
        self.leases = leases
        self.excluded = excluded
        self._key: tuple[int, int, int] = (-1, -1, -1)
        self.keys, self.key_slots = _serve.hash_table([])
        self.slots = np.zeros((0, _serve.SLOT_COLUMNS), np.int64)
        #: per SessionID: session account and its sorted accounts' place in ``accounts``
        self.ranges = np.zeros((entry.max_sessions, _serve.RANGE_COLUMNS), np.int64)
        self.accounts = np.zeros(1, np.uint32)
        self.conns: list[int] = []  #: each slot's connection

    def refresh(self) -> None:
        """Rebuild the tables if a connection, a lease row or an account list changed."""
        entry = self.entry
        leases = self.leases
        if (entry.conns_version, leases.lease_version, entry.table.accounts_version) == self._key:
            return
        conns: list[int] = []
        keys: list[int] = []
        rows: list[tuple[int, int, int]] = []
        for conn, state in entry.by_conn.items():
            rid = leases.routing_id(conn)
            key = _serve.routing_key(rid) if rid is not None else 0
            if not key:
                continue
            conns.append(conn)
            keys.append(key)
            if state.kid in self.excluded:
                # known, so that the read stops at its frames (they take effect in sequence)
                rows.append((conn, _serve.SESSION_OTHERS, _pass.FRAME_NOT_LEASED))
                continue
            leases.lease(conn)  # refused (not yet READY): retried by relend() after its next record
            lease = leases.lease_row(conn)
            rows.append((conn, state.session_id, lease if lease >= 0 else _pass.FRAME_NOT_LEASED))
        self.keys, self.key_slots = _serve.hash_table(keys)
        self.slots = np.array(rows, np.int64).reshape(-1, _serve.SLOT_COLUMNS)
        self.conns = conns
        parts = []
        at = 0
        ranges = self.ranges
        for state in entry.by_id:
            own = state.sorted_accounts
            parts.append(own)
            sid = state.session_id
            ranges[sid, _serve.RANGE_ACCOUNT] = state.session_account if own.size else 0
            ranges[sid, _serve.RANGE_START] = at
            at += own.size
            ranges[sid, _serve.RANGE_END] = at
        self.accounts = np.concatenate([*parts, np.zeros(1, np.uint32)])
        # leasing may have given rows out: the key is read after it
        self._key = (entry.conns_version, leases.lease_version, entry.table.accounts_version)
