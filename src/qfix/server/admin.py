"""The admin protocol: JSON commands from authenticated admin keys (sans-I/O parsing).

Theory of operation: an admin client is an ordinary QZMQ client whose key id is listed
in ``keys.admin_kids``. Order entry travels in DATA_FIXED records; an admin command is
one UTF-8 JSON object in a DATA record (``{"op": "halt", "security_ids": [1]}``), and the
reply is one JSON object in a DATA record (``{"ok": true, ...}`` or ``{"ok": false,
"error": "..."}``). :func:`parse_command` validates a command completely before the
server acts on it, so a malformed one changes nothing and gets a specific error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from qfix.engine.config import PHASE_CLOSED, PHASE_CONTINUOUS, PHASE_HALTED, PHASE_PRE_CLOSE, PHASE_PRE_OPEN
from qfix.errors import QfixError

__all__ = ["OPS", "PHASES", "AdminCommand", "AdminError", "encode_reply", "parse_command"]

PHASES: Final = {
    "closed": PHASE_CLOSED,
    "pre-open": PHASE_PRE_OPEN,
    "continuous": PHASE_CONTINUOUS,
    "pre-close": PHASE_PRE_CLOSE,
    "halted": PHASE_HALTED,
}
#: op -> the argument it needs (None: no argument)
OPS: Final = {
    "halt": "security_ids",
    "resume": "security_ids",
    "phase": "security_ids",
    "kill": "accounts",
    "unblock": "accounts",
    "reload": None,
    "end-of-day": None,
    "status": None,
}
_MAX_COMMAND: Final = 64 * 1024
_U32_NULL: Final = 0xFFFF_FFFF


class AdminError(QfixError, ValueError):
    """A command is malformed; the message says which part (sent back, never raised out)."""


@dataclass(frozen=True, slots=True)
class AdminCommand:
    op: str
    security_ids: tuple[int, ...] = ()
    accounts: tuple[int, ...] = ()
    phase: int = -1


def _ids(doc: dict[str, Any], key: str) -> tuple[int, ...]:
    value = doc.get(key)
    if not isinstance(value, list) or not value:
        raise AdminError(f"{key}: give a non-empty list of integers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < _U32_NULL:
            raise AdminError(f"{key}: {v!r} is not an integer in 0..4294967294")
    return tuple(sorted(set(value)))


def parse_command(data: bytes) -> AdminCommand:
    """Validate one command; raises AdminError naming what is wrong."""
    if len(data) > _MAX_COMMAND:
        raise AdminError(f"command over {_MAX_COMMAND} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdminError(f"not a UTF-8 JSON object: {exc}") from None
    if not isinstance(doc, dict):
        raise AdminError("not a JSON object")
    op = doc.get("op")
    if op not in OPS:
        raise AdminError(f"op: {op!r}; use one of {', '.join(OPS)}")
    allowed = {"op", *(k for k in (OPS[op],) if k), *(("phase",) if op == "phase" else ())}
    if extra := sorted(set(doc) - allowed):
        raise AdminError(f"unknown key(s) for {op}: {', '.join(extra)}")
    arg = OPS[op]
    if arg == "security_ids":
        phase = -1
        if op == "phase":
            name = doc.get("phase")
            if name not in PHASES:
                raise AdminError(f"phase: {name!r}; use one of {', '.join(PHASES)}")
            phase = PHASES[name]
        return AdminCommand(op, security_ids=_ids(doc, arg), phase=phase)
    if arg == "accounts":
        return AdminCommand(op, accounts=_ids(doc, arg))
    return AdminCommand(op)


def encode_reply(ok: bool, **fields: Any) -> bytes:
    return json.dumps({"ok": ok, **fields}, sort_keys=True).encode("utf-8")
