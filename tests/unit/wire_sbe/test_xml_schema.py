"""WIRE.md §7 test 1, "XML = dtypes": the SBE XML files against qfix.wire.schema and codes.

The XML side is read with the standard library only (``_sbexml``); the codec side is the
NumPy dtypes and struct field lists of ``qfix.wire.schema`` and the constants of
``qfix.wire.codes``. Expected FIX tags, WIRE.md type names and MsgTypes are transcribed
from WIRE.md §3 below, so the XML is also checked against the design where a dtype
cannot tell (u32 vs u32NULL vs Qty, PRICE9 vs PRICENULL9, tags).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import qfix.wire
from qfix.wire import codes, schema
from qfix.wire.sbe_files import market_data_xml_path, order_entry_xml_path

from ._common import TEMPLATE_IDS, XML_PATHS, message_spec, spec

# --- transcribed from WIRE.md ------------------------------------------------------------

ROOT = {
    60: {
        "package": "qfix.orderentry",
        "id": "60",
        "version": "0",
        "semanticVersion": "FIX.4.4",
        "byteOrder": "littleEndian",
    },
    61: {
        "package": "qfix.marketdata",
        "id": "61",
        "version": "0",
        "semanticVersion": "FIX.4.4",
        "byteOrder": "littleEndian",
    },
}

#: WIRE.md §3.1 FIX column (None: "—", no FIX MsgType)
MSG_TYPE = {
    1: "D",
    2: "F",
    3: "G",
    4: "q",
    10: "8",
    11: "9",
    12: "r",
    13: "j",
    20: "0",
    21: "2",
    22: None,
    30: "f",
    31: "X",
    32: "X",
    33: "X",
    34: "X",
    35: "X",
    36: "X",
    37: "X",
    38: "X",
    39: "W",
    40: "W",
    41: "W",
    42: "0",
    43: "V",
    44: "V",
    45: None,
    46: "X",
    47: "d",
    48: "f",
}

#: WIRE.md §3 type column of each block (ReservedN = char[N]; MD prefix/suffix added below)
WIRE_TYPES = {
    1: "u64 Time PRICENULL9 Qty u32 u32NULL QtyNULL QtyNULL Side OrdType TimeInForce ExecInst "
    "SMPInstruction Reserved1 Date",
    2: "u64 Time u64NULL u64NULL u32 Side Reserved15",
    3: "u64 Time u64 PRICENULL9 Qty u32 QtyNULL Side OrdType TimeInForce ExecInst QtyNULL",
    4: "u64 Time u32NULL u32NULL MassCancelRequestType MassCancelSide Reserved26",
    10: "u64 Time u64NULL u64 PRICENULL9 Qty Qty ExecType OrdStatus ExecReason LastLiquidityInd",
    11: "u64 Time u64NULL u64 u64NULL OrdStatus CxlRejResponseTo CxlRejReason ExecReason Reserved8",
    12: "u64 Time u64 u32 u32NULL MassCancelRequestType MassCancelResponse "
    "MassCancelRejectReason ExecReason u32NULL MassCancelSide Reserved11",
    13: "u64 Time u16 u16 u16 u16 u32 u16 BusinessRejectReason Reserved21",
    20: "u64 Time u64 Reserved28",
    21: "u64 Time u32 Reserved32",
    22: "u64 Time u64 u32 u32 RetransmitStatus Reserved19",
    30: "TradingStatus HaltReason Reserved33",
    31: "u64 PRICE9 Qty MDEntryType Reserved14",
    32: "u64 PRICE9 Qty Qty u64 AggressorSide Reserved2",
    33: "u64 Qty Qty Reserved19",
    34: "u64 Reserved27",
    35: "u64 u64 PRICE9 Qty MDEntryType Reserved6",
    36: "u64 PRICE9 Qty AggressorSide TradeCondition Reserved13",
    37: "PRICE9 BigQty u32 MDEntryType MDUpdateAction Reserved13",
    38: "PRICENULL9 PRICENULL9 BigQty BigQty Reserved3",
    39: "u64 u32 TradingStatus Reserved22",
    40: "u64 PRICE9 Qty MDEntryType Reserved14",
    41: "u64 Reserved27",
    42: "u64 ChannelEvent Reserved26",
    43: "u64 MDFeed Reserved26",
    44: "u64 u64 u32 MDFeed Reserved14",
    45: "u64 u64 u32 RequestStatus Reserved14",
    46: "PRICENULL9 BigQty BigQty ImbalanceSide Reserved10",
    47: "PRICE9 Qty u32 Symbol16 TradingStatus Reserved2",
    48: "PRICE9 PRICE9 i64 i64 Reserved3",
}
#: char arrays that are not Reserved: (message, field, tag, type, length) per schema
TEXT_FIELDS = {60: [], 61: [("SecurityDefinition", "Symbol", 55, "Symbol16", 16)]}
MD_PREFIX_TYPES = "Time u32 u32"
MD_SUFFIX_TYPES = "MatchEventIndicator"

#: FIX tag of every field name, per schema (WIRE.md §3; Reserved = 5999)
TAGS = {
    60: {
        "Account": 1,
        "ClOrdID": 11,
        "ExecID": 17,
        "ExecInst": 18,
        "LastPx": 31,
        "LastQty": 32,
        "OrderID": 37,
        "OrderQty": 38,
        "OrdStatus": 39,
        "OrdType": 40,
        "OrigClOrdID": 41,
        "Price": 44,
        "SecurityID": 48,
        "Side": 54,
        "TimeInForce": 59,
        "TransactTime": 60,
        "CxlRejReason": 102,
        "MinQty": 110,
        "MaxFloor": 111,
        "ExecType": 150,
        "LeavesQty": 151,
        "BusinessRejectRefID": 379,
        "BusinessRejectReason": 380,
        "ExpireDate": 432,
        "CxlRejResponseTo": 434,
        "MassCancelRequestType": 530,
        "MassCancelResponse": 531,
        "MassCancelRejectReason": 532,
        "TotalAffectedOrders": 533,
        "LastLiquidityInd": 851,
        "SelfMatchPreventionInstruction": 2964,
        "ExecReason": 5101,
        "RefBlockLength": 5102,
        "RefTemplateId": 5103,
        "RefSchemaId": 5104,
        "RefVersion": 5105,
        "RefFrameLength": 5106,
        "RefMsgIndex": 5107,
        "LastExecID": 5110,
        "LastClOrdID": 5111,
        "FromExecID": 5112,
        "Count": 5113,
        "SentCount": 5114,
        "RetransmitStatus": 5115,
        "Reserved": 5999,
    },
    61: {
        "LastPx": 31,
        "LastQty": 32,
        "OrderID": 37,
        "SecurityID": 48,
        "Symbol": 55,
        "TransactTime": 60,
        "RptSeq": 83,
        "CanceledQty": 84,
        "BidPx": 132,
        "OfferPx": 133,
        "BidSize": 134,
        "OfferSize": 135,
        "LeavesQty": 151,
        "MDEntryType": 269,
        "MDEntryPx": 270,
        "MDEntrySize": 271,
        "TradeCondition": 277,
        "MDUpdateAction": 279,
        "TradingStatus": 326,
        "HaltReason": 327,
        "NumberOfOrders": 346,
        "LastChannelSeqNum": 369,
        "RoundLot": 561,
        "TotNumReports": 911,
        "MinPriceIncrement": 969,
        "TradeID": 1003,
        "MaxTradeVol": 1140,
        "LowLimitPrice": 1148,
        "HighLimitPrice": 1149,
        "MDFeed": 5120,
        "RequestID": 5121,
        "FromChannelSeqNum": 5122,
        "Count": 5123,
        "RecordCount": 5124,
        "RequestStatus": 5125,
        "ChannelEvent": 5126,
        "OrigOrderID": 5127,
        "IndicativePx": 5128,
        "MatchedQty": 5129,
        "ImbalanceQty": 5130,
        "ImbalanceSide": 5131,
        "MaxNotional": 5132,
        "Collar": 5133,
        "AggressorSide": 5797,
        "MatchEventIndicator": 5799,
        "Reserved": 5999,
    },
}

#: every §4 enum: (schema, encodingType, {validValue name: codes constant name}, prefix whose
#: constants must all be listed, or None)
ENUMS: dict[str, tuple[int, str, dict[str, str], str | None]] = {
    "Side": (60, "char", {"Buy": "SIDE_BUY", "Sell": "SIDE_SELL"}, "SIDE_"),
    "MassCancelSide": (
        60,
        "char",
        {"Both": "MASS_CANCEL_SIDE_BOTH", "Buy": "SIDE_BUY", "Sell": "SIDE_SELL"},
        "MASS_CANCEL_SIDE_",
    ),
    "OrdType": (
        60,
        "char",
        {
            "Market": "ORD_TYPE_MARKET",
            "Limit": "ORD_TYPE_LIMIT",
            "Stop": "ORD_TYPE_STOP",
            "StopLimit": "ORD_TYPE_STOP_LIMIT",
        },
        "ORD_TYPE_",
    ),
    "TimeInForce": (
        60,
        "char",
        {
            "Day": "TIF_DAY",
            "GoodTillCancel": "TIF_GTC",
            "ImmediateOrCancel": "TIF_IOC",
            "FillOrKill": "TIF_FOK",
            "GoodTillDate": "TIF_GTD",
        },
        "TIF_",
    ),
    "SMPInstruction": (
        60,
        "uint8",
        {
            "CancelAggressive": "SMP_CANCEL_AGGRESSIVE",
            "CancelPassive": "SMP_CANCEL_PASSIVE",
            "CancelBoth": "SMP_CANCEL_BOTH",
            "Decrement": "SMP_DECREMENT",
            "Default": "SMP_DEFAULT",
        },
        "SMP_",
    ),
    "ExecType": (
        60,
        "char",
        {
            "New": "EXEC_TYPE_NEW",
            "Canceled": "EXEC_TYPE_CANCELED",
            "Replaced": "EXEC_TYPE_REPLACED",
            "Rejected": "EXEC_TYPE_REJECTED",
            "Expired": "EXEC_TYPE_EXPIRED",
            "Restated": "EXEC_TYPE_RESTATED",
            "Trade": "EXEC_TYPE_TRADE",
        },
        "EXEC_TYPE_",
    ),
    "OrdStatus": (
        60,
        "char",
        {
            "New": "ORD_STATUS_NEW",
            "PartiallyFilled": "ORD_STATUS_PARTIALLY_FILLED",
            "Filled": "ORD_STATUS_FILLED",
            "Canceled": "ORD_STATUS_CANCELED",
            "Rejected": "ORD_STATUS_REJECTED",
            "Expired": "ORD_STATUS_EXPIRED",
        },
        "ORD_STATUS_",
    ),
    "LastLiquidityInd": (
        60,
        "uint8",
        {
            "AddedLiquidity": "LIQUIDITY_ADDED",
            "RemovedLiquidity": "LIQUIDITY_REMOVED",
            "Auction": "LIQUIDITY_AUCTION",
            "None": "LIQUIDITY_NONE",
        },
        "LIQUIDITY_",
    ),
    "CxlRejResponseTo": (
        60,
        "char",
        {
            "OrderCancelRequest": "CXL_REJ_RESPONSE_TO_CANCEL",
            "OrderCancelReplaceRequest": "CXL_REJ_RESPONSE_TO_REPLACE",
        },
        "CXL_REJ_RESPONSE_TO_",
    ),
    "CxlRejReason": (
        60,
        "uint8",
        {
            "UnknownOrder": "CXL_REJ_REASON_UNKNOWN_ORDER",
            "PriceExceedsCurrentPriceBand": "CXL_REJ_REASON_PRICE_BAND",
            "InvalidPriceIncrement": "CXL_REJ_REASON_PRICE_INCREMENT",
            "Other": "CXL_REJ_REASON_OTHER",
        },
        "CXL_REJ_REASON_",
    ),
    "MassCancelRequestType": (
        60,
        "char",
        {"CancelOrdersForSecurity": "MASS_CANCEL_TYPE_SECURITY", "CancelAllOrders": "MASS_CANCEL_TYPE_ALL"},
        "MASS_CANCEL_TYPE_",
    ),
    "MassCancelResponse": (
        60,
        "char",
        {
            "CancelRequestRejected": "MASS_CANCEL_RESPONSE_REJECTED",
            "CancelOrdersForSecurity": "MASS_CANCEL_RESPONSE_SECURITY",
            "CancelAllOrders": "MASS_CANCEL_RESPONSE_ALL",
        },
        "MASS_CANCEL_RESPONSE_",
    ),
    "MassCancelRejectReason": (
        60,
        "uint8",
        {
            "InvalidOrUnknownSecurity": "MASS_CANCEL_REJECT_UNKNOWN_SECURITY",
            "Other": "MASS_CANCEL_REJECT_OTHER",
            "None": "MASS_CANCEL_REJECT_NONE",
        },
        "MASS_CANCEL_REJECT_",
    ),
    "BusinessRejectReason": (
        60,
        "uint8",
        {
            "Other": "BRR_OTHER",
            "UnsupportedMessageType": "BRR_UNSUPPORTED_MESSAGE_TYPE",
            "ApplicationNotAvailable": "BRR_APPLICATION_NOT_AVAILABLE",
            "BadFrameLength": "BRR_BAD_FRAME_LENGTH",
            "WrongSchema": "BRR_WRONG_SCHEMA",
            "WrongVersion": "BRR_WRONG_VERSION",
            "BadBlockLength": "BRR_BAD_BLOCK_LENGTH",
            "NonzeroReserved": "BRR_NONZERO_RESERVED",
            "ClOrdIDNotIncreasing": "BRR_CLORDID_NOT_INCREASING",
            "WrongDirection": "BRR_WRONG_DIRECTION",
            "InvalidFieldValue": "BRR_INVALID_FIELD_VALUE",
            "UnknownAccount": "BRR_UNKNOWN_ACCOUNT",
        },
        "BRR_",
    ),
    "RetransmitStatus": (
        60,
        "uint8",
        {
            "Completed": "RETRANSMIT_COMPLETED",
            "Truncated": "RETRANSMIT_TRUNCATED",
            "Unavailable": "RETRANSMIT_UNAVAILABLE",
        },
        "RETRANSMIT_",
    ),
    "ExecReason": (
        60,
        "uint8",
        {
            "None": "EXEC_REASON_NONE",
            "UnknownSymbol": "EXEC_REASON_UNKNOWN_SYMBOL",
            "TradingStateNotOpen": "EXEC_REASON_TRADING_STATE_NOT_OPEN",
            "QtyOverMax": "EXEC_REASON_QTY_OVER_MAX",
            "InvalidExpireDate": "EXEC_REASON_INVALID_EXPIRE_DATE",
            "UnknownOrder": "EXEC_REASON_UNKNOWN_ORDER",
            "DuplicateClOrdID": "EXEC_REASON_DUPLICATE_CLORDID",
            "Unsupported": "EXEC_REASON_UNSUPPORTED",
            "IncorrectQty": "EXEC_REASON_INCORRECT_QTY",
            "PriceOutsideBand": "EXEC_REASON_PRICE_OUTSIDE_BAND",
            "PriceOffTick": "EXEC_REASON_PRICE_OFF_TICK",
            "InvalidSide": "EXEC_REASON_INVALID_SIDE",
            "InvalidOrdType": "EXEC_REASON_INVALID_ORD_TYPE",
            "InvalidTimeInForce": "EXEC_REASON_INVALID_TIME_IN_FORCE",
            "InvalidExecInst": "EXEC_REASON_INVALID_EXEC_INST",
            "InvalidSMPInstruction": "EXEC_REASON_INVALID_SMP_INSTRUCTION",
            "PriceRequired": "EXEC_REASON_PRICE_REQUIRED",
            "PriceNotAllowed": "EXEC_REASON_PRICE_NOT_ALLOWED",
            "ExpireDateMismatch": "EXEC_REASON_EXPIRE_DATE_MISMATCH",
            "InvalidMinQty": "EXEC_REASON_INVALID_MIN_QTY",
            "InvalidMaxFloor": "EXEC_REASON_INVALID_MAX_FLOOR",
            "PostOnlyWouldCross": "EXEC_REASON_POST_ONLY_WOULD_CROSS",
            "CapacityFull": "EXEC_REASON_CAPACITY_FULL",
            "InvalidMassCancelRequest": "EXEC_REASON_INVALID_MASS_CANCEL_REQUEST",
            "NotionalOverMax": "EXEC_REASON_NOTIONAL_OVER_MAX",
            "OtherAccount": "EXEC_REASON_OTHER_ACCOUNT",
            "UserRequest": "EXEC_REASON_USER_REQUEST",
            "IocFokRemainder": "EXEC_REASON_IOC_FOK_REMAINDER",
            "SelfMatch": "EXEC_REASON_SELF_MATCH",
            "MassCancel": "EXEC_REASON_MASS_CANCEL",
            "CancelOnDisconnect": "EXEC_REASON_CANCEL_ON_DISCONNECT",
            "Expired": "EXEC_REASON_EXPIRED",
            "Admin": "EXEC_REASON_ADMIN",
            "MinQtyNotMet": "EXEC_REASON_MIN_QTY_NOT_MET",
        },
        "EXEC_REASON_",
    ),
    "TradingStatus": (
        61,
        "uint8",
        {
            "Halt": "TRADING_STATUS_HALT",
            "Continuous": "TRADING_STATUS_CONTINUOUS",
            "Closed": "TRADING_STATUS_CLOSED",
            "PreOpen": "TRADING_STATUS_PRE_OPEN",
            "BatchAuction": "TRADING_STATUS_BATCH_AUCTION",
            "PreClose": "TRADING_STATUS_PRE_CLOSE",
        },
        "TRADING_STATUS_",
    ),
    "HaltReason": (
        61,
        "uint8",
        {
            "None": "HALT_REASON_NONE",
            "Operator": "HALT_REASON_OPERATOR",
            "Volatility": "HALT_REASON_VOLATILITY",
            "Schedule": "HALT_REASON_SCHEDULE",
        },
        "HALT_REASON_",
    ),
    "MDEntryType": (61, "char", {"Bid": "MD_ENTRY_BID", "Offer": "MD_ENTRY_OFFER"}, "MD_ENTRY_"),
    "MDUpdateAction": (
        61,
        "uint8",
        {"New": "MD_UPDATE_NEW", "Change": "MD_UPDATE_CHANGE", "Delete": "MD_UPDATE_DELETE"},
        "MD_UPDATE_",
    ),
    "AggressorSide": (
        61,
        "uint8",
        {"None": "AGGRESSOR_NONE", "Buy": "AGGRESSOR_BUY", "Sell": "AGGRESSOR_SELL"},
        "AGGRESSOR_",
    ),
    "TradeCondition": (
        61,
        "uint8",
        {"Regular": "TRADE_CONDITION_REGULAR", "Auction": "TRADE_CONDITION_AUCTION"},
        "TRADE_CONDITION_",
    ),
    "ImbalanceSide": (
        61,
        "uint8",
        {"None": "IMBALANCE_NONE", "Buy": "IMBALANCE_BUY", "Sell": "IMBALANCE_SELL"},
        "IMBALANCE_",
    ),
    "MDFeed": (
        61,
        "uint8",
        {"L3": "MD_FEED_L3", "L2": "MD_FEED_L2", "BBO": "MD_FEED_BBO", "TRD": "MD_FEED_TRD"},
        "MD_FEED_",
    ),
    "ChannelEvent": (
        61,
        "uint8",
        {"Heartbeat": "CHANNEL_EVENT_HEARTBEAT", "Reset": "CHANNEL_EVENT_RESET"},
        "CHANNEL_EVENT_",
    ),
    "RequestStatus": (
        61,
        "uint8",
        {
            "Completed": "REQUEST_COMPLETED",
            "Truncated": "REQUEST_TRUNCATED",
            "Unavailable": "REQUEST_UNAVAILABLE",
            "Invalid": "REQUEST_INVALID",
            "Busy": "REQUEST_BUSY",
        },
        "REQUEST_",
    ),
}

#: the two §4 sets: (schema, {choice name: codes mask constant}, prefix, mask constant)
SETS = {
    "ExecInst": (
        60,
        {"ParticipateDontInitiate": "EXEC_INST_POST_ONLY", "AllOrNone": "EXEC_INST_ALL_OR_NONE"},
        "EXEC_INST_",
    ),
    "MatchEventIndicator": (
        61,
        {"LastTradeMsg": "MEI_LAST_TRADE_MSG", "RecoveryMsg": "MEI_RECOVERY_MSG", "EndOfEvent": "MEI_END_OF_EVENT"},
        "MEI_",
    ),
}

#: struct code of WIRE.md's formats -> (SBE primitive, NumPy dtype)
STRUCT_CODE = {
    "c": ("char", np.dtype("u1")),
    "B": ("uint8", np.dtype("u1")),
    "H": ("uint16", np.dtype("<u2")),
    "I": ("uint32", np.dtype("<u4")),
    "Q": ("uint64", np.dtype("<u8")),
    "q": ("int64", np.dtype("<i8")),
}

SCHEMAS = [60, 61]


# --- files and root ---------------------------------------------------------------------


def test_package_data_paths() -> None:
    """sbe_files resolves to the two files in qfix/wire/sbe/ (the wheel ships that folder)."""
    folder = Path(qfix.wire.__file__).resolve().parent / "sbe"
    assert order_entry_xml_path().resolve() == folder / "qfix-order-entry.xml"
    assert market_data_xml_path().resolve() == folder / "qfix-market-data.xml"
    assert all(p.is_file() for p in (order_entry_xml_path(), market_data_xml_path()))


@pytest.mark.parametrize("schema_id", SCHEMAS)
def test_root_element(schema_id: int) -> None:
    s = spec(schema_id)
    assert {k: v for k, v in s.attributes.items() if k != "description"} == ROOT[schema_id]
    text = XML_PATHS[schema_id].read_text(encoding="utf-8")
    assert '<sbe:messageSchema xmlns:sbe="http://fixprotocol.io/2016/sbe" ' in text
    assert s.id == schema_id == {60: codes.SCHEMA_ORDER_ENTRY, 61: codes.SCHEMA_MARKET_DATA}[schema_id]
    assert s.version == codes.SCHEMA_VERSION
    assert s.byte_order == "<"


@pytest.mark.parametrize("schema_id", SCHEMAS)
def test_header_composite(schema_id: int) -> None:
    s = spec(schema_id)
    xml = [(f.name, f.offset, f.size, f.primitive) for f in s.header]
    numpy = [
        (name, schema.HEADER.fields[name][1], schema.HEADER.fields[name][0].itemsize, STRUCT_CODE[code][0])
        for name, code in schema.HEADER_FIELDS
    ]
    assert xml == numpy
    assert [f.name for f in s.header] == ["blockLength", "templateId", "schemaId", "version"]
    assert all(schema.HEADER.fields[f.name][0] == np.dtype("<u2") for f in s.header)
    assert s.header_size == 8


@pytest.mark.parametrize("schema_id", SCHEMAS)
def test_templates_of_schema(schema_id: int) -> None:
    s = spec(schema_id)
    expected = {t.template_id: t.name for t in schema.TEMPLATES.values() if t.schema_id == schema_id}
    assert {m.id: m.name for m in s.messages.values()} == expected


# --- message layouts ----------------------------------------------------------------------


def _numpy_layout(template_id: int) -> list[tuple[str, int, int, str]]:
    """(name, message offset, size, primitive) from the dtype and WIRE.md struct codes."""
    t = schema.TEMPLATES[template_id]
    out = []
    for name, code in t.fields:
        sub, offset = t.dtype.fields[name][:2]  # type: ignore[index]
        if code.endswith("s"):
            n = int(code[:-1])
            assert sub == np.dtype(("u1", (n,))), name
            primitive = f"char[{n}]"
        else:
            primitive, numpy_type = STRUCT_CODE[code]
            assert sub == numpy_type, name
        out.append((name, int(offset), sub.itemsize, primitive))
    return out


def _xml_layout(template_id: int) -> list[tuple[str, int, int, str]]:
    s = spec(schema.TEMPLATES[template_id].schema_id)
    out = [(f.name, f.offset, f.size, f.primitive) for f in s.header]
    for f in message_spec(template_id).fields:
        primitive = f"char[{f.length}]" if f.kind == "chars" else f.primitive
        out.append((f.name, s.header_size + f.offset, f.size, primitive))
    return out


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_layout_equals_dtype(template_id: int) -> None:
    """(name, offset, size, primitive type) of header and block: XML == dtype."""
    assert _xml_layout(template_id) == _numpy_layout(template_id)
    assert schema.TEMPLATES[template_id].dtype.itemsize == codes.MESSAGE_SIZE


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_block_tiles_52_bytes(template_id: int) -> None:
    """blockLength 52; explicit offsets, listed in offset order, tiling 0..52 without gaps."""
    m = message_spec(template_id)
    assert m.block_length == codes.BLOCK_LENGTH == 52
    assert all(f.has_offset_attr for f in m.fields)
    cursor = 0
    for f in m.fields:
        assert f.offset == cursor, f"{m.name}.{f.name} at {f.offset}, expected {cursor}"
        assert f.offset % min(f.size, 8) == 0 or f.kind == "chars", f"{f.name} misaligned"
        cursor += f.size
    assert cursor == 52


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_types_tags_and_msgtype_follow_wire(template_id: int) -> None:
    m = message_spec(template_id)
    schema_id = schema.TEMPLATES[template_id].schema_id
    types = WIRE_TYPES[template_id]
    if schema_id == 61:
        types = f"{MD_PREFIX_TYPES} {types} {MD_SUFFIX_TYPES}"
    assert [f.type_name for f in m.fields] == types.split()
    assert [f.id for f in m.fields] == [TAGS[schema_id][f.name] for f in m.fields]
    assert m.semantic_type == MSG_TYPE[template_id]


def test_qfix_tags_in_range() -> None:
    """qfix-defined tags are 5101-5131 (WIRE.md §7) and 5132-5133 (SecurityLimits, docs/wire.md);
    5797/5799 are the CME tags of §3.4."""
    tags = {t for table in TAGS.values() for t in table.values() if t > 5000}
    assert {t for t in tags if t not in (5797, 5799, 5999)} <= set(range(5101, 5134))
    used = {f.id for s in SCHEMAS for m in spec(s).messages.values() for f in m.fields}
    assert tags <= used


# --- types -------------------------------------------------------------------------------


@pytest.mark.parametrize("schema_id", SCHEMAS)
def test_base_types(schema_id: int) -> None:
    t = spec(schema_id).types
    for name in ("PRICE9", "PRICENULL9"):
        members = [(m.get("name"), m.get("primitiveType"), m.get("presence")) for m in t[name]]
        optional = "optional" if name == "PRICENULL9" else None
        assert members == [("mantissa", "int64", optional), ("exponent", "int8", "constant")]
        assert (t[name][1].text or "").strip() == "-9"
    assert int(t["PRICENULL9"][0].get("nullValue", "")) == codes.NULL_PRICE
    assert t["PRICE9"][0].get("nullValue") is None
    expected = {  # name: (primitive, presence, nullValue, semanticType)
        "u16": ("uint16", None, None, None),
        "u32": ("uint32", None, None, None),
        "u64": ("uint64", None, None, None),
        "u32NULL": ("uint32", "optional", codes.NULL_U32, None),
        "u64NULL": ("uint64", "optional", codes.NULL_U64, None),
        "Qty": ("uint32", None, None, "Qty"),
        "QtyNULL": ("uint32", "optional", codes.NULL_U32, "Qty"),
        "BigQty": ("uint64", None, None, "Qty"),
        "Time": ("uint64", None, None, "UTCTimestamp"),
        "Date": ("uint16", "optional", codes.NULL_DATE, "LocalMktDate"),
    }
    if schema_id == 61:  # SecurityLimits' MaxNotional and Collar (schema 60 has no plain int64)
        expected["i64"] = ("int64", None, None, None)
    for name, (primitive, presence, null, semantic) in expected.items():
        el = t[name]
        got_null = el.get("nullValue")
        assert (
            el.get("primitiveType"),
            el.get("presence"),
            None if got_null is None else int(got_null),
            el.get("semanticType"),
        ) == (primitive, presence, null, semantic), name
    header = [(m.get("name"), m.get("primitiveType")) for m in t["messageHeader"]]
    assert header == [(n, "uint16") for n in ("blockLength", "templateId", "schemaId", "version")]


@pytest.mark.parametrize("schema_id", SCHEMAS)
def test_reserved_types(schema_id: int) -> None:
    """One char-array type per Reserved length used, each used, every Reserved id 5999; the
    only other char array is SecurityDefinition's Symbol (tag 55, its own type Symbol16)."""
    s = spec(schema_id)
    chars = [(m.name, f) for m in s.messages.values() for f in m.fields if f.kind == "chars"]
    reserved = [f for _, f in chars if f.name == "Reserved"]
    assert all(f.id == 5999 and f.type_name == f"Reserved{f.length}" for f in reserved)
    assert all(f.kind == "chars" for m in s.messages.values() for f in m.fields if f.name == "Reserved")
    text = [(name, f.name, f.id, f.type_name, f.length) for name, f in chars if f.name != "Reserved"]
    assert text == TEXT_FIELDS[schema_id]
    declared = {n for n, el in s.types.items() if el.tag == "type" and el.get("primitiveType") == "char"}
    assert declared == {f.type_name for _, f in chars}
    for _, _, _, type_name, _ in text:
        assert s.types[type_name].get("semanticType") == "String"


