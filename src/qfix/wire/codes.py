"""Every code of the wire format in one place (WIRE.md §4), as plain ints.

Plain module-level ints (not IntEnum members) so that Numba kernels fold them as
compile-time constants. Char enums hold the ASCII code of the FIX character
(``SIDE_BUY = 0x31`` is ``'1'``), which is how the dtypes view char fields (``u1``).
``NAMES`` maps each table to {code: name} with the design's names, for display.
"""

from __future__ import annotations

from typing import Final

# --- schema identity -------------------------------------------------------------
BLOCK_LENGTH: Final = 52  #: every block is 52 bytes after the 8-byte header
MESSAGE_SIZE: Final = 60  #: header + block
INBOUND_SIZE: Final = 80  #: message + SessionID, SessionAccount, Reserved, RecvTime
SCHEMA_ORDER_ENTRY: Final = 60  #: schemaId of order entry
SCHEMA_MARKET_DATA: Final = 61  #: schemaId of market data
SCHEMA_VERSION: Final = 0  #: the only version this codec speaks
MAX_MSGS_PER_FRAME: Final = 1091  #: 1091 x 60 B + 26 B QZMQ overhead <= 65,536 B

# --- nulls -----------------------------------------------------------------------
NULL_U32: Final = 0xFFFF_FFFF  #: u32NULL, QtyNULL
NULL_U64: Final = 0xFFFF_FFFF_FFFF_FFFF  #: u64NULL
NULL_PRICE: Final = 0x7FFF_FFFF_FFFF_FFFF  #: PRICENULL9 mantissa
NULL_DATE: Final = 0xFFFF  #: Date
NULL_U8: Final = 0xFF  #: "None"/"Default" in u8 enums (SMP, LastLiquidityInd, ...)
MD_DEST: Final = 0xFFFF_FFFF  #: engine output ``dest`` of market-data records

# --- template ids ----------------------------------------------------------------
TEMPLATE_NEW_ORDER_SINGLE: Final = 1
TEMPLATE_ORDER_CANCEL_REQUEST: Final = 2
TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST: Final = 3
TEMPLATE_ORDER_MASS_CANCEL_REQUEST: Final = 4
TEMPLATE_EXECUTION_REPORT: Final = 10
TEMPLATE_ORDER_CANCEL_REJECT: Final = 11
TEMPLATE_ORDER_MASS_CANCEL_REPORT: Final = 12
TEMPLATE_BUSINESS_MESSAGE_REJECT: Final = 13
TEMPLATE_HEARTBEAT: Final = 20
TEMPLATE_RETRANSMIT_REQUEST: Final = 21
TEMPLATE_RETRANSMIT_COMPLETE: Final = 22
TEMPLATE_SECURITY_STATUS: Final = 30
TEMPLATE_ADD_ORDER: Final = 31
TEMPLATE_ORDER_EXECUTED: Final = 32
TEMPLATE_ORDER_REDUCED: Final = 33
TEMPLATE_ORDER_DELETE: Final = 34
TEMPLATE_ORDER_REPLACE: Final = 35
TEMPLATE_TRADE: Final = 36
TEMPLATE_BOOK_LEVEL: Final = 37
TEMPLATE_BEST_BID_OFFER: Final = 38
TEMPLATE_SNAPSHOT_START: Final = 39
TEMPLATE_SNAPSHOT_ORDER: Final = 40
TEMPLATE_SNAPSHOT_END: Final = 41
TEMPLATE_CHANNEL_HEARTBEAT: Final = 42
TEMPLATE_SNAPSHOT_REQUEST: Final = 43
TEMPLATE_REPLAY_REQUEST: Final = 44
TEMPLATE_REQUEST_COMPLETE: Final = 45
TEMPLATE_INDICATIVE_AUCTION: Final = 46
#: reference data: symbol, tick (MinPriceIncrement), MaxTradeVol, RoundLot, TradingStatus
TEMPLATE_SECURITY_DEFINITION: Final = 47
#: reference data: limit-price band edges, MaxNotional and market-order collar
TEMPLATE_SECURITY_LIMITS: Final = 48

#: client-to-server templates of schema 60 (stage H, reason 106 for the others)
CLIENT_TEMPLATES: Final = frozenset({1, 2, 3, 4, 20, 21})
#: server-to-client templates of schema 60
SERVER_TEMPLATES: Final = frozenset({10, 11, 12, 13, 20, 22})

