"""Server configuration: one TOML file, validated before anything starts.

Theory of operation: :func:`load_config` parses the file with :mod:`tomllib`, walks it
with a small reader that remembers where it is (``server.batch``, ``instrument[2].tick``)
and builds frozen dataclasses. Every refusal raises :class:`ServerConfigError` whose
message names the key and says what to do, so a bad file fails before a socket is
bound. Command-line flags are applied afterwards with :func:`with_overrides`; they win
over the file. Relative paths are resolved against the file's directory.

Prices in the file are decimals (``tick = "0.01"``, ``ref = "65000.00"``) converted
exactly to PRICE9 and ticks; the engine only ever sees integers.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from qfix.crypto.keys import AllowList, KeyFileError, SigningKey, load_allow_list, load_private_key
from qfix.crypto.primitives import SignatureAlg
from qfix.engine import backends
from qfix.engine.config import (
    ALLOCATION_PRO_RATA,
    ALLOCATION_TIME,
    AUCTION_BACKENDS,
    BAND_BPS,
    BAND_TICKS,
    PHASE_CLOSED,
    PHASE_CONTINUOUS,
    PHASE_HALTED,
    PHASE_PRE_CLOSE,
    PHASE_PRE_OPEN,
    EngineConfig,
    InstrumentConfig,
    worst_case_records,
)
from qfix.engine.config import ConfigError as _EngineConfigError
from qfix.errors import ConfigError
from qfix.marketdata import feeds
from qfix.marketdata.publisher import Retention
from qfix.qzmq import Config as QzmqConfig
from qfix.qzmq import ConfigError as _QzmqConfigError
from qfix.qzmq import Mode
from qfix.wire import codes
from qfix.wire.message import price_to_p9

__all__ = [
    "DEFAULT_FIX_PORT",
    "DEFAULT_MD_PORT",
    "DEFAULT_MD_SNAPSHOT_PORT",
    "ScheduledPhase",
    "ServerConfig",
    "ServerConfigError",
    "end_of_day_offset_ns",
    "load_config",
    "load_keys",
    "parse_config",
    "with_overrides",
]

DEFAULT_FIX_PORT: Final = 5555
DEFAULT_MD_PORT: Final = 5556
DEFAULT_MD_SNAPSHOT_PORT: Final = 5557
DEFAULT_HOST: Final = "127.0.0.1"
OUTPUT_RECORD_BYTES: Final = 64  #: wire.schema.OUTPUT itemsize
#: what one queued reply packet costs beyond its records (its Packet object and array
#: header; measured at about 240 bytes)
REPLY_PACKET_OVERHEAD_BYTES: Final = 256

_PHASES: Final = {
    "closed": PHASE_CLOSED,
    "pre-open": PHASE_PRE_OPEN,
    "continuous": PHASE_CONTINUOUS,
    "pre-close": PHASE_PRE_CLOSE,
    "halted": PHASE_HALTED,
}
_STP: Final = {
    "cancel-aggressive": codes.SMP_CANCEL_AGGRESSIVE,
    "cancel-passive": codes.SMP_CANCEL_PASSIVE,
    "cancel-both": codes.SMP_CANCEL_BOTH,
    "decrement": codes.SMP_DECREMENT,
}
_ALLOCATION: Final = {"time": ALLOCATION_TIME, "pro-rata": ALLOCATION_PRO_RATA}
_DURABILITY: Final = ("fsync", "batch-async", "none")  #: qfix.journal.DURABILITY_MODES
#: ZeroMQ high-water marks (an int socket option). 0 would mean no limit at all in
#: libzmq, memory without bound behind a slow peer, so the least a file may give is 1.
_MIN_HWM: Final = 1
_MAX_HWM: Final = 2**31 - 1
#: what to do about a refused ``keys.server_key`` (after the loader's reason)
_SERVER_KEY_FIX: Final = "fix the path, or create the key with `qfix keygen --role server --out {path}`"
#: ... and about a refused ``keys.allow_list``
_ALLOW_LIST_FIX: Final = (
    "fix the path or the file; `qfix keygen --role client --account N` prints a [[client]] entry to paste"
)


@dataclass(frozen=True)
class ScheduledPhase:
    """A phase change the server makes every day at ``at`` (UTC "HH:MM") for the given
    instruments (empty: every instrument), like an operator's ``qfix admin phase``."""

    at: str
    phase: int
    security_ids: tuple[int, ...] = ()


