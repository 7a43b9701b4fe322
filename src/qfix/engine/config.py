"""Engine configuration shared by every engine implementation (ENGINE.md §1.1, §4).

Plain frozen dataclasses validated at construction, so a bad instrument table fails
fast with the key that is wrong. The fast engine packs these into arrays; the reference
engine reads them directly. Both consume exactly these types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from qfix.errors import ConfigError as ConfigError  # re-exported: qfix.engine.config.ConfigError
from qfix.wire import codes

# Phase codes (ENGINE.md §1.1; used in the state hash)
PHASE_CLOSED: Final = 0
PHASE_PRE_OPEN: Final = 1
PHASE_CONTINUOUS: Final = 2
PHASE_PRE_CLOSE: Final = 3
PHASE_HALTED: Final = 4
PHASES: Final = (PHASE_CLOSED, PHASE_PRE_OPEN, PHASE_CONTINUOUS, PHASE_PRE_CLOSE, PHASE_HALTED)

BAND_TICKS: Final = 0  #: band width W in ticks
BAND_BPS: Final = 1  #: band width in basis points of |Ref|: W = max(1, |Ref| * width // 10000)

ALLOCATION_TIME: Final = 0
ALLOCATION_PRO_RATA: Final = 1
#: EngineConfig.auction_backend values (``qfix.engine.backends.NAMES`` plus auto)
AUCTION_BACKENDS: Final = ("auto", "cpu", "cupy", "mlx")

_INT64_MAX: Final = 2**63 - 1
#: longest symbol: SecurityDefinition's Symbol is char[16] (docs/wire.md)
_SYMBOL_MAX: Final = 16
_STP_MODES: Final = (
    codes.SMP_CANCEL_AGGRESSIVE,
    codes.SMP_CANCEL_PASSIVE,
    codes.SMP_CANCEL_BOTH,
    codes.SMP_DECREMENT,
)


@dataclass(frozen=True)
class InstrumentConfig:
    """One instrument's reference data (ENGINE.md §1.1). Prices are ticks, sizes lots."""

    security_id: int
    symbol: str
    tick_size_p9: int
    ref: int
    band_width: int
    band_kind: int = BAND_TICKS
    lot_size: int = 1
    max_order_qty: int = 2**32 - 2
    max_notional: int = _INT64_MAX
    collar: int = 1_000
    phase: int = PHASE_CONTINUOUS
    default_stp: int = codes.SMP_CANCEL_PASSIVE
    fba_interval_ns: int | None = None
    allocation: int = ALLOCATION_TIME

    def __post_init__(self) -> None:
        where = f"instrument {self.security_id} ({self.symbol!r})"
        if not 1 <= self.security_id <= 2**32 - 2:
            raise ConfigError(f"{where}: security_id must be in 1..2^32-2")
        if not (
            isinstance(self.symbol, str)
            and 1 <= len(self.symbol) <= _SYMBOL_MAX
            and all(" " <= ch <= "~" for ch in self.symbol)
        ):
            raise ConfigError(
                f"{where}: symbol must be 1..{_SYMBOL_MAX} printable ASCII characters "
                f"(it is SecurityDefinition's char[{_SYMBOL_MAX}] Symbol)"
            )
        if self.tick_size_p9 <= 0:
            raise ConfigError(f"{where}: tick_size_p9 must be > 0")
        if self.lot_size <= 0:
            raise ConfigError(f"{where}: lot_size must be > 0")
        if self.lot_size > 2**32 - 1:
            raise ConfigError(f"{where}: lot_size must be <= 2^32-1 (it is SecurityDefinition's u32 RoundLot)")
        if not 1 <= self.max_order_qty <= 2**32 - 2:
            raise ConfigError(f"{where}: max_order_qty must be in 1..2^32-2")
        if not 0 < self.max_notional <= _INT64_MAX:
            raise ConfigError(f"{where}: max_notional must be in 1..2^63-1")
        if self.band_kind not in (BAND_TICKS, BAND_BPS) or self.band_width < 0:
            raise ConfigError(f"{where}: band_kind must be ticks or bps with band_width >= 0")
        if self.collar < 0:
            raise ConfigError(f"{where}: collar must be >= 0")
        if self.phase not in PHASES:
            raise ConfigError(f"{where}: phase must be one of {PHASES}")
        if self.default_stp not in _STP_MODES:
            raise ConfigError(f"{where}: default_stp must be one of {_STP_MODES}")
        if self.fba_interval_ns is not None and self.fba_interval_ns < 0:
            raise ConfigError(f"{where}: fba_interval_ns must be null or >= 0")
        if self.allocation not in (ALLOCATION_TIME, ALLOCATION_PRO_RATA):
            raise ConfigError(f"{where}: allocation must be time or pro-rata")
        check_band(self, self.ref)

    def band(self, ref: int) -> tuple[int, int]:
        """Inclusive [low, high] limit prices in ticks for reference price ``ref``."""
        width = self.band_width if self.band_kind == BAND_TICKS else max(1, abs(ref) * self.band_width // 10_000)
        return ref - width, ref + width


def check_band(instrument: InstrumentConfig, ref: int) -> None:
    """Raise ConfigError if the band around ``ref`` leaves int64 or hits PRICE9 null."""
    low, high = instrument.band(ref)
    for edge in (low, high):
        p9 = edge * instrument.tick_size_p9
        if not -(2**63) <= p9 <= _INT64_MAX or p9 == codes.NULL_PRICE:
            raise ConfigError(
                f"instrument {instrument.security_id}: band edge {edge} ticks x tick_size_p9 "
                f"{instrument.tick_size_p9} does not fit PRICE9; lower ref or band_width"
            )


@dataclass(frozen=True)
class EngineConfig:
    """Capacity and behaviour switches (ENGINE.md §4, §5)."""

    max_orders: int = 2**22
    max_levels: int = 2**20
    max_instruments: int = 2**14
    max_sessions: int = 2**16
    #: Account -> STP group; accounts not listed are their own group (ENGINE.md §1.2)
    stp_groups: Mapping[int, int] = field(default_factory=dict)
    #: compute the per-batch event-stream hash chain (tests, replay; off on hot paths)
    event_hash: bool = False
    #: resting orders the index tables are sized for at the start. They double (rehashing
    #: every entry in one go, which stalls the record that triggers it) whenever the book
    #: outgrows them; a server that expects a large book sizes them once instead. 0 = the
    #: smallest tables, which keep a small book's lookups in cache.
    reserve_orders: int = 0
    #: where uncrosses determine their clearing prices (``qfix.engine.backends``): auto, cpu,
    #: cupy or mlx; every backend gives the same prices, auto stays on the CPU for few
    #: instruments, and a named backend that cannot run raises when an uncross needs it
    auction_backend: str = "auto"

    def __post_init__(self) -> None:
        for key in ("max_orders", "max_levels", "max_instruments", "max_sessions"):
            value = getattr(self, key)
            if not 1 <= value <= 2**31 - 1:
                raise ConfigError(f"EngineConfig.{key} must be in 1..2^31-1, got {value}")
        if self.auction_backend not in AUCTION_BACKENDS:
            raise ConfigError(
                f"EngineConfig.auction_backend must be one of {', '.join(AUCTION_BACKENDS)}, "
                f"got {self.auction_backend!r}"
            )
        if not 0 <= self.reserve_orders <= self.max_orders:
            raise ConfigError(
                f"EngineConfig.reserve_orders must be in 0..max_orders={self.max_orders}, got {self.reserve_orders}"
            )

    def stp_group(self, account: int) -> int:
        return self.stp_groups.get(account, account)


def worst_case_records(instruments: Sequence[InstrumentConfig], config: EngineConfig) -> int:
    """The largest bound U (ENGINE.md §2.4) any single inbound record or command can
    demand under this configuration: an output buffer of this many records never makes a
    call stop with OUTPUT_FULL before its first record.

    Uses exactly ``max(i.max_order_qty for i in instruments)`` as MaxOrderQty,
    ``config.max_orders`` as MaxOrders and ``len(instruments)``; the value is

        max(16 + 8 * (MaxOrderQty + MaxOrders),       # template 1 or 3
            16 + 8 * MaxOrders + 2 * len(instruments),  # set_phase / auction_tick on all
            16 + len(instruments),                      # publish_indicative
            16 + 4 * MaxOrders)                         # mass cancel, COD, expiry

    The first term is the one §2.4 names; the second only exceeds it when there are more
    than 4 x MaxOrderQty instruments. A template 1/3 record counts at most MaxOrderQty lots
    (a larger OrderQty is rejected QtyOverMax, which counts nothing) and at most MaxOrders
    live orders.
    """
    max_qty = max((i.max_order_qty for i in instruments), default=0)
    n = len(instruments)
    return max(
        16 + 8 * (max_qty + config.max_orders),
        16 + 8 * config.max_orders + 2 * n,
        16 + n,
        16 + 4 * config.max_orders,
    )
