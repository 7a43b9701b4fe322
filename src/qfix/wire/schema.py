"""NumPy dtypes for every 60-byte template of WIRE.md §3 and the 80-byte inbound record.

Each template is declared once, as an ordered field list that also carries the
``struct`` format WIRE.md prints for it; at import the module derives offsets from the
list and checks them against ``struct.calcsize`` of every prefix, so a typo in either
fails loudly before any byte is read. Char fields are ``u1`` (ASCII code) so that Numba
and vectorised comparisons use them directly; char arrays (Reserved bytes, and the
zero-padded ASCII Symbol of SecurityDefinition) are ``u1`` sub-arrays.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from qfix.wire import codes

#: numpy type of each `struct` code used by WIRE.md
_STRUCT_TO_NUMPY: Final = {"H": "<u2", "I": "<u4", "Q": "<u8", "q": "<i8", "c": "u1", "B": "u1"}

HEADER_FIELDS: Final = (("blockLength", "H"), ("templateId", "H"), ("schemaId", "H"), ("version", "H"))
#: schema-61 records all start with these 16 bytes and end with MatchEventIndicator
_MD_PREFIX: Final = (("TransactTime", "Q"), ("SecurityID", "I"), ("RptSeq", "I"))
_MD_SUFFIX: Final = (("MatchEventIndicator", "B"),)


@dataclass(frozen=True)
class Template:
    """One message layout: its id, schema, name, field list and the derived dtype."""

    template_id: int
    schema_id: int
    name: str
    struct_format: str
    fields: tuple[tuple[str, str], ...]  # (name, struct code or "<n>s") incl. header
    dtype: np.dtype[np.void]

    @property
    def block_fields(self) -> tuple[tuple[str, str], ...]:
        return self.fields[len(HEADER_FIELDS) :]

    @property
    def reserved_span(self) -> tuple[int, int] | None:
        """(message offset, length) of the Reserved bytes, or None."""
        if "Reserved" not in (self.dtype.names or ()):
            return None
        sub, offset = self.dtype.fields["Reserved"][:2]  # type: ignore[index]
        return int(offset), int(sub.itemsize)


def _build(template_id: int, schema_id: int, name: str, fmt: str, body: tuple[tuple[str, str], ...]) -> Template:
    fields = HEADER_FIELDS + body
    names: list[str] = []
    formats: list[object] = []
    offsets: list[int] = []
    offset = 0
    for field_name, code in fields:
        if code.endswith("s"):
            size = int(code[:-1])
            formats.append(("u1", (size,)))
        else:
            size = struct.calcsize("<" + code)
            formats.append(_STRUCT_TO_NUMPY[code])
        names.append(field_name)
        offsets.append(offset)
        offset += size
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": 60})
    # The field list must spell out exactly WIRE.md's struct format, and tile 60 bytes.
    joined = "<" + "".join(code for _, code in fields)
    if joined != fmt:
        raise AssertionError(f"{name}: field list {joined} != WIRE.md format {fmt}")
    if struct.calcsize(fmt) != codes.MESSAGE_SIZE or offset != codes.MESSAGE_SIZE:
        raise AssertionError(f"{name}: {offset} bytes, expected 60")
    for (field_name, code), field_offset in zip(fields, offsets, strict=True):
        if not code.endswith("s"):
            size = struct.calcsize("<" + code)
            if field_offset % size:
                raise AssertionError(f"{name}.{field_name} misaligned at {field_offset}")
    return Template(template_id, schema_id, name, fmt, fields, dtype)


def _md(template_id: int, name: str, fmt: str, body: tuple[tuple[str, str], ...]) -> Template:
    return _build(template_id, codes.SCHEMA_MARKET_DATA, name, fmt, _MD_PREFIX + body + _MD_SUFFIX)


def _oe(template_id: int, name: str, fmt: str, body: tuple[tuple[str, str], ...]) -> Template:
    return _build(template_id, codes.SCHEMA_ORDER_ENTRY, name, fmt, body)


_TEMPLATES: Final = (
    _oe(
        1,
        "NewOrderSingle",
        "<HHHHQQqIIIIIcccBB1sH",
        (
            ("ClOrdID", "Q"),
            ("TransactTime", "Q"),
            ("Price", "q"),
            ("OrderQty", "I"),
            ("SecurityID", "I"),
            ("Account", "I"),
            ("MinQty", "I"),
            ("MaxFloor", "I"),
            ("Side", "c"),
            ("OrdType", "c"),
            ("TimeInForce", "c"),
            ("ExecInst", "B"),
            ("SelfMatchPreventionInstruction", "B"),
            ("Reserved", "1s"),
            ("ExpireDate", "H"),
        ),
    ),
    _oe(
        2,
        "OrderCancelRequest",
        "<HHHHQQQQIc15s",
        (
            ("ClOrdID", "Q"),
            ("TransactTime", "Q"),
            ("OrigClOrdID", "Q"),
            ("OrderID", "Q"),
            ("SecurityID", "I"),
            ("Side", "c"),
            ("Reserved", "15s"),
        ),
    ),
    _oe(
        3,
        "OrderCancelReplaceRequest",
        "<HHHHQQQqIIIcccBI",
        (
            ("ClOrdID", "Q"),
            ("TransactTime", "Q"),
            ("OrigClOrdID", "Q"),
            ("Price", "q"),
            ("OrderQty", "I"),
            ("SecurityID", "I"),
            ("MaxFloor", "I"),
            ("Side", "c"),
            ("OrdType", "c"),
            ("TimeInForce", "c"),
            ("ExecInst", "B"),
            ("MinQty", "I"),
        ),
    ),
    _oe(
        4,
        "OrderMassCancelRequest",
        "<HHHHQQIIcc26s",
        (
            ("ClOrdID", "Q"),
            ("TransactTime", "Q"),
            ("SecurityID", "I"),
            ("Account", "I"),
            ("MassCancelRequestType", "c"),
            ("Side", "c"),
            ("Reserved", "26s"),
        ),
    ),
    _oe(
        10,
        "ExecutionReport",
        "<HHHHQQQQqIIccBB",
        (
            ("ClOrdID", "Q"),
            ("TransactTime", "Q"),
            ("OrderID", "Q"),
            ("ExecID", "Q"),
            ("LastPx", "q"),
            ("LastQty", "I"),
            ("LeavesQty", "I"),
            ("ExecType", "c"),
            ("OrdStatus", "c"),
            ("ExecReason", "B"),
            ("LastLiquidityInd", "B"),
        ),
    ),
    _oe(
        11,
        "OrderCancelReject",
        "<HHHHQQQQQccBB8s",
        (
            ("ClOrdID", "Q"),
            ("TransactTime", "Q"),
            ("OrderID", "Q"),
            ("ExecID", "Q"),
            ("OrigClOrdID", "Q"),
            ("OrdStatus", "c"),
            ("CxlRejResponseTo", "c"),
            ("CxlRejReason", "B"),
            ("ExecReason", "B"),
            ("Reserved", "8s"),
        ),
    ),
    _oe(
        12,
        "OrderMassCancelReport",
        "<HHHHQQQIIccBBIc11s",
        (
            ("ClOrdID", "Q"),
            ("TransactTime", "Q"),
            ("ExecID", "Q"),
            ("TotalAffectedOrders", "I"),
            ("SecurityID", "I"),
            ("MassCancelRequestType", "c"),
            ("MassCancelResponse", "c"),
            ("MassCancelRejectReason", "B"),
            ("ExecReason", "B"),
            ("Account", "I"),
            ("Side", "c"),
            ("Reserved", "11s"),
        ),
    ),
    _oe(
        13,
        "BusinessMessageReject",
        "<HHHHQQHHHHIHB21s",
        (
            ("BusinessRejectRefID", "Q"),
            ("TransactTime", "Q"),
            ("RefBlockLength", "H"),
            ("RefTemplateId", "H"),
            ("RefSchemaId", "H"),
            ("RefVersion", "H"),
            ("RefFrameLength", "I"),
            ("RefMsgIndex", "H"),
            ("BusinessRejectReason", "B"),
            ("Reserved", "21s"),
        ),
    ),
    _oe(
        20,
        "Heartbeat",
        "<HHHHQQQ28s",
        (
            ("LastExecID", "Q"),
            ("TransactTime", "Q"),
            ("LastClOrdID", "Q"),
            ("Reserved", "28s"),
        ),
    ),
    _oe(
        21,
        "RetransmitRequest",
        "<HHHHQQI32s",
        (
            ("FromExecID", "Q"),
            ("TransactTime", "Q"),
            ("Count", "I"),
            ("Reserved", "32s"),
        ),
    ),
    _oe(
        22,
        "RetransmitComplete",
        "<HHHHQQQIIB19s",
        (
            ("LastExecID", "Q"),
            ("TransactTime", "Q"),
            ("FromExecID", "Q"),
            ("Count", "I"),
            ("SentCount", "I"),
            ("RetransmitStatus", "B"),
            ("Reserved", "19s"),
        ),
    ),
    _md(
        30,
        "SecurityStatus",
        "<HHHHQIIBB33sB",
        (
            ("TradingStatus", "B"),
            ("HaltReason", "B"),
            ("Reserved", "33s"),
        ),
    ),
    _md(
        31,
        "AddOrder",
        "<HHHHQIIQqIc14sB",
        (
            ("OrderID", "Q"),
            ("MDEntryPx", "q"),
            ("MDEntrySize", "I"),
            ("MDEntryType", "c"),
            ("Reserved", "14s"),
        ),
    ),
    _md(
        32,
        "OrderExecuted",
        "<HHHHQIIQqIIQB2sB",
        (
            ("OrderID", "Q"),
            ("LastPx", "q"),
            ("LastQty", "I"),
            ("LeavesQty", "I"),
            ("TradeID", "Q"),
            ("AggressorSide", "B"),
            ("Reserved", "2s"),
        ),
    ),
    _md(
        33,
        "OrderReduced",
        "<HHHHQIIQII19sB",
        (
            ("OrderID", "Q"),
            ("CanceledQty", "I"),
            ("LeavesQty", "I"),
            ("Reserved", "19s"),
        ),
    ),
    _md(34, "OrderDelete", "<HHHHQIIQ27sB", (("OrderID", "Q"), ("Reserved", "27s"))),
    _md(
        35,
        "OrderReplace",
        "<HHHHQIIQQqIc6sB",
        (
            ("OrigOrderID", "Q"),
            ("OrderID", "Q"),
            ("MDEntryPx", "q"),
            ("MDEntrySize", "I"),
            ("MDEntryType", "c"),
            ("Reserved", "6s"),
        ),
    ),
    _md(
        36,
        "Trade",
        "<HHHHQIIQqIBB13sB",
        (
            ("TradeID", "Q"),
            ("LastPx", "q"),
            ("LastQty", "I"),
            ("AggressorSide", "B"),
            ("TradeCondition", "B"),
            ("Reserved", "13s"),
        ),
    ),
    _md(
        37,
        "BookLevel",
        "<HHHHQIIqQIcB13sB",
        (
            ("MDEntryPx", "q"),
            ("MDEntrySize", "Q"),
            ("NumberOfOrders", "I"),
            ("MDEntryType", "c"),
            ("MDUpdateAction", "B"),
            ("Reserved", "13s"),
        ),
    ),
    _md(
        38,
        "BestBidOffer",
        "<HHHHQIIqqQQ3sB",
        (
            ("BidPx", "q"),
            ("OfferPx", "q"),
            ("BidSize", "Q"),
            ("OfferSize", "Q"),
            ("Reserved", "3s"),
        ),
    ),
    _md(
        39,
        "SnapshotStart",
        "<HHHHQIIQIB22sB",
        (
            ("LastChannelSeqNum", "Q"),
            ("TotNumReports", "I"),
            ("TradingStatus", "B"),
            ("Reserved", "22s"),
        ),
    ),
    _md(
        40,
        "SnapshotOrder",
        "<HHHHQIIQqIc14sB",
        (
            ("OrderID", "Q"),
            ("MDEntryPx", "q"),
            ("MDEntrySize", "I"),
            ("MDEntryType", "c"),
            ("Reserved", "14s"),
        ),
    ),
    _md(41, "SnapshotEnd", "<HHHHQIIQ27sB", (("LastChannelSeqNum", "Q"), ("Reserved", "27s"))),
    _md(
        42,
        "ChannelHeartbeat",
        "<HHHHQIIQB26sB",
        (
            ("LastChannelSeqNum", "Q"),
            ("ChannelEvent", "B"),
            ("Reserved", "26s"),
        ),
    ),
    _md(
        43,
        "SnapshotRequest",
        "<HHHHQIIQB26sB",
        (
            ("RequestID", "Q"),
            ("MDFeed", "B"),
            ("Reserved", "26s"),
        ),
    ),
    _md(
        44,
        "ReplayRequest",
        "<HHHHQIIQQIB14sB",
        (
            ("RequestID", "Q"),
            ("FromChannelSeqNum", "Q"),
            ("Count", "I"),
            ("MDFeed", "B"),
            ("Reserved", "14s"),
        ),
    ),
    _md(
        45,
        "RequestComplete",
        "<HHHHQIIQQIB14sB",
        (
            ("RequestID", "Q"),
            ("LastChannelSeqNum", "Q"),
            ("RecordCount", "I"),
            ("RequestStatus", "B"),
            ("Reserved", "14s"),
        ),
    ),
    _md(
        46,
        "IndicativeAuction",
        "<HHHHQIIqQQB10sB",
        (
            ("IndicativePx", "q"),
            ("MatchedQty", "Q"),
            ("ImbalanceQty", "Q"),
            ("ImbalanceSide", "B"),
            ("Reserved", "10s"),
        ),
    ),
    _md(
        47,
        "SecurityDefinition",
        "<HHHHQIIqII16sB2sB",
        (
            ("MinPriceIncrement", "q"),
            ("MaxTradeVol", "I"),
            ("RoundLot", "I"),
            ("Symbol", "16s"),
            ("TradingStatus", "B"),
            ("Reserved", "2s"),
        ),
    ),
    _md(
        48,
        "SecurityLimits",
        "<HHHHQIIqqqq3sB",
        (
            ("LowLimitPrice", "q"),
            ("HighLimitPrice", "q"),
            ("MaxNotional", "q"),
            ("Collar", "q"),
            ("Reserved", "3s"),
        ),
    ),
)

#: every template by id
TEMPLATES: Final[dict[int, Template]] = {t.template_id: t for t in _TEMPLATES}
#: every template by name
TEMPLATES_BY_NAME: Final[dict[str, Template]] = {t.name: t for t in _TEMPLATES}

HEADER: Final = np.dtype(
    {"names": [n for n, _ in HEADER_FIELDS], "formats": ["<u2"] * 4, "offsets": [0, 2, 4, 6], "itemsize": 60}
)
#: a message seen only as its header (itemsize 60), for stage H over mixed frames
RAW: Final = np.dtype((np.uint8, (codes.MESSAGE_SIZE,)))

NEW_ORDER_SINGLE: Final = TEMPLATES[1].dtype
ORDER_CANCEL_REQUEST: Final = TEMPLATES[2].dtype
ORDER_CANCEL_REPLACE_REQUEST: Final = TEMPLATES[3].dtype
ORDER_MASS_CANCEL_REQUEST: Final = TEMPLATES[4].dtype
EXECUTION_REPORT: Final = TEMPLATES[10].dtype
ORDER_CANCEL_REJECT: Final = TEMPLATES[11].dtype
ORDER_MASS_CANCEL_REPORT: Final = TEMPLATES[12].dtype
BUSINESS_MESSAGE_REJECT: Final = TEMPLATES[13].dtype
HEARTBEAT: Final = TEMPLATES[20].dtype
RETRANSMIT_REQUEST: Final = TEMPLATES[21].dtype
RETRANSMIT_COMPLETE: Final = TEMPLATES[22].dtype
SECURITY_STATUS: Final = TEMPLATES[30].dtype
ADD_ORDER: Final = TEMPLATES[31].dtype
ORDER_EXECUTED: Final = TEMPLATES[32].dtype
ORDER_REDUCED: Final = TEMPLATES[33].dtype
ORDER_DELETE: Final = TEMPLATES[34].dtype
ORDER_REPLACE: Final = TEMPLATES[35].dtype
TRADE: Final = TEMPLATES[36].dtype
BOOK_LEVEL: Final = TEMPLATES[37].dtype
BEST_BID_OFFER: Final = TEMPLATES[38].dtype
SNAPSHOT_START: Final = TEMPLATES[39].dtype
SNAPSHOT_ORDER: Final = TEMPLATES[40].dtype
SNAPSHOT_END: Final = TEMPLATES[41].dtype
CHANNEL_HEARTBEAT: Final = TEMPLATES[42].dtype
SNAPSHOT_REQUEST: Final = TEMPLATES[43].dtype
REPLAY_REQUEST: Final = TEMPLATES[44].dtype
REQUEST_COMPLETE: Final = TEMPLATES[45].dtype
INDICATIVE_AUCTION: Final = TEMPLATES[46].dtype
SECURITY_DEFINITION: Final = TEMPLATES[47].dtype
SECURITY_LIMITS: Final = TEMPLATES[48].dtype

#: server-added columns of the inbound record (WIRE.md §6.1), at byte 60
_INBOUND_COLUMNS: Final = (
    ("SessionID", "<u4", 60),
    ("SessionAccount", "<u4", 64),
    ("InboundReserved", ("u1", (4,)), 68),
    ("RecvTime", "<u8", 72),
)


def _inbound(message: np.dtype[np.void] | None) -> np.dtype[np.void]:
    names: list[str] = []
    formats: list[object] = []
    offsets: list[int] = []
    if message is None:
        names.append("message")
        formats.append(("u1", (codes.MESSAGE_SIZE,)))
        offsets.append(0)
    else:
        for field_name in message.names or ():
            sub, offset = message.fields[field_name][:2]  # type: ignore[index]
            names.append(field_name)
            formats.append(sub)
            offsets.append(int(offset))
    for column_name, column_format, column_offset in _INBOUND_COLUMNS:
        names.append(column_name)
        formats.append(column_format)
        offsets.append(column_offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": 80})


#: the 80-byte record the engine consumes: raw message bytes + server columns
INBOUND: Final = _inbound(None)
#: the same 80 bytes seen through one template's fields (a view of an INBOUND array)
INBOUND_BY_TEMPLATE: Final[dict[int, np.dtype[np.void]]] = {tid: _inbound(TEMPLATES[tid].dtype) for tid in (1, 2, 3, 4)}
INBOUND_NEW_ORDER_SINGLE: Final = INBOUND_BY_TEMPLATE[1]
INBOUND_ORDER_CANCEL_REQUEST: Final = INBOUND_BY_TEMPLATE[2]
INBOUND_ORDER_CANCEL_REPLACE_REQUEST: Final = INBOUND_BY_TEMPLATE[3]
INBOUND_ORDER_MASS_CANCEL_REQUEST: Final = INBOUND_BY_TEMPLATE[4]

#: engine output record: a 60-byte message and its destination session (ENGINE.md §2.4)
OUTPUT: Final = np.dtype(
    {"names": ["message", "dest"], "formats": [("u1", (60,)), "<u4"], "offsets": [0, 60], "itemsize": 64}
)

assert INBOUND.itemsize == codes.INBOUND_SIZE
assert all(t.dtype.itemsize == codes.MESSAGE_SIZE for t in _TEMPLATES)


def byte_offset(dtype: np.dtype[np.void], name: str) -> int:
    """Where field ``name`` of ``dtype`` starts, in bytes (for kernels that read records
    as bytes)."""
    return int(dtype.fields[name][1])  # type: ignore[index]


#: kernels that read records as 32-bit words index them by :func:`word_offset`
WORD_BYTES: Final = 4


def word_offset(dtype: np.dtype[np.void], name: str | None = None) -> int:
    """Where field ``name`` of ``dtype`` starts, in 32-bit words (without a name: the
    record's size in words). ValueError if it does not fall on a word boundary, or if
    this host's words are not little-endian like the records."""
    if sys.byteorder != "little":
        raise ValueError("records are little-endian: word-reading kernels need a little-endian host")
    offset = dtype.itemsize if name is None else int(dtype.fields[name][1])  # type: ignore[index]
    if offset % WORD_BYTES:
        raise ValueError(f"{name or 'the record size'} at byte {offset} of {dtype} is not on a 32-bit word")
    return offset // WORD_BYTES


#: where templateId sits in a message's first 32-bit word (``word >> TEMPLATE_ID_SHIFT``)
TEMPLATE_ID_SHIFT: Final = 8 * (int(HEADER.fields["templateId"][1]) % WORD_BYTES)  # type: ignore[index]


def as_words(records: npt.NDArray[np.void]) -> npt.NDArray[np.uint32]:
    """Records (each a whole number of words) as an (n, words per record) uint32 array,
    for the kernels that read them by :func:`word_offset`: a view when ``records`` is
    contiguous, else a contiguous copy."""
    size = records.dtype.itemsize
    if size % WORD_BYTES or sys.byteorder != "little":
        word_offset(records.dtype)  # raises the reason
    if not records.flags.c_contiguous:
        # every frame and every engine call comes through here: asking NumPy for a
        # contiguous array it already has costs a microsecond, this flag a tenth
        records = np.ascontiguousarray(records)
    return records.view(np.uint32).reshape(records.size, size // WORD_BYTES)
