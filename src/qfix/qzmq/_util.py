"""Small shared helpers: copyable state objects (for tests and fuzzing)."""

from __future__ import annotations

import copy
from typing import Any

from qfix.crypto import primitives as _p
from qfix.crypto.keys import AllowEntry, AllowList, SigningKey, VerifyKey

__all__ = ["Copyable"]

#: immutable objects (or Rust-backed key objects that cannot be pickled) that a copy shares
_SHARED: tuple[type, ...] = (_p.Aes256Gcm, SigningKey, VerifyKey, AllowList, AllowEntry)


def _share(value: Any) -> bool:
    return isinstance(value, _SHARED) or type(value).__module__.startswith("cryptography")


class Copyable:
    """``copy.deepcopy`` support for slotted protocol state holding key objects.

    `cryptography` key objects cannot be pickled or deep-copied; they are immutable, so
    a copy shares them. This lets a test take a snapshot of a state machine before a
    message and replay many mutations of it, each costing one processing step.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        cls = type(self)
        new = object.__new__(cls)
        memo[id(self)] = new
        for klass in cls.__mro__:
            for name in getattr(klass, "__slots__", ()):
                if not hasattr(self, name):
                    continue
                value = getattr(self, name)
                object.__setattr__(new, name, value if _share(value) else copy.deepcopy(value, memo))
        return new
