"""The liquibook baseline of ``qfix bench engine``: a C++ replay of the same workload streams.

liquibook (the C++ header-only order book) is not part of qfix: its headers come from the
``liquibook`` wheel on PyPI (a ``qfix[dev]`` dependency on the platforms it has wheels
for, installed under ``<site-packages>/include/liquibook``) or from the folder named by
``$QFIX_LIQUIBOOK_INCLUDE`` (one holding ``book/order_book.h``, e.g. a liquibook
checkout's ``src``). ``liquibook/driver.cpp`` beside this module is compiled at bench time
with ``$CXX`` (else ``g++``, ``c++`` or ``clang++``) into a cache folder keyed by the
digest of the driver, the headers, the compiler and its flags.

A workload stream (INBOUND records) becomes a flat command file (``CMD`` records, see
``driver.cpp``). The conversion needs what only the engine knows, the OrderIDs it assigns
(cancels in the §10 workloads name their order by OrderID) and which messages it rejects,
so it reads them off one untimed run of the fast engine over the stream, which also gives
the engine's trade count and traded quantity for the cross-check. Output records are tied
to the message of their chain by TransactTime, which equals the message's RecvTime when
RecvTimes strictly increase (every generated stream). The command file and a JSON note
of those counts are cached next to the stream, keyed by its BLAKE2b digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import struct
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np

from qfix.engine import Engine, EngineConfig, InstrumentConfig
from qfix.engine.contract import OUTPUT_FULL
from qfix.errors import BenchmarkError
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

#: the flags the driver is built with
CXXFLAGS: Final = ("-O3", "-std=c++17", "-DNDEBUG")
DRIVER_SOURCE: Final = Path(__file__).with_name("liquibook") / "driver.cpp"
INCLUDE_ENV: Final = "QFIX_LIQUIBOOK_INCLUDE"

MAGIC: Final = b"QFIXLQB1"
_HEADER = struct.Struct("<8sQQII")
#: bumped whenever the conversion changes, so cached command files are rebuilt
FORMAT: Final = 2

KIND_NEW, KIND_CANCEL, KIND_REPLACE, KIND_MASS_CANCEL, KIND_NOP = 0, 1, 2, 3, 4
FLAG_IOC, FLAG_MARKET, FLAG_AON = 1, 2, 4

#: one driver command, 40 bytes little-endian (``struct Cmd`` in driver.cpp)
CMD: Final = np.dtype(
    {
        "names": ["kind", "side", "flags", "pad", "book", "key", "key2", "price", "qty", "account"],
        "formats": ["u1", "u1", "u1", "u1", "<u4", "<u8", "<u8", "<i8", "<u4", "<u4"],
        "offsets": [0, 1, 2, 3, 4, 8, 16, 24, 32, 36],
        "itemsize": 40,
    }
)

_CLORDID_BITS: Final = 40
_SESSION_LIMIT: Final = 1 << (64 - _CLORDID_BITS)


class Unavailable(Exception):
    """The baseline cannot run here; ``str()`` says why (reported, never raised to the user)."""


@dataclass(frozen=True)
class Driver:
    """A built driver binary and how it was built."""

    path: Path
    compiler: str
    version: str
    headers: Path

    def describe(self) -> dict[str, Any]:
        return {
            "compiler": self.compiler,
            "compiler_version": self.version,
            "flags": " ".join(CXXFLAGS),
            "headers": str(self.headers),
            "liquibook_version": _liquibook_version(),
            "driver": self.path.name,
        }


# ----------------------------------------------------------------------------- building


def compiler() -> list[str] | None:
    """The C++ compiler command: ``$CXX`` if set (and found), else g++, c++ or clang++."""
    env = os.environ.get("CXX", "").strip()
    if env:
        words = shlex.split(env)
        found = shutil.which(words[0])
        return [found, *words[1:]] if found else None
    for name in ("g++", "c++", "clang++"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def headers() -> Path | None:
    """The folder holding liquibook's ``book/order_book.h``, or None."""
    env = os.environ.get(INCLUDE_ENV, "").strip()
    if env:
        folder = Path(env)
        return folder if (folder / "book" / "order_book.h").is_file() else None
    try:
        files = metadata.files("liquibook") or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix().endswith("include/liquibook/book/order_book.h"):
            folder = Path(str(f.locate())).parent.parent
            if (folder / "book" / "order_book.h").is_file():
                return folder
    return None


