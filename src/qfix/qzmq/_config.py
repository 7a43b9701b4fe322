"""QZMQ configuration (docs/qzmq.md §9); validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from qfix.qzmq._constants import Mode
from qfix.qzmq.errors import ConfigError

__all__ = ["COOKIE_POLICIES", "Config"]

COOKIE_POLICIES = ("always", "under-load", "never")


@dataclass(frozen=True, slots=True)
class Config:
    """Settings shared by client and server; server-only keys are ignored by clients.

    Rates are ``(tokens per second, burst)``.
    """

    mode: Mode = Mode.HYBRID
    rekey_interval: float = 600.0
    rekey_after_blocks: int = 1 << 32
    rekey_after_records: int = 1 << 30
    handshake_timeout: float = 10.0
    cookie_policy: str = "under-load"
    cookie_load_threshold: int = 64
    max_pending_per_address: int = 8
    max_pending_total: int = 1024
    hello_rate_per_address: tuple[float, float] = (5.0, 20.0)
    hello_rate_total: tuple[float, float] = (200.0, 400.0)
    hello_rate_known: tuple[float, float] = (50.0, 100.0)
    max_bad_records: int = 64
    max_sessions: int = 4096
    max_sessions_per_client: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.mode, Mode):
            raise ConfigError(f"mode: {self.mode!r} is not hybrid or pq-only")
        if self.rekey_interval < 10:
            raise ConfigError("rekey_interval: must be at least 10 s")
        if not 1 <= self.rekey_after_blocks <= 1 << 32:
            raise ConfigError("rekey_after_blocks: must be 1..2^32 (may only be lowered)")
        if not 1 <= self.rekey_after_records <= 1 << 30:
            raise ConfigError("rekey_after_records: must be 1..2^30 (may only be lowered)")
        if self.handshake_timeout <= 0:
            raise ConfigError("handshake_timeout: must be positive")
        if self.cookie_policy not in COOKIE_POLICIES:
            raise ConfigError(f"cookie_policy: {self.cookie_policy!r}; use one of {', '.join(COOKIE_POLICIES)}")
        for name in (
            "cookie_load_threshold",
            "max_pending_per_address",
            "max_pending_total",
            "max_sessions",
            "max_sessions_per_client",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.max_bad_records < 0:
            raise ConfigError("max_bad_records: must be >= 0")
        for name in ("hello_rate_per_address", "hello_rate_total", "hello_rate_known"):
            rate, burst = getattr(self, name)
            if rate <= 0 or burst < 1:
                raise ConfigError(f"{name}: rate must be > 0 and burst >= 1")

    @staticmethod
    def parse_mode(text: str) -> Mode:
        """``"hybrid"`` or ``"pq-only"`` to :class:`Mode`."""
        try:
            return {"hybrid": Mode.HYBRID, "pq-only": Mode.PQ_ONLY}[text]
        except KeyError:
            raise ConfigError(f"mode: {text!r}; use hybrid or pq-only") from None