def test_every_type_is_used() -> None:
    """Enums and sets appear where a field uses them (base types may be unused)."""
    for s in SCHEMAS:
        used = {f.type_name for m in spec(s).messages.values() for f in m.fields}
        assert set(spec(s).enums) | set(spec(s).sets) <= used


# --- enums and sets ----------------------------------------------------------------------


def test_every_table_declared_once() -> None:
    declared = [(name, s) for s in SCHEMAS for name in spec(s).enums]
    assert sorted(declared) == sorted((name, e[0]) for name, e in ENUMS.items())
    assert sorted((name, s) for s in SCHEMAS for name in spec(s).sets) == sorted(
        (name, v[0]) for name, v in SETS.items()
    )


@pytest.mark.parametrize("table", sorted(ENUMS))
def test_enum_equals_codes(table: str) -> None:
    schema_id, encoding, constants, prefix = ENUMS[table]
    xml_encoding, values = spec(schema_id).enums[table]
    assert xml_encoding == encoding
    assert values == {name: getattr(codes, const) for name, const in constants.items()}
    if prefix:  # no constant of the table is missing from the XML
        in_codes = {
            k for k, v in vars(codes).items() if k.startswith(prefix) and isinstance(v, int) and not k.endswith("_MASK")
        }
        assert in_codes <= set(constants.values())
    if encoding == "char":
        assert all(0x20 < v < 0x7F for v in values.values())
    # every field of this enum is a 1-byte field whose struct code matches the encoding
    code = {"char": "c", "uint8": "B"}[encoding]
    for m in spec(schema_id).messages.values():
        for f in m.fields:
            if f.type_name == table:
                assert dict(schema.TEMPLATES[m.id].fields)[f.name] == code, (m.name, f.name)


