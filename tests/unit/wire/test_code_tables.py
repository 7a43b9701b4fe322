"""The code tables, transcribed here by hand from the wire design's §4 and checked
against `qfix.wire.codes`, so a wrong value or name in the codec cannot pass silently.

Char codes are written as the FIX character, u8 codes as numbers, exactly as the design
prints them.
"""

from __future__ import annotations

import pytest

from qfix.wire import codes

DESIGN_TABLES: dict[str, str] = {
    "Side": "1 Buy, 2 Sell",
    "MassCancelSide": "0 Both, 1 Buy, 2 Sell",
    "OrdType": "1 Market, 2 Limit, 3 Stop, 4 StopLimit",
    "TimeInForce": "0 Day, 1 GoodTillCancel, 3 ImmediateOrCancel, 4 FillOrKill, 6 GoodTillDate",
    "ExecInst": "#1 ParticipateDontInitiate, #2 AllOrNone",
    "SMPInstruction": "#1 CancelAggressive, #2 CancelPassive, #3 CancelBoth, #4 Decrement, #255 Default",
    "ExecType": "0 New, 4 Canceled, 5 Replaced, 8 Rejected, C Expired, D Restated, F Trade",
    "OrdStatus": "0 New, 1 PartiallyFilled, 2 Filled, 4 Canceled, 8 Rejected, C Expired",
    "LastLiquidityInd": "#1 AddedLiquidity, #2 RemovedLiquidity, #4 Auction, #255 None",
    "CxlRejResponseTo": "1 OrderCancelRequest, 2 OrderCancelReplaceRequest",
    "CxlRejReason": "#1 UnknownOrder, #8 PriceExceedsCurrentPriceBand, #18 InvalidPriceIncrement, #99 Other",
    "MassCancelRequestType": "1 CancelOrdersForSecurity, 7 CancelAllOrders",
    "MassCancelResponse": "0 CancelRequestRejected, 1 CancelOrdersForSecurity, 7 CancelAllOrders",
    "MassCancelRejectReason": "#1 InvalidOrUnknownSecurity, #99 Other, #255 None",
    "BusinessRejectReason": (
        "#0 Other, #3 UnsupportedMessageType, #4 ApplicationNotAvailable, #100 BadFrameLength, "
        "#101 WrongSchema, #102 WrongVersion, #103 BadBlockLength, #104 NonzeroReserved, "
        "#105 ClOrdIDNotIncreasing, #106 WrongDirection, #107 InvalidFieldValue, #108 UnknownAccount"
    ),
    "RetransmitStatus": "#0 Completed, #1 Truncated, #2 Unavailable",
    "TradingStatus": "#2 Halt, #17 Continuous, #18 Closed, #21 PreOpen, #100 BatchAuction, #101 PreClose",
    "HaltReason": "#0 None, #1 Operator, #2 Volatility, #3 Schedule",
    "MDEntryType": "0 Bid, 1 Offer",
    "MDUpdateAction": "#0 New, #1 Change, #2 Delete",
    "AggressorSide": "#0 None, #1 Buy, #2 Sell",
    "TradeCondition": "#0 Regular, #1 Auction",
    "ImbalanceSide": "#0 None, #1 Buy, #2 Sell",
    "MatchEventIndicator": "#1 LastTradeMsg, #32 RecoveryMsg, #128 EndOfEvent",
    "MDFeed": "#1 L3, #2 L2, #3 BBO, #4 TRD",
    "ChannelEvent": "#0 Heartbeat, #1 Reset",
    "RequestStatus": "#0 Completed, #1 Truncated, #2 Unavailable, #3 Invalid, #4 Busy",
    "ExecReason": (
        "#0 None, #1 UnknownSymbol, #2 TradingStateNotOpen, #3 QtyOverMax, #4 InvalidExpireDate, "
        "#5 UnknownOrder, #6 DuplicateClOrdID, #11 Unsupported, #13 IncorrectQty, #16 PriceOutsideBand, "
        "#18 PriceOffTick, #60 InvalidSide, #61 InvalidOrdType, #62 InvalidTimeInForce, #63 InvalidExecInst, "
        "#64 InvalidSMPInstruction, #65 PriceRequired, #66 PriceNotAllowed, #68 ExpireDateMismatch, "
        "#69 InvalidMinQty, #70 InvalidMaxFloor, #71 PostOnlyWouldCross, #73 CapacityFull, "
        "#80 InvalidMassCancelRequest, #81 NotionalOverMax, #82 OtherAccount, #100 UserRequest, "
        "#101 IocFokRemainder, #102 SelfMatch, #103 MassCancel, #104 CancelOnDisconnect, #105 Expired, "
        "#106 Admin, #107 MinQtyNotMet"
    ),
}


def _parse(row: str) -> dict[int, str]:
    table = {}
    for item in row.split(", "):
        code, name = item.split(" ", 1)
        table[int(code[1:]) if code.startswith("#") else ord(code)] = name
    return table


@pytest.mark.parametrize("table", sorted(DESIGN_TABLES))
def test_code_table_matches_the_design(table: str) -> None:
    assert codes.NAMES[table] == _parse(DESIGN_TABLES[table])


def test_no_table_is_left_unchecked() -> None:
    assert set(codes.NAMES) == set(DESIGN_TABLES)


@pytest.mark.parametrize(
    ("constant", "value"),
    [
        ("TIF_IOC", ord("3")),
        ("TIF_GTD", ord("6")),
        ("SIDE_SELL", ord("2")),
        ("ORD_TYPE_LIMIT", ord("2")),
        ("EXEC_TYPE_TRADE", ord("F")),
        ("ORD_STATUS_EXPIRED", ord("C")),
        ("SMP_DECREMENT", 4),
        ("EXEC_REASON_INVALID_SMP_INSTRUCTION", 64),
        ("EXEC_REASON_MIN_QTY_NOT_MET", 107),
        ("BRR_CLORDID_NOT_INCREASING", 105),
        ("MEI_END_OF_EVENT", 0x80),
        ("EXEC_INST_RESERVED_MASK", 0xFC),
        ("NULL_PRICE", 2**63 - 1),
        ("NULL_U32", 2**32 - 1),
        ("NULL_U64", 2**64 - 1),
        ("NULL_DATE", 65535),
        ("MAX_MSGS_PER_FRAME", 1091),
    ],
)
def test_named_constants(constant: str, value: int) -> None:
    assert getattr(codes, constant) == value


def test_reason_mappings() -> None:
    assert codes.cxl_rej_reason(codes.EXEC_REASON_UNKNOWN_ORDER) == 1
    assert codes.cxl_rej_reason(codes.EXEC_REASON_PRICE_OUTSIDE_BAND) == 8
    assert codes.cxl_rej_reason(codes.EXEC_REASON_PRICE_OFF_TICK) == 18
    assert codes.cxl_rej_reason(codes.EXEC_REASON_OTHER_ACCOUNT) == 99
    assert codes.mass_cancel_reject_reason(codes.EXEC_REASON_UNKNOWN_SYMBOL) == 1
    assert codes.mass_cancel_reject_reason(codes.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST) == 99
    assert codes.mass_cancel_reject_reason(codes.EXEC_REASON_NONE) == 255