# --- Side (54), MassCancelSide ----------------------------------------------------
SIDE_BUY: Final = 0x31  #: '1'
SIDE_SELL: Final = 0x32  #: '2'
MASS_CANCEL_SIDE_BOTH: Final = 0x30  #: '0'

# --- OrdType (40) ------------------------------------------------------------------
ORD_TYPE_MARKET: Final = 0x31  #: '1'
ORD_TYPE_LIMIT: Final = 0x32  #: '2'
ORD_TYPE_STOP: Final = 0x33  #: '3' reserved: rejected with Unsupported
ORD_TYPE_STOP_LIMIT: Final = 0x34  #: '4' reserved: rejected with Unsupported

# --- TimeInForce (59) --------------------------------------------------------------
TIF_DAY: Final = 0x30  #: '0'
TIF_GTC: Final = 0x31  #: '1' GoodTillCancel
TIF_IOC: Final = 0x33  #: '3' ImmediateOrCancel
TIF_FOK: Final = 0x34  #: '4' FillOrKill
TIF_GTD: Final = 0x36  #: '6' GoodTillDate

# --- ExecInst (18), a u8 set ---------------------------------------------------------
EXEC_INST_POST_ONLY: Final = 0x01  #: bit 0 ParticipateDontInitiate
EXEC_INST_ALL_OR_NONE: Final = 0x02  #: bit 1 reserved in v0: rejected with Unsupported
EXEC_INST_RESERVED_MASK: Final = 0xFC  #: bits 2-7 must be zero

# --- SelfMatchPreventionInstruction (2964) -------------------------------------------
SMP_CANCEL_AGGRESSIVE: Final = 1
SMP_CANCEL_PASSIVE: Final = 2
SMP_CANCEL_BOTH: Final = 3
SMP_DECREMENT: Final = 4
SMP_DEFAULT: Final = 255  #: the instrument's DefaultStp

# --- ExecType (150) ----------------------------------------------------------------
EXEC_TYPE_NEW: Final = 0x30  #: '0'
EXEC_TYPE_CANCELED: Final = 0x34  #: '4'
EXEC_TYPE_REPLACED: Final = 0x35  #: '5'
EXEC_TYPE_REJECTED: Final = 0x38  #: '8'
EXEC_TYPE_EXPIRED: Final = 0x43  #: 'C'
EXEC_TYPE_RESTATED: Final = 0x44  #: 'D'
EXEC_TYPE_TRADE: Final = 0x46  #: 'F'

# --- OrdStatus (39) ----------------------------------------------------------------
ORD_STATUS_NEW: Final = 0x30  #: '0'
ORD_STATUS_PARTIALLY_FILLED: Final = 0x31  #: '1'
ORD_STATUS_FILLED: Final = 0x32  #: '2'
ORD_STATUS_CANCELED: Final = 0x34  #: '4'
ORD_STATUS_REJECTED: Final = 0x38  #: '8'
ORD_STATUS_EXPIRED: Final = 0x43  #: 'C'

# --- LastLiquidityInd (851) --------------------------------------------------------
LIQUIDITY_ADDED: Final = 1
LIQUIDITY_REMOVED: Final = 2
LIQUIDITY_AUCTION: Final = 4
LIQUIDITY_NONE: Final = 255

# --- CxlRejResponseTo (434), CxlRejReason (102) --------------------------------------
CXL_REJ_RESPONSE_TO_CANCEL: Final = 0x31  #: '1'
CXL_REJ_RESPONSE_TO_REPLACE: Final = 0x32  #: '2'
CXL_REJ_REASON_UNKNOWN_ORDER: Final = 1
CXL_REJ_REASON_PRICE_BAND: Final = 8
CXL_REJ_REASON_PRICE_INCREMENT: Final = 18
CXL_REJ_REASON_OTHER: Final = 99

# --- mass cancel (530, 531, 532) -----------------------------------------------------
MASS_CANCEL_TYPE_SECURITY: Final = 0x31  #: '1' CancelOrdersForSecurity
MASS_CANCEL_TYPE_ALL: Final = 0x37  #: '7' CancelAllOrders
MASS_CANCEL_RESPONSE_REJECTED: Final = 0x30  #: '0'
MASS_CANCEL_RESPONSE_SECURITY: Final = 0x31  #: '1'
MASS_CANCEL_RESPONSE_ALL: Final = 0x37  #: '7'
MASS_CANCEL_REJECT_UNKNOWN_SECURITY: Final = 1
MASS_CANCEL_REJECT_OTHER: Final = 99
MASS_CANCEL_REJECT_NONE: Final = 255