@pytest.mark.parametrize("table", sorted(SETS))
def test_set_equals_codes(table: str) -> None:
    schema_id, constants, prefix = SETS[table]
    encoding, bits = spec(schema_id).sets[table]
    assert encoding == "uint8"
    assert {name: 1 << bit for name, bit in bits.items()} == {
        name: getattr(codes, const) for name, const in constants.items()
    }
    masks = {k: v for k, v in vars(codes).items() if k.startswith(prefix) and k.endswith("_MASK")}
    defined = sum(1 << b for b in bits.values())
    for name, mask in masks.items():
        assert mask == (0xFF & ~defined if "RESERVED" in name else defined), name
    assert len(masks) == 1
    in_codes = {k for k in vars(codes) if k.startswith(prefix) and not k.endswith("_MASK")}
    assert in_codes == set(constants.values())


def test_nulls_and_defaults_listed() -> None:
    """255 None/Default is a declared value wherever WIRE.md §4 defines it."""
    enums = {**spec(60).enums, **spec(61).enums}
    assert enums["SMPInstruction"][1]["Default"] == codes.NULL_U8
    assert enums["LastLiquidityInd"][1]["None"] == codes.NULL_U8
    assert enums["MassCancelRejectReason"][1]["None"] == codes.NULL_U8
    assert enums["ExecReason"][1]["None"] == 0


def test_xml_names_equal_display_names() -> None:
    """The XML's valid-value and choice names are the names qfix displays (codes.NAMES)."""
    xml_tables = {}
    for s in SCHEMAS:
        for name, (_, values) in spec(s).enums.items():
            xml_tables[name] = {code: value_name for value_name, code in values.items()}
        for name, (_, bits) in spec(s).sets.items():
            xml_tables[name] = {1 << bit: choice for choice, bit in bits.items()}
    for table, names in codes.NAMES.items():
        assert xml_tables.get(table) == names, table