def _liquibook_version() -> str | None:
    if os.environ.get(INCLUDE_ENV, "").strip():
        return None
    try:
        return metadata.version("liquibook")
    except metadata.PackageNotFoundError:
        return None


def build(cache: Path) -> Driver:
    """Compile the driver into ``cache`` (once per digest); raises :class:`Unavailable`."""
    cxx = compiler()
    if cxx is None:
        if os.environ.get("CXX", "").strip():
            raise Unavailable(f"no C++ compiler: $CXX is {os.environ['CXX']!r}, which is not on PATH")
        raise Unavailable("no C++ compiler: none of g++, c++ or clang++ is on PATH (or set $CXX)")
    include = headers()
    if include is None:
        raise Unavailable(
            f"liquibook's headers not found: install the liquibook wheel (pip install liquibook==2.0.1, part of "
            f"qfix[dev] on Linux x86-64 and macOS arm64) or set {INCLUDE_ENV} to a folder holding book/order_book.h"
        )
    try:
        version = subprocess.run([*cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"{cxx[0]} --version failed: {exc}") from exc
    version = version.strip().splitlines()[0] if version.strip() else "unknown"
    digest = hashlib.sha256()
    for part in (DRIVER_SOURCE.read_bytes(), " ".join([*cxx, *CXXFLAGS]).encode(), version.encode()):
        digest.update(len(part).to_bytes(8, "little") + part)
    for header in sorted(include.rglob("*.h")):
        digest.update(header.relative_to(include).as_posix().encode() + b"\0" + header.read_bytes())
    exe = cache / f"driver-{digest.hexdigest()[:16]}"
    driver = Driver(exe, cxx[0], version, include)
    if exe.is_file() and os.access(exe, os.X_OK):
        return driver
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unavailable(f"cannot create the build folder {cache}: {exc.strerror or exc}") from exc
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
    cmd = [*cxx, *CXXFLAGS, "-I", str(include), str(DRIVER_SOURCE), "-o", str(tmp)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"compiling the liquibook driver failed: {exc}") from exc
    if done.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines()
        raise Unavailable(f"compiling the liquibook driver failed: {errors[0] if errors else done.returncode}")
    tmp.replace(exe)
    return driver


def run(driver: Driver, commands: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Replay ``commands`` once; the driver's JSON (messages, seconds, trades, volume, ...)."""
    try:
        done = subprocess.run([str(driver.path), str(commands)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"the liquibook driver ran past {timeout:.0f} s on {commands}") from exc
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise BenchmarkError(f"the liquibook driver failed on {commands}: {tail[0]}")
    try:
        doc: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"the liquibook driver printed no JSON on {commands}: {done.stdout[:200]!r}") from exc
    return doc


# ----------------------------------------------------------------------------- the engine's view


@dataclass(frozen=True)
class EngineView:
    """What one untimed fast-engine run says about a stream."""

    rejected: np.ndarray  # bool per record: the engine rejected it
    order_ids: np.ndarray  # u8: OrderID of each ER New / ER Replaced, ...
    order_msgs: np.ndarray  # i8: ... and the index of the record whose chain carried it
    trade_msgs: np.ndarray  # i8: the record of each MD Trade (one per fill pair) ...
    trade_qty: np.ndarray  # i8: ... and its LastQty
    stp_msgs: np.ndarray  # i8: the record of each ER Canceled for self-match prevention


def _layout(template_id: int) -> np.dtype[np.void]:
    """A template's fields over a 64-byte OUTPUT record."""
    d = schema.TEMPLATES[template_id].dtype
    names = list(d.names or ())
    fields = d.fields
    assert fields is not None
    return np.dtype(
        {
            "names": names,
            "formats": [fields[n][0] for n in names],
            "offsets": [int(fields[n][1]) for n in names],
            "itemsize": 64,
        }
    )


_ER = _layout(C.TEMPLATE_EXECUTION_REPORT)
_CXL_REJ = _layout(C.TEMPLATE_ORDER_CANCEL_REJECT)
_MASS_REPORT = _layout(C.TEMPLATE_ORDER_MASS_CANCEL_REPORT)
_BMR = _layout(C.TEMPLATE_BUSINESS_MESSAGE_REJECT)
_TRADE = _layout(C.TEMPLATE_TRADE)
#: reports that always mean their message was rejected
_REJECTS = ((C.TEMPLATE_ORDER_CANCEL_REJECT, _CXL_REJ), (C.TEMPLATE_BUSINESS_MESSAGE_REJECT, _BMR))


def engine_view(records: np.ndarray, insts: tuple[InstrumentConfig, ...]) -> EngineView:
    """Run the fast engine once over ``records`` and keep what the conversion needs."""
    recv = records["RecvTime"]
    if len(recv) > 1 and not bool(np.all(recv[1:] > recv[:-1])):
        raise Unavailable("the stream's RecvTimes do not strictly increase, so reports cannot be tied to messages")

    def index(tt: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(recv, tt)
        ok = idx < len(recv)
        if not bool(np.all(ok)) or not bool(np.all(recv[idx] == tt)):
            raise BenchmarkError("liquibook conversion: an engine report has a TransactTime no message has")
        return idx.astype(np.int64)

    rejected = np.zeros(len(records), dtype=bool)
    oids: list[np.ndarray] = []
    omsgs: list[np.ndarray] = []
    tmsgs: list[np.ndarray] = []
    tqty: list[np.ndarray] = []
    stp: list[np.ndarray] = []

    def collect(block: np.ndarray) -> None:
        tid = block["message"][:, 2].astype(np.uint16) | (block["message"][:, 3].astype(np.uint16) << 8)
        er = block[tid == C.TEMPLATE_EXECUTION_REPORT].view(_ER)
        if len(er):
            rejected[index(er["TransactTime"][er["ExecType"] == C.EXEC_TYPE_REJECTED])] = True
            keep = (er["ExecType"] == C.EXEC_TYPE_NEW) | (er["ExecType"] == C.EXEC_TYPE_REPLACED)
            oids.append(er["OrderID"][keep])
            omsgs.append(index(er["TransactTime"][keep]))
            self_match = (er["ExecType"] == C.EXEC_TYPE_CANCELED) & (er["ExecReason"] == C.EXEC_REASON_SELF_MATCH)
            stp.append(index(er["TransactTime"][self_match]))
        for template_id, layout in _REJECTS:
            rows = block[tid == template_id].view(layout)
            if len(rows):
                rejected[index(rows["TransactTime"])] = True
        mass = block[tid == C.TEMPLATE_ORDER_MASS_CANCEL_REPORT].view(_MASS_REPORT)
        if len(mass):
            bad = mass["MassCancelResponse"] == C.MASS_CANCEL_RESPONSE_REJECTED
            rejected[index(mass["TransactTime"][bad])] = True
        trades = block[tid == C.TEMPLATE_TRADE].view(_TRADE)
        if len(trades):
            tmsgs.append(index(trades["TransactTime"]))
            tqty.append(trades["LastQty"].astype(np.int64))

    eng = Engine(insts, EngineConfig())
    out = np.zeros(1 << 18, schema.OUTPUT)
    i = 0
    while i < len(records):
        res = eng.process(records[i : i + 4096], out)
        if res.written:
            collect(out[: res.written])
        i += res.consumed
        if res.status == OUTPUT_FULL and res.consumed == 0 and res.written == 0:
            out = np.zeros(max(2 * len(out), res.needed), schema.OUTPUT)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return EngineView(
        rejected,
        cat(oids, np.uint64),
        cat(omsgs, np.int64),
        cat(tmsgs, np.int64),
        cat(tqty, np.int64),
        cat(stp, np.int64),
    )


# ----------------------------------------------------------------------------- conversion


def convert(records: np.ndarray, insts: tuple[InstrumentConfig, ...], view: EngineView) -> np.ndarray:
    """The driver commands of ``records`` (one per record; what the engine rejected is a NOP)."""
    n = len(records)
    cmds = np.zeros(n, CMD)
    cmds["kind"] = KIND_NOP
    if n == 0:
        return cmds
    nos = records.view(schema.INBOUND_NEW_ORDER_SINGLE)
    cxl = records.view(schema.INBOUND_ORDER_CANCEL_REQUEST)
    rep = records.view(schema.INBOUND_ORDER_CANCEL_REPLACE_REQUEST)
    mass = records.view(schema.INBOUND_ORDER_MASS_CANCEL_REQUEST)
    tid = nos["templateId"]
    ok = ~view.rejected
    is_nos = ok & (tid == C.TEMPLATE_NEW_ORDER_SINGLE)
    is_cxl = ok & (tid == C.TEMPLATE_ORDER_CANCEL_REQUEST)
    is_rep = ok & (tid == C.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST)
    is_mass = ok & (tid == C.TEMPLATE_ORDER_MASS_CANCEL_REQUEST)

    session = records["SessionID"].astype(np.uint64)
    if bool(np.any(session[ok] >= _SESSION_LIMIT)):
        raise Unavailable(f"a SessionID of {_SESSION_LIMIT} or more does not fit the driver's order key")
    keyed = is_nos | is_rep
    clordid = nos["ClOrdID"]  # same offset in every template
    if bool(np.any(clordid[keyed] >> np.uint64(_CLORDID_BITS))):
        raise Unavailable(f"a ClOrdID of 2**{_CLORDID_BITS} or more does not fit the driver's order key")
    shift = np.uint64(_CLORDID_BITS)
    key = (session << shift) | clordid

    sec_ids = np.array(sorted(i.security_id for i in insts), dtype=np.int64)
    by_sec = np.argsort(np.array([i.security_id for i in insts], dtype=np.int64), kind="stable")

    def book(security: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(sec_ids, security.astype(np.int64)), len(sec_ids) - 1)
        return by_sec[pos].astype(np.uint32)

    # new orders
    rows = np.flatnonzero(is_nos)
    market = nos["OrdType"][rows] == C.ORD_TYPE_MARKET
    tif = nos["TimeInForce"][rows]
    ioc = market | (tif == C.TIF_IOC) | (tif == C.TIF_FOK)
    aon = tif == C.TIF_FOK
    price = nos["Price"][rows]
    if bool(np.any(price[~market] <= 0)):
        raise Unavailable("a limit price at or below 0 has no liquibook equivalent (0 means market there)")
    account = nos["Account"][rows]
    cmds["kind"][rows] = KIND_NEW
    cmds["side"][rows] = nos["Side"][rows] == C.SIDE_SELL
    cmds["flags"][rows] = ioc * FLAG_IOC + market * FLAG_MARKET + aon * FLAG_AON
    cmds["book"][rows] = book(nos["SecurityID"][rows])
    cmds["key"][rows] = key[rows]
    cmds["price"][rows] = np.where(market, 0, price)
    cmds["qty"][rows] = nos["OrderQty"][rows]
    cmds["account"][rows] = np.where(account == C.NULL_U32, records["SessionAccount"][rows], account)

    # replaces: the order by (SessionID, OrigClOrdID), re-keyed to (SessionID, ClOrdID)
    rows = np.flatnonzero(is_rep)
    orig = rep["OrigClOrdID"][rows]
    if bool(np.any(orig >> shift)):
        raise Unavailable(f"an OrigClOrdID of 2**{_CLORDID_BITS} or more does not fit the driver's order key")
    cmds["kind"][rows] = KIND_REPLACE
    cmds["key"][rows] = (session[rows] << shift) | orig
    cmds["key2"][rows] = key[rows]
    cmds["price"][rows] = rep["Price"][rows]
    cmds["qty"][rows] = rep["OrderQty"][rows]

    # cancels: by OrderID (the key the order had at the last ER New/Replaced before the
    # cancel carrying that OrderID), else by (SessionID, OrigClOrdID)
    rows = np.flatnonzero(is_cxl)
    oid = cxl["OrderID"][rows]
    by_oid = oid != C.NULL_U64
    cur = np.zeros(len(rows), np.uint64)
    orig = cxl["OrigClOrdID"][rows]
    if bool(np.any(orig[~by_oid] >> shift)):
        raise Unavailable(f"an OrigClOrdID of 2**{_CLORDID_BITS} or more does not fit the driver's order key")
    cur[~by_oid] = (session[rows][~by_oid] << shift) | orig[~by_oid]
    if bool(np.any(by_oid)):
        stride = np.uint64(n + 1)
        if len(view.order_ids) and int(view.order_ids.max()) >= (1 << 63) // (n + 1):
            raise Unavailable("OrderIDs too large to index")
        pairs = view.order_ids * stride + view.order_msgs.astype(np.uint64)
        order = np.argsort(pairs, kind="stable")
        pairs = pairs[order]
        wanted = oid[by_oid] * stride + rows[by_oid].astype(np.uint64)
        pos = np.searchsorted(pairs, wanted) - 1
        found = (pos >= 0) & (view.order_ids[order][np.maximum(pos, 0)] == oid[by_oid])
        if not bool(np.all(found)):
            raise BenchmarkError("liquibook conversion: an accepted cancel names an OrderID the engine never gave")
        cur[by_oid] = key[view.order_msgs[order][pos]]
    cmds["kind"][rows] = KIND_CANCEL
    cmds["key"][rows] = cur

    # mass cancels
    rows = np.flatnonzero(is_mass)
    account = mass["Account"][rows]
    side = mass["Side"][rows]
    cmds["kind"][rows] = KIND_MASS_CANCEL
    cmds["account"][rows] = np.where(account == C.NULL_U32, records["SessionAccount"][rows], account)
    cmds["flags"][rows] = mass["MassCancelRequestType"][rows] == C.MASS_CANCEL_TYPE_SECURITY
    cmds["book"][rows] = book(mass["SecurityID"][rows])
    cmds["side"][rows] = np.where(side == C.SIDE_BUY, 1, np.where(side == C.SIDE_SELL, 2, 0))
    return cmds


def save(path: Path, cmds: np.ndarray, prefill: int, books: int) -> None:
    """Write a command file (atomically: a partial file never has the final name)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(_HEADER.pack(MAGIC, len(cmds), prefill, books, 0))
        f.write(np.ascontiguousarray(cmds, CMD).tobytes())
    tmp.replace(path)


def commands(
    stream: Path, digest: str, records: np.ndarray, prefill: int, insts: tuple[InstrumentConfig, ...]
) -> tuple[Path, dict[str, Any]]:
    """The command file of a stream and its note (engine trades, kinds), made once per digest."""
    path = stream.with_suffix(".lqb")
    note_path = stream.with_suffix(".lqb.json")
    if path.is_file() and note_path.is_file():
        try:
            note: dict[str, Any] = json.loads(note_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            note = {}
        if note.get("stream_blake2b") == digest and note.get("format") == FORMAT:
            return path, note
    view = engine_view(records, insts)
    cmds = convert(records, insts, view)
    save(path, cmds, prefill, len(insts))
    body = view.trade_msgs >= prefill
    kinds = np.bincount(cmds["kind"][prefill:], minlength=5)
    note = {
        "stream_blake2b": digest,
        "format": FORMAT,
        "count": len(cmds),
        "prefill": prefill,
        "engine_trades": int(np.count_nonzero(body)),
        "engine_volume": int(view.trade_qty[body].sum()),
        "engine_rejected": int(np.count_nonzero(view.rejected[prefill:])),
        "engine_self_match_cancels": int(np.count_nonzero(view.stp_msgs >= prefill)),
        "kinds": {name: int(kinds[k]) for k, name in enumerate(("new", "cancel", "replace", "mass_cancel", "nop"))},
    }
    note_path.write_text(json.dumps(note) + "\n", encoding="utf-8")
    return path, note