# --- BusinessRejectReason (380) --------------------------------------------------------
BRR_OTHER: Final = 0
BRR_UNSUPPORTED_MESSAGE_TYPE: Final = 3  #: unknown templateId
BRR_APPLICATION_NOT_AVAILABLE: Final = 4
BRR_BAD_FRAME_LENGTH: Final = 100
BRR_WRONG_SCHEMA: Final = 101
BRR_WRONG_VERSION: Final = 102
BRR_BAD_BLOCK_LENGTH: Final = 103
BRR_NONZERO_RESERVED: Final = 104
BRR_CLORDID_NOT_INCREASING: Final = 105
BRR_WRONG_DIRECTION: Final = 106
BRR_INVALID_FIELD_VALUE: Final = 107
BRR_UNKNOWN_ACCOUNT: Final = 108
#: RefMsgIndex of a whole-frame refusal
REF_MSG_INDEX_WHOLE_FRAME: Final = 0xFFFF

# --- RetransmitStatus (5115) -----------------------------------------------------------
RETRANSMIT_COMPLETED: Final = 0
RETRANSMIT_TRUNCATED: Final = 1
RETRANSMIT_UNAVAILABLE: Final = 2

# --- TradingStatus (326), HaltReason (327) ---------------------------------------------
TRADING_STATUS_HALT: Final = 2
TRADING_STATUS_CONTINUOUS: Final = 17
TRADING_STATUS_CLOSED: Final = 18
TRADING_STATUS_PRE_OPEN: Final = 21
TRADING_STATUS_BATCH_AUCTION: Final = 100
TRADING_STATUS_PRE_CLOSE: Final = 101
HALT_REASON_NONE: Final = 0
HALT_REASON_OPERATOR: Final = 1
HALT_REASON_VOLATILITY: Final = 2  #: reserved
HALT_REASON_SCHEDULE: Final = 3  #: reserved

# --- market data enums -----------------------------------------------------------------
MD_ENTRY_BID: Final = 0x30  #: '0'
MD_ENTRY_OFFER: Final = 0x31  #: '1'
MD_UPDATE_NEW: Final = 0
MD_UPDATE_CHANGE: Final = 1
MD_UPDATE_DELETE: Final = 2
AGGRESSOR_NONE: Final = 0
AGGRESSOR_BUY: Final = 1
AGGRESSOR_SELL: Final = 2
TRADE_CONDITION_REGULAR: Final = 0
TRADE_CONDITION_AUCTION: Final = 1
IMBALANCE_NONE: Final = 0
IMBALANCE_BUY: Final = 1
IMBALANCE_SELL: Final = 2
MEI_LAST_TRADE_MSG: Final = 0x01  #: bit 0
MEI_RECOVERY_MSG: Final = 0x20  #: bit 5
MEI_END_OF_EVENT: Final = 0x80  #: bit 7
MEI_DEFINED_MASK: Final = 0xA1
MD_FEED_L3: Final = 1
MD_FEED_L2: Final = 2
MD_FEED_BBO: Final = 3
MD_FEED_TRD: Final = 4
CHANNEL_EVENT_HEARTBEAT: Final = 0
CHANNEL_EVENT_RESET: Final = 1
REQUEST_COMPLETED: Final = 0
REQUEST_TRUNCATED: Final = 1
REQUEST_UNAVAILABLE: Final = 2
REQUEST_INVALID: Final = 3
REQUEST_BUSY: Final = 4