class ServerConfigError(ConfigError):
    """The server configuration is refused; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``qfix server`` needs; see docs/server.md for each key."""

    #: instruments the server owns (others are rejected as UnknownInstrument)
    instruments: tuple[InstrumentConfig, ...]
    #: ML-DSA-65 private key file of the server
    key_file: Path
    #: allow-list file: client kid -> accounts
    allow_list_file: Path
    #: kids (hex) whose sessions may send admin commands
    admin_kids: tuple[str, ...] = ()
    host: str = DEFAULT_HOST
    fix_port: int = DEFAULT_FIX_PORT
    md_port: int = DEFAULT_MD_PORT
    #: publish market data on ``md_port`` and serve snapshots (false: records are counted only)
    md_enabled: bool = True
    #: port of the snapshot and replay service (ROUTER)
    md_snapshot_port: int = DEFAULT_MD_SNAPSHOT_PORT
    #: seconds a feed may be silent before it gets a ChannelHeartbeat
    md_heartbeat_interval: float = 1.0
    #: high-water mark (packets) of the PUB socket: a subscriber that falls further behind loses packets
    md_sndhwm: int = 1_000_000
    #: sequenced records kept per feed for replay
    md_retention: int = 1_000_000
    #: the most records one replay reply carries
    md_replay_max_records: int = 100_000
    #: requests waiting beyond those served in one loop pass that are answered Busy
    md_max_queued_requests: int = 64
    #: snapshot ROUTER high-water mark per requester (packets of up to 65 KB each)
    md_reply_sndhwm: int = 16
    #: snapshot or replay replies streamed at once; a request beyond them is answered Busy
    md_max_replies_in_flight: int = 8
    #: seconds a requester's pipe may stay full (it is not reading) before its reply is dropped
    md_reply_timeout: float = 10.0
    #: the most of the loop's time that snapshots of every instrument may take: after one
    #: took t seconds the next waits until t / share has passed since it began (requests
    #: meanwhile are answered Busy)
    md_snapshot_share: float = 0.1
    #: most inbound messages handed to one engine call
    batch: int = 10_000
    #: longest the loop waits for more input before running a non-empty batch (us)
    latency_budget_us: int = 200
    #: how long the idle loop keeps polling before it sleeps (us; 0 = sleep at once)
    idle_spin_us: int = 0
    #: run plain order frames through the compiled record path (``qfix.server.record_path``)
    compiled_path: bool = True
    #: let the record path read its records off the socket and send the reports itself
    compiled_sockets: bool = True
    #: seconds between status lines (0 = off)
    status_interval: float = 1.0
    #: Prometheus endpoint port on 127.0.0.1 (0 = off)
    metrics_port: int = 0
    #: cancel a session's resting orders when its last connection ends (every session's default)
    cancel_on_disconnect: bool = True
    #: per-session exceptions to ``cancel_on_disconnect``: (client kid in hex, on/off) pairs
    cancel_on_disconnect_by_kid: tuple[tuple[str, bool], ...] = ()
    #: seconds of silence after which the server sends a Heartbeat
    heartbeat_interval: float = 1.0
    #: per-session message rate limit: (messages per second, burst)
    throttle: tuple[float, float] = (2_000_000.0, 4_000_000.0)
    #: BusinessMessageRejects tolerated per session per 10 s before it is closed
    max_rejects: int = 10_000
    #: ZeroMQ high-water marks (messages) of the order-entry socket
    sndhwm: int = 10_000
    rcvhwm: int = 10_000
    #: sequenced reports kept per session for RetransmitRequest
    retransmit_keep: int = 200_000
    #: ceiling for the server's large buffers (engine state, output buffer), MiB
    memory_limit_mib: int = 8192
    #: journal directory (None: no journal at all, only with durability "none"; tests and benchmarks)
    journal_dir: Path | None = None
    #: "fsync" (reports leave only after their input is on disk), "batch-async" or "none"
    durability: str = "none"
    #: the journal starts a new segment file past this size
    journal_segment_mib: int = 256
    #: write a checkpoint after this many journaled orders (0 = never by count)
    checkpoint_every_messages: int = 1_000_000
    #: ... or after this many seconds with new orders (0 = never by time)
    checkpoint_every_s: float = 300.0
    #: worker processes doing the handshake cryptography off the trading loop (0 = inline)
    handshake_workers: int = 1
    #: share of the loop's wall time handshake frames may take before frames from nets
    #: without a known client are dropped unanswered (``ServerEndpoint``)
    handshake_share: float = 0.2
    #: UTC wall-clock time "HH:MM" at which the trading day ends (Day orders expire); "" = never
    end_of_day: str = "21:00"
    #: daily phase changes by the wall clock (opening and closing auctions), in file order
    schedule: tuple[ScheduledPhase, ...] = ()
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(max_orders=1 << 20, max_levels=1 << 18))
    qzmq: QzmqConfig = field(default_factory=QzmqConfig)
    #: where the configuration came from (for messages)
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        _check_ports(self.fix_port, self.md_port, self.md_snapshot_port, self.metrics_port)
        if not 1 <= self.batch <= 1_000_000:
            raise ServerConfigError(f"{self.source}: server.batch = {self.batch}; use 1..1000000")
        if not self.instruments:
            raise ServerConfigError(f"{self.source}: no [[instrument]]; configure at least one")
        if self.end_of_day and not _valid_hhmm(self.end_of_day):
            raise ServerConfigError(
                f'{self.source}: server.end_of_day = {self.end_of_day!r}; use UTC "HH:MM" or "" for never'
            )
        known = {i.security_id for i in self.instruments}
        for k, entry in enumerate(self.schedule):
            if not _valid_hhmm(entry.at):
                raise ServerConfigError(f'{self.source}: schedule[{k}].at = {entry.at!r}; use UTC "HH:MM"')
            if entry.phase not in _PHASES.values():
                raise ServerConfigError(f"{self.source}: schedule[{k}].phase = {entry.phase} is not a phase")
            if unknown := sorted(set(entry.security_ids) - known):
                raise ServerConfigError(
                    f"{self.source}: schedule[{k}].security_ids: {unknown} are not configured instruments"
                )
        for kid, on in self.cancel_on_disconnect_by_kid:
            if not _is_kid(kid) or not isinstance(on, bool):
                raise ServerConfigError(
                    f"{self.source}: server.cancel_on_disconnect_by_kid: ({kid!r}, {on!r}) is not a 16-byte key "
                    "id in lowercase hex with true or false"
                )
        if self.durability not in _DURABILITY:
            raise ServerConfigError(
                f"{self.source}: journal.durability = {self.durability!r}; use one of {', '.join(_DURABILITY)}"
            )
        if self.journal_dir is None and self.durability != "none":
            raise ServerConfigError(
                f"{self.source}: journal.durability = {self.durability!r} needs a journal; set journal.dir "
                '(or durability = "none" with dir = "" to run without one)'
            )
        if not 1 <= self.journal_segment_mib <= 1 << 20:
            raise ServerConfigError(f"{self.source}: journal.segment_mib = {self.journal_segment_mib}; use 1..1048576")
        worst = self.worst_case_output_bytes()
        state = self.engine_state_bytes() + self.md_retention_bytes() + self.md_reply_bytes()
        limit = self.memory_limit_mib << 20
        if worst + state > limit:
            qty = max(i.max_order_qty for i in self.instruments)
            raise ServerConfigError(
                f"{self.source}: the worst single message may need {self.worst_case_records():,} output records "
                f"({worst / 2**20:,.0f} MiB; 16 + 8 x (max_order_qty {qty:,} + engine.max_orders "
                f"{self.engine.max_orders:,})) plus about {state / 2**20:,.0f} MiB of engine state, market-data "
                f"retention (marketdata.retention {self.md_retention:,} records per feed) and snapshot replies "
                f"(marketdata.max_replies_in_flight {self.md_max_replies_in_flight}), over "
                f"server.memory_limit_mib = {self.memory_limit_mib}; lower instrument max_order_qty or "
                "engine.max_orders, or raise server.memory_limit_mib"
            )

    def cancels_on_disconnect(self, kid: bytes) -> bool:
        """Whether the session of client key ``kid`` has its orders cancelled when its last
        connection ends: its own entry in ``cancel_on_disconnect_by_kid``, else the default."""
        return dict(self.cancel_on_disconnect_by_kid).get(kid.hex(), self.cancel_on_disconnect)

    def worst_case_records(self) -> int:
        """The largest output any single message or command can need (ENGINE.md §2.4)."""
        return worst_case_records(self.instruments, self.engine)

    def worst_case_output_bytes(self) -> int:
        return self.worst_case_records() * OUTPUT_RECORD_BYTES

    def engine_state_bytes(self) -> int:
        """An upper estimate of the engine's preallocated tables (orders, levels, indexes)."""
        e = self.engine
        return 256 * e.max_orders + 128 * e.max_levels + 16 * e.max_sessions

    def md_retention_bytes(self) -> int:
        """Replay retention of the four feeds, allocated at start (``Retention.BYTES_PER_RECORD``)."""
        return len(feeds.ALL_FEEDS) * self.md_retention * Retention.BYTES_PER_RECORD if self.md_enabled else 0

    def md_reply_bytes(self) -> int:
        """Snapshot and replay replies at their worst: each of ``md_max_replies_in_flight``
        holds the larger of a full L3 snapshot (every order plus four records per
        instrument, in full packets) and a full replay (in the worst case one record per
        packet), each packet with its Python object, plus its requester's ROUTER pipe of
        full packets."""
        if not self.md_enabled:
            return 0
        snapshot_records = self.engine.max_orders + 4 * len(self.instruments)
        snapshot_packets = -(-snapshot_records // codes.MAX_MSGS_PER_FRAME) + len(self.instruments)
        snapshot = snapshot_records * codes.MESSAGE_SIZE + snapshot_packets * REPLY_PACKET_OVERHEAD_BYTES
        replay = self.md_replay_max_records * (codes.MESSAGE_SIZE + REPLY_PACKET_OVERHEAD_BYTES)
        pipe = self.md_reply_sndhwm * codes.MAX_MSGS_PER_FRAME * codes.MESSAGE_SIZE
        return self.md_max_replies_in_flight * (max(snapshot, replay) + pipe)

    @property
    def fix_endpoint(self) -> str:
        return f"tcp://{self.host}:{self.fix_port}"

    @property
    def md_endpoint(self) -> str:
        return f"tcp://{self.host}:{self.md_port}"

    @property
    def md_snapshot_endpoint(self) -> str:
        return f"tcp://{self.host}:{self.md_snapshot_port}"


def _is_kid(text: object) -> bool:
    return isinstance(text, str) and len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def _valid_hhmm(text: str) -> bool:
    hh, sep, mm = text.partition(":")
    return bool(sep) and hh.isdigit() and mm.isdigit() and len(mm) == 2 and 0 <= int(hh) < 24 and 0 <= int(mm) < 60


def end_of_day_offset_ns(text: str) -> int:
    """ "HH:MM" as nanoseconds after UTC midnight."""
    hh, _, mm = text.partition(":")
    return (int(hh) * 3600 + int(mm) * 60) * 1_000_000_000


def _check_ports(*ports: int) -> None:
    for p in ports:
        if not 0 <= p <= 65535:
            raise ServerConfigError(f"port {p} is outside 0..65535")


def _refusal(source: str, setting: str, problem: str) -> ServerConfigError:
    """The one shape of a refusal: where the configuration came from, the key, what is wrong."""
    return ServerConfigError(f"{source}: {setting}: {problem}")


class _Reader:
    """Typed access to one TOML table that names the key in every error."""

    def __init__(self, table: Mapping[str, Any], where: str, source: str) -> None:
        self.table = table
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> ServerConfigError:
        return _refusal(self.source, self._name(key), problem)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) and kind is not bool and not (isinstance(kind, tuple) and bool in kind):
            raise self.fail(key, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(key, f"expected {_kind_name(kind)}, got {type(value).__name__} {value!r}")
        return value

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value = int(self.get(key, int, default))
        if not lo <= value <= hi:
            raise self.fail(key, f"{value} is outside {lo}..{hi}")
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = float(self.get(key, (int, float), default))
        if not lo <= value <= hi:
            raise self.fail(key, f"{value} is outside {lo}..{hi}")
        return value

    def decimal(self, key: str, default: str | None = None) -> Decimal:
        raw = self.get(key, (str, int), default)
        if raw is None:
            raise self.fail(key, 'missing; give a decimal string such as "0.01"')
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise self.fail(key, f"{raw!r} is not a decimal number") from None
        if not value.is_finite():
            raise self.fail(key, f"{raw!r} is not a finite number")
        return value

    def choice(self, key: str, options: Mapping[str, int], default: str) -> int:
        raw = self.get(key, str, default)
        if raw not in options:
            raise self.fail(key, f"{raw!r}; use one of {', '.join(options)}")
        return options[raw]

    def finish(self) -> None:
        extra = sorted(set(self.table) - self.used)
        if extra:
            raise ServerConfigError(
                f"{self.source}: unknown key(s) {', '.join(self._name(k) for k in extra)}; "
                "check the spelling against docs/server.md"
            )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _instrument(r: _Reader) -> InstrumentConfig:
    sec = r.integer("security_id", 0, 1, 2**32 - 2)
    symbol = r.get("symbol", str, None)
    if not symbol:
        raise r.fail("symbol", "missing; give the instrument's name")
    tick = r.decimal("tick")
    if tick <= 0:
        raise r.fail("tick", f"{tick} must be positive")
    try:
        tick_p9 = price_to_p9(tick)
    except ValueError as exc:
        raise r.fail("tick", str(exc)) from None
    ref = r.decimal("ref")
    try:
        ref_p9: int | None = price_to_p9(ref)
    except ValueError:
        ref_p9 = None
    if ref_p9 is None or ref_p9 % tick_p9:
        raise r.fail("ref", f"{ref} is not a whole number of ticks of {tick} (or does not fit PRICE9)")
    has_ticks = "band_ticks" in r.table
    has_bps = "band_bps" in r.table
    if has_ticks == has_bps:
        r.used.update({"band_ticks", "band_bps"})
        raise r.fail("band_ticks", "give exactly one of band_ticks or band_bps")
    if has_ticks:
        band_kind, width = BAND_TICKS, r.integer("band_ticks", 0, 0, 2**62)
    else:
        band_kind, width = BAND_BPS, r.integer("band_bps", 0, 0, 1_000_000)
    kwargs: dict[str, Any] = {
        "security_id": sec,
        "symbol": symbol,
        "tick_size_p9": tick_p9,
        "ref": ref_p9 // tick_p9,
        "band_width": width,
        "band_kind": band_kind,
        "lot_size": r.integer("lot", 1, 1, 2**32 - 1),
        "max_order_qty": r.integer("max_order_qty", 1_000_000, 1, 2**32 - 2),
        "collar": r.integer("collar_ticks", 1_000, 0, 2**62),
        "phase": r.choice("phase", _PHASES, "continuous"),
        "default_stp": r.choice("default_stp", _STP, "cancel-passive"),
    }
    if "max_notional" in r.table:
        kwargs["max_notional"] = r.integer("max_notional", 0, 1, 2**63 - 1)
    if "batch_auction_ms" in r.table:
        # 0: an uncross after every server batch; else every that many ms of the server's clock
        kwargs["fba_interval_ns"] = round(r.number("batch_auction_ms", 0.0, 0.0, 86_400_000.0) * 1_000_000)
    kwargs["allocation"] = r.choice("allocation", _ALLOCATION, "time")
    r.finish()
    try:
        return InstrumentConfig(**kwargs)
    except _EngineConfigError as exc:
        raise ServerConfigError(f"{r.source}: {r.where}: {exc}") from None


def parse_config(text: str, *, source: str = "<config>", base: Path | None = None) -> ServerConfig:
    """Build a :class:`ServerConfig` from TOML text (paths relative to ``base``)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ServerConfigError(f"{source}: not valid TOML: {exc}") from None
    base = base or Path.cwd()
    top = _Reader(doc, "", source)
    server = _Reader(top.get("server", dict, {}), "server", source)
    keys = _Reader(top.get("keys", dict, {}), "keys", source)
    engine_t = _Reader(top.get("engine", dict, {}), "engine", source)
    qzmq_t = _Reader(top.get("qzmq", dict, {}), "qzmq", source)
    journal_t = _Reader(top.get("journal", dict, {}), "journal", source)
    md_t = _Reader(top.get("marketdata", dict, {}), "marketdata", source)
    inst_list = top.get("instrument", list, [])
    schedule_list = top.get("schedule", list, [])
    top.finish()

    instruments = []
    for i, table in enumerate(inst_list):
        if not isinstance(table, dict):
            raise ServerConfigError(f"{source}: instrument[{i}] must be a table ([[instrument]])")
        instruments.append(_instrument(_Reader(table, f"instrument[{i}]", source)))
    schedule = []
    for i, table in enumerate(schedule_list):
        if not isinstance(table, dict):
            raise ServerConfigError(f"{source}: schedule[{i}] must be a table ([[schedule]])")
        r = _Reader(table, f"schedule[{i}]", source)
        at = r.get("at", str, None)
        if at is None or not _valid_hhmm(at):
            raise r.fail("at", f'{at!r}; give the UTC time as "HH:MM"')
        phase = r.choice("phase", _PHASES, "continuous") if "phase" in table else None
        if phase is None:
            raise r.fail("phase", f"missing; use one of {', '.join(_PHASES)}")
        ids_raw = r.get("security_ids", list, [])
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in ids_raw):
            raise r.fail("security_ids", "give a list of integer SecurityIDs (or leave it out for every instrument)")
        r.finish()
        schedule.append(ScheduledPhase(at, phase, tuple(ids_raw)))
    ids = [i.security_id for i in instruments]
    if len(set(ids)) != len(ids):
        dup = sorted({x for x in ids if ids.count(x) > 1})
        raise ServerConfigError(f"{source}: instrument security_id {dup[0]} appears twice; ids must be unique")
    symbols = [i.symbol for i in instruments]
    if len(set(symbols)) != len(symbols):
        raise ServerConfigError(f"{source}: an instrument symbol appears twice; symbols must be unique")

    def path(reader: _Reader, key: str) -> Path:
        raw = reader.get(key, str, None)
        if raw is None:
            raise reader.fail(key, "missing; give a file path (relative to the config file)")
        p = Path(raw)
        return p if p.is_absolute() else base / p

    key_file = path(keys, "server_key")
    allow = path(keys, "allow_list")
    admin = keys.get("admin_kids", list, [])
    for kid in admin:
        if not _is_kid(kid):
            raise keys.fail("admin_kids", f"{kid!r} is not a 16-byte key id in lowercase hex")
    keys.finish()

    cod_by_kid = server.get("cancel_on_disconnect_by_kid", dict, {})
    for kid, on in cod_by_kid.items():
        if not _is_kid(kid):
            raise server.fail("cancel_on_disconnect_by_kid", f"{kid!r} is not a 16-byte key id in lowercase hex")
        if not isinstance(on, bool):
            raise server.fail(f"cancel_on_disconnect_by_kid.{kid}", f"expected true or false, got {on!r}")
    throttle = server.get("throttle", list, [2_000_000, 4_000_000])
    if len(throttle) != 2 or not all(isinstance(x, int | float) and x > 0 for x in throttle):
        raise server.fail("throttle", "give [messages per second, burst], both positive")
    settings: dict[str, Any] = {
        "host": server.get("host", str, DEFAULT_HOST),
        "fix_port": server.integer("fix_port", DEFAULT_FIX_PORT, 0, 65535),
        "md_port": server.integer("md_port", DEFAULT_MD_PORT, 0, 65535),
        "batch": server.integer("batch", 10_000, 1, 1_000_000),
        "latency_budget_us": server.integer("latency_budget_us", 200, 0, 1_000_000),
        "idle_spin_us": server.integer("idle_spin_us", 0, 0, 100_000),
        "compiled_path": server.get("compiled_path", bool, True),
        "compiled_sockets": server.get("compiled_sockets", bool, True),
        "status_interval": server.number("status_interval", 1.0, 0.0, 3600.0),
        "metrics_port": server.integer("metrics_port", 0, 0, 65535),
        "cancel_on_disconnect": server.get("cancel_on_disconnect", bool, True),
        "cancel_on_disconnect_by_kid": tuple(sorted(cod_by_kid.items())),
        "heartbeat_interval": server.number("heartbeat_interval", 1.0, 0.05, 3600.0),
        "throttle": (float(throttle[0]), float(throttle[1])),
        "max_rejects": server.integer("max_rejects", 10_000, 1, 2**31),
        "sndhwm": server.integer("sndhwm", 10_000, _MIN_HWM, _MAX_HWM),
        "rcvhwm": server.integer("rcvhwm", 10_000, _MIN_HWM, _MAX_HWM),
        "retransmit_keep": server.integer("retransmit_keep", 200_000, 0, 2**31 - 1),
        "memory_limit_mib": server.integer("memory_limit_mib", 8192, 64, 2**24),
        "end_of_day": server.get("end_of_day", str, "21:00"),
        "handshake_workers": server.integer("handshake_workers", 1, 0, 64),
        "handshake_share": server.number("handshake_share", 0.2, 0.01, 1.0),
    }
    server.finish()
    journal_dir = journal_t.get("dir", str, "journal")
    durability = journal_t.get("durability", str, "fsync")
    if durability not in _DURABILITY:
        raise journal_t.fail("durability", f"{durability!r}; use one of {', '.join(_DURABILITY)}")
    settings.update(
        journal_dir=None if journal_dir == "" else base / journal_dir,
        durability=durability,
        journal_segment_mib=journal_t.integer("segment_mib", 256, 1, 1 << 20),
        checkpoint_every_messages=journal_t.integer("checkpoint_every_messages", 1_000_000, 0, 2**62),
        checkpoint_every_s=journal_t.number("checkpoint_every_s", 300.0, 0.0, 86_400.0 * 365),
    )
    journal_t.finish()
    settings.update(
        md_enabled=md_t.get("enabled", bool, True),
        md_snapshot_port=md_t.integer("snapshot_port", DEFAULT_MD_SNAPSHOT_PORT, 0, 65535),
        md_heartbeat_interval=md_t.number("heartbeat_interval", 1.0, 0.01, 3600.0),
        md_sndhwm=md_t.integer("sndhwm", 1_000_000, _MIN_HWM, _MAX_HWM),
        md_retention=md_t.integer("retention", 1_000_000, 0, 2**40),
        # a replay must be able to carry the largest packet, or it could never move on
        md_replay_max_records=md_t.integer("replay_max_records", 100_000, codes.MAX_MSGS_PER_FRAME, 2**32 - 1),
        md_max_queued_requests=md_t.integer("max_queued_requests", 64, 0, 1_000_000),
        md_reply_sndhwm=md_t.integer("reply_sndhwm", 16, _MIN_HWM, 1_000_000),
        md_max_replies_in_flight=md_t.integer("max_replies_in_flight", 8, 1, 10_000),
        md_reply_timeout=md_t.number("reply_timeout", 10.0, 0.1, 3600.0),
        md_snapshot_share=md_t.number("snapshot_share", 0.1, 0.001, 1.0),
    )
    md_t.finish()
    try:
        engine = EngineConfig(
            max_orders=engine_t.integer("max_orders", 1 << 20, 1, 2**31 - 1),
            max_levels=engine_t.integer("max_levels", 1 << 18, 1, 2**31 - 1),
            max_sessions=engine_t.integer("max_sessions", 4096, 1, 2**31 - 1),
            reserve_orders=engine_t.integer("reserve_orders", 0, 0, 2**31 - 1),
            event_hash=engine_t.get("event_hash", bool, False),
            # ENGINE.md §8: the composition root reads $QFIX_AUCTION_BACKEND; the file wins
            auction_backend=AUCTION_BACKENDS[
                engine_t.choice(
                    "auction_backend",
                    {name: k for k, name in enumerate(AUCTION_BACKENDS)},
                    os.environ.get(backends.ENV_VAR) or "auto",
                )
            ],
            max_instruments=max(1, len(instruments)),
        )
    except _EngineConfigError as exc:
        raise ServerConfigError(f"{source}: engine: {exc}") from None
    engine_t.finish()
    if engine.auction_backend != "auto":
        # a backend named in the file must run here: found at start, not at the first uncross
        try:
            backends.load(engine.auction_backend)
        except backends.BackendUnavailable as exc:
            raise ServerConfigError(f"{source}: engine.auction_backend: {exc}") from None
    qzmq = _qzmq_config(qzmq_t)
    return ServerConfig(
        instruments=tuple(instruments),
        schedule=tuple(schedule),
        key_file=key_file,
        allow_list_file=allow,
        admin_kids=tuple(admin),
        engine=engine,
        qzmq=qzmq,
        source=source,
        **settings,
    )


def _qzmq_config(r: _Reader) -> QzmqConfig:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(QzmqConfig):
        if f.name not in r.table:
            continue
        if f.name == "mode":
            raw = r.get("mode", str, "hybrid")
            try:
                values["mode"] = QzmqConfig.parse_mode(raw)
            except _QzmqConfigError:
                raise r.fail("mode", f"{raw!r}; use hybrid or pq-only") from None
        elif f.name.startswith("hello_rate"):
            pair = r.get(f.name, list, None)
            if len(pair) != 2:
                raise r.fail(f.name, "give [tokens per second, burst]")
            values[f.name] = (float(pair[0]), float(pair[1]))
        elif f.name == "cookie_policy":
            values[f.name] = r.get(f.name, str, None)
        else:
            values[f.name] = r.get(f.name, (int, float), None)
    r.finish()
    try:
        return QzmqConfig(**values)
    except _QzmqConfigError as exc:
        raise ServerConfigError(f"{r.source}: qzmq.{exc}") from None


def load_config(path: str | Path) -> ServerConfig:
    """Read and validate a server configuration file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServerConfigError(f"{p}: cannot read the configuration: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ServerConfigError(f"{p}: not UTF-8 text") from None
    return parse_config(text, source=str(p), base=p.parent.resolve())


def load_keys(config: ServerConfig) -> tuple[SigningKey, AllowList]:
    """The server's private key (``keys.server_key``) and client allow-list (``keys.allow_list``).

    A refused file is reported naming its setting, with the key loader's reason and the
    fix, so a bad ``[keys]`` table fails at start like any other bad key. Every kid of
    ``keys.admin_kids`` must be on the allow-list (docs/server.md): a kid off it is a typo
    or a key taken off one list and not the other, and its key can never connect, so the
    operator would find the admin channel missing only when ``qfix admin halt`` goes
    unanswered in an emergency. (A per-key ``server.cancel_on_disconnect_by_kid`` entry
    off the allow-list only changes a default, and is warned about by the server.)
    """
    try:
        key = load_private_key(config.key_file, alg=SignatureAlg.ML_DSA_65)
    except KeyFileError as exc:
        raise _refusal(
            config.source, "keys.server_key", f"{exc}; {_SERVER_KEY_FIX.format(path=config.key_file)}"
        ) from None
    try:
        allow = load_allow_list(config.allow_list_file)
    except KeyFileError as exc:
        raise _refusal(config.source, "keys.allow_list", f"{exc}; {_ALLOW_LIST_FIX}") from None
    for kid in config.admin_kids:
        if bytes.fromhex(kid) not in allow:
            raise _refusal(
                config.source,
                "keys.admin_kids",
                f"{kid} is not on the allow-list {config.allow_list_file} (keys.allow_list); add that key's "
                "[[client]] entry there, or take the kid out of keys.admin_kids",
            )
    return key, allow


def with_overrides(config: ServerConfig, **flags: Any) -> ServerConfig:
    """Apply command-line flags (``None`` = not given) over the file's values."""
    changes = {k: v for k, v in flags.items() if v is not None}
    if changes.pop("pq_only", False):
        changes["qzmq"] = dataclasses.replace(config.qzmq, mode=Mode.PQ_ONLY)
    try:
        return dataclasses.replace(config, **changes)
    except _EngineConfigError:
        raise
    except TypeError as exc:
        raise ServerConfigError(f"bad override: {exc}") from None