# --- ExecReason (5101) -------------------------------------------------------------------
EXEC_REASON_NONE: Final = 0
EXEC_REASON_UNKNOWN_SYMBOL: Final = 1
EXEC_REASON_TRADING_STATE_NOT_OPEN: Final = 2
EXEC_REASON_QTY_OVER_MAX: Final = 3
EXEC_REASON_INVALID_EXPIRE_DATE: Final = 4
EXEC_REASON_UNKNOWN_ORDER: Final = 5
EXEC_REASON_DUPLICATE_CLORDID: Final = 6
EXEC_REASON_UNSUPPORTED: Final = 11
EXEC_REASON_INCORRECT_QTY: Final = 13
EXEC_REASON_PRICE_OUTSIDE_BAND: Final = 16
EXEC_REASON_PRICE_OFF_TICK: Final = 18
EXEC_REASON_INVALID_SIDE: Final = 60
EXEC_REASON_INVALID_ORD_TYPE: Final = 61
EXEC_REASON_INVALID_TIME_IN_FORCE: Final = 62
EXEC_REASON_INVALID_EXEC_INST: Final = 63
EXEC_REASON_INVALID_SMP_INSTRUCTION: Final = 64
EXEC_REASON_PRICE_REQUIRED: Final = 65
EXEC_REASON_PRICE_NOT_ALLOWED: Final = 66
EXEC_REASON_EXPIRE_DATE_MISMATCH: Final = 68
EXEC_REASON_INVALID_MIN_QTY: Final = 69
EXEC_REASON_INVALID_MAX_FLOOR: Final = 70
EXEC_REASON_POST_ONLY_WOULD_CROSS: Final = 71
EXEC_REASON_CAPACITY_FULL: Final = 73
EXEC_REASON_INVALID_MASS_CANCEL_REQUEST: Final = 80
EXEC_REASON_NOTIONAL_OVER_MAX: Final = 81
EXEC_REASON_OTHER_ACCOUNT: Final = 82
EXEC_REASON_USER_REQUEST: Final = 100
EXEC_REASON_IOC_FOK_REMAINDER: Final = 101
EXEC_REASON_SELF_MATCH: Final = 102
EXEC_REASON_MASS_CANCEL: Final = 103
EXEC_REASON_CANCEL_ON_DISCONNECT: Final = 104
EXEC_REASON_EXPIRED: Final = 105
EXEC_REASON_ADMIN: Final = 106
EXEC_REASON_MIN_QTY_NOT_MET: Final = 107


def cxl_rej_reason(exec_reason: int) -> int:
    """CxlRejReason for an OrderCancelReject carrying ``exec_reason`` (WIRE.md §4)."""
    return {
        EXEC_REASON_UNKNOWN_ORDER: CXL_REJ_REASON_UNKNOWN_ORDER,
        EXEC_REASON_PRICE_OUTSIDE_BAND: CXL_REJ_REASON_PRICE_BAND,
        EXEC_REASON_PRICE_OFF_TICK: CXL_REJ_REASON_PRICE_INCREMENT,
    }.get(exec_reason, CXL_REJ_REASON_OTHER)


def mass_cancel_reject_reason(exec_reason: int) -> int:
    """MassCancelRejectReason for a refused OrderMassCancelRequest (WIRE.md §4)."""
    if exec_reason == EXEC_REASON_NONE:
        return MASS_CANCEL_REJECT_NONE
    if exec_reason == EXEC_REASON_UNKNOWN_SYMBOL:
        return MASS_CANCEL_REJECT_UNKNOWN_SECURITY
    return MASS_CANCEL_REJECT_OTHER


#: display names per code table (WIRE.md §4 names), for pretty-printing and docs
NAMES: Final[dict[str, dict[int, str]]] = {
    "Side": {SIDE_BUY: "Buy", SIDE_SELL: "Sell"},
    "MassCancelSide": {MASS_CANCEL_SIDE_BOTH: "Both", SIDE_BUY: "Buy", SIDE_SELL: "Sell"},
    "OrdType": {
        ORD_TYPE_MARKET: "Market",
        ORD_TYPE_LIMIT: "Limit",
        ORD_TYPE_STOP: "Stop",
        ORD_TYPE_STOP_LIMIT: "StopLimit",
    },
    "TimeInForce": {
        TIF_DAY: "Day",
        TIF_GTC: "GoodTillCancel",
        TIF_IOC: "ImmediateOrCancel",
        TIF_FOK: "FillOrKill",
        TIF_GTD: "GoodTillDate",
    },
    "ExecInst": {EXEC_INST_POST_ONLY: "ParticipateDontInitiate", EXEC_INST_ALL_OR_NONE: "AllOrNone"},
    "SMPInstruction": {
        SMP_CANCEL_AGGRESSIVE: "CancelAggressive",
        SMP_CANCEL_PASSIVE: "CancelPassive",
        SMP_CANCEL_BOTH: "CancelBoth",
        SMP_DECREMENT: "Decrement",
        SMP_DEFAULT: "Default",
    },
    "ExecType": {
        EXEC_TYPE_NEW: "New",
        EXEC_TYPE_CANCELED: "Canceled",
        EXEC_TYPE_REPLACED: "Replaced",
        EXEC_TYPE_REJECTED: "Rejected",
        EXEC_TYPE_EXPIRED: "Expired",
        EXEC_TYPE_RESTATED: "Restated",
        EXEC_TYPE_TRADE: "Trade",
    },
    "OrdStatus": {
        ORD_STATUS_NEW: "New",
        ORD_STATUS_PARTIALLY_FILLED: "PartiallyFilled",
        ORD_STATUS_FILLED: "Filled",
        ORD_STATUS_CANCELED: "Canceled",
        ORD_STATUS_REJECTED: "Rejected",
        ORD_STATUS_EXPIRED: "Expired",
    },
    "LastLiquidityInd": {
        LIQUIDITY_ADDED: "AddedLiquidity",
        LIQUIDITY_REMOVED: "RemovedLiquidity",
        LIQUIDITY_AUCTION: "Auction",
        LIQUIDITY_NONE: "None",
    },
    "CxlRejResponseTo": {
        CXL_REJ_RESPONSE_TO_CANCEL: "OrderCancelRequest",
        CXL_REJ_RESPONSE_TO_REPLACE: "OrderCancelReplaceRequest",
    },
    "CxlRejReason": {
        CXL_REJ_REASON_UNKNOWN_ORDER: "UnknownOrder",
        CXL_REJ_REASON_PRICE_BAND: "PriceExceedsCurrentPriceBand",
        CXL_REJ_REASON_PRICE_INCREMENT: "InvalidPriceIncrement",
        CXL_REJ_REASON_OTHER: "Other",
    },
    "MassCancelRequestType": {
        MASS_CANCEL_TYPE_SECURITY: "CancelOrdersForSecurity",
        MASS_CANCEL_TYPE_ALL: "CancelAllOrders",
    },
    "MassCancelResponse": {
        MASS_CANCEL_RESPONSE_REJECTED: "CancelRequestRejected",
        MASS_CANCEL_RESPONSE_SECURITY: "CancelOrdersForSecurity",
        MASS_CANCEL_RESPONSE_ALL: "CancelAllOrders",
    },
    "MassCancelRejectReason": {
        MASS_CANCEL_REJECT_UNKNOWN_SECURITY: "InvalidOrUnknownSecurity",
        MASS_CANCEL_REJECT_OTHER: "Other",
        MASS_CANCEL_REJECT_NONE: "None",
    },
    "BusinessRejectReason": {
        BRR_OTHER: "Other",
        BRR_UNSUPPORTED_MESSAGE_TYPE: "UnsupportedMessageType",
        BRR_APPLICATION_NOT_AVAILABLE: "ApplicationNotAvailable",
        BRR_BAD_FRAME_LENGTH: "BadFrameLength",
        BRR_WRONG_SCHEMA: "WrongSchema",
        BRR_WRONG_VERSION: "WrongVersion",
        BRR_BAD_BLOCK_LENGTH: "BadBlockLength",
        BRR_NONZERO_RESERVED: "NonzeroReserved",
        BRR_CLORDID_NOT_INCREASING: "ClOrdIDNotIncreasing",
        BRR_WRONG_DIRECTION: "WrongDirection",
        BRR_INVALID_FIELD_VALUE: "InvalidFieldValue",
        BRR_UNKNOWN_ACCOUNT: "UnknownAccount",
    },
    "RetransmitStatus": {
        RETRANSMIT_COMPLETED: "Completed",
        RETRANSMIT_TRUNCATED: "Truncated",
        RETRANSMIT_UNAVAILABLE: "Unavailable",
    },
    "TradingStatus": {
        TRADING_STATUS_HALT: "Halt",
        TRADING_STATUS_CONTINUOUS: "Continuous",
        TRADING_STATUS_CLOSED: "Closed",
        TRADING_STATUS_PRE_OPEN: "PreOpen",
        TRADING_STATUS_BATCH_AUCTION: "BatchAuction",
        TRADING_STATUS_PRE_CLOSE: "PreClose",
    },
    "HaltReason": {
        HALT_REASON_NONE: "None",
        HALT_REASON_OPERATOR: "Operator",
        HALT_REASON_VOLATILITY: "Volatility",
        HALT_REASON_SCHEDULE: "Schedule",
    },
    "MDEntryType": {MD_ENTRY_BID: "Bid", MD_ENTRY_OFFER: "Offer"},
    "MDUpdateAction": {MD_UPDATE_NEW: "New", MD_UPDATE_CHANGE: "Change", MD_UPDATE_DELETE: "Delete"},
    "AggressorSide": {AGGRESSOR_NONE: "None", AGGRESSOR_BUY: "Buy", AGGRESSOR_SELL: "Sell"},
    "TradeCondition": {TRADE_CONDITION_REGULAR: "Regular", TRADE_CONDITION_AUCTION: "Auction"},
    "ImbalanceSide": {IMBALANCE_NONE: "None", IMBALANCE_BUY: "Buy", IMBALANCE_SELL: "Sell"},
    "MatchEventIndicator": {
        MEI_LAST_TRADE_MSG: "LastTradeMsg",
        MEI_RECOVERY_MSG: "RecoveryMsg",
        MEI_END_OF_EVENT: "EndOfEvent",
    },
    "MDFeed": {MD_FEED_L3: "L3", MD_FEED_L2: "L2", MD_FEED_BBO: "BBO", MD_FEED_TRD: "TRD"},
    "ChannelEvent": {CHANNEL_EVENT_HEARTBEAT: "Heartbeat", CHANNEL_EVENT_RESET: "Reset"},
    "RequestStatus": {
        REQUEST_COMPLETED: "Completed",
        REQUEST_TRUNCATED: "Truncated",
        REQUEST_UNAVAILABLE: "Unavailable",
        REQUEST_INVALID: "Invalid",
        REQUEST_BUSY: "Busy",
    },
    "ExecReason": {
        EXEC_REASON_NONE: "None",
        EXEC_REASON_UNKNOWN_SYMBOL: "UnknownSymbol",
        EXEC_REASON_TRADING_STATE_NOT_OPEN: "TradingStateNotOpen",
        EXEC_REASON_QTY_OVER_MAX: "QtyOverMax",
        EXEC_REASON_INVALID_EXPIRE_DATE: "InvalidExpireDate",
        EXEC_REASON_UNKNOWN_ORDER: "UnknownOrder",
        EXEC_REASON_DUPLICATE_CLORDID: "DuplicateClOrdID",
        EXEC_REASON_UNSUPPORTED: "Unsupported",
        EXEC_REASON_INCORRECT_QTY: "IncorrectQty",
        EXEC_REASON_PRICE_OUTSIDE_BAND: "PriceOutsideBand",
        EXEC_REASON_PRICE_OFF_TICK: "PriceOffTick",
        EXEC_REASON_INVALID_SIDE: "InvalidSide",
        EXEC_REASON_INVALID_ORD_TYPE: "InvalidOrdType",
        EXEC_REASON_INVALID_TIME_IN_FORCE: "InvalidTimeInForce",
        EXEC_REASON_INVALID_EXEC_INST: "InvalidExecInst",
        EXEC_REASON_INVALID_SMP_INSTRUCTION: "InvalidSMPInstruction",
        EXEC_REASON_PRICE_REQUIRED: "PriceRequired",
        EXEC_REASON_PRICE_NOT_ALLOWED: "PriceNotAllowed",
        EXEC_REASON_EXPIRE_DATE_MISMATCH: "ExpireDateMismatch",
        EXEC_REASON_INVALID_MIN_QTY: "InvalidMinQty",
        EXEC_REASON_INVALID_MAX_FLOOR: "InvalidMaxFloor",
        EXEC_REASON_POST_ONLY_WOULD_CROSS: "PostOnlyWouldCross",
        EXEC_REASON_CAPACITY_FULL: "CapacityFull",
        EXEC_REASON_INVALID_MASS_CANCEL_REQUEST: "InvalidMassCancelRequest",
        EXEC_REASON_NOTIONAL_OVER_MAX: "NotionalOverMax",
        EXEC_REASON_OTHER_ACCOUNT: "OtherAccount",
        EXEC_REASON_USER_REQUEST: "UserRequest",
        EXEC_REASON_IOC_FOK_REMAINDER: "IocFokRemainder",
        EXEC_REASON_SELF_MATCH: "SelfMatch",
        EXEC_REASON_MASS_CANCEL: "MassCancel",
        EXEC_REASON_CANCEL_ON_DISCONNECT: "CancelOnDisconnect",
        EXEC_REASON_EXPIRED: "Expired",
        EXEC_REASON_ADMIN: "Admin",
        EXEC_REASON_MIN_QTY_NOT_MET: "MinQtyNotMet",
    },
}

#: the sets among NAMES (values are bit flags, not codes)
SETS: Final = frozenset({"ExecInst", "MatchEventIndicator"})
