"""Where each wire field sits in the kernels' word views of the INBOUND and OUTPUT records.

Theory of operation: the kernels never go through NumPy's structured dtypes; they see a
buffer as four flat views (int64, uint32, uint16, uint8: ``_views``) and address a field
as ``view[record * words_per_record + index]``. Every index here is derived at import
from ``qfix.wire.schema`` (the one declaration of each template), so a layout change
there moves the kernels with it, and a field that is not naturally aligned for the view
it is read through fails at import instead of reading the wrong bytes. Numba folds these
module-level ints as compile-time constants, so a name costs nothing over a literal.

Suffixes name the view by its ``struct`` code: ``_Q`` int64 words, ``_I`` uint32,
``_H`` uint16, ``_B`` bytes. Prefixes: ``IN_`` the server columns of every inbound
record, ``NOS_``/``OCR_``/``OCRR_``/``OMC_`` the inbound templates, ``ER_``, ``CXL_``,
``OMCR_`` the order-entry outputs, ``MD_`` the fields every market-data record shares,
then one prefix per market-data template.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from qfix.wire import codes, schema

_WIDTH: Final = {"Q": 8, "I": 4, "H": 2, "B": 1}


def _at(dtype: np.dtype[np.void], field: str, view: str) -> int:
    """Index of ``field`` of a record in the ``view`` words (``Q``, ``I``, ``H``, ``B``)."""
    width = _WIDTH[view]
    info = dtype.fields[field] if dtype.fields else None
    if info is None:
        raise AssertionError(f"no field {field}")
    sub, offset = info[:2]
    if offset % width or (view != "B" and sub.itemsize != width):
        raise AssertionError(f"{field} at {offset} ({sub}) is not a {width}-byte word")
    return int(offset) // width


# --- record sizes in each view ----------------------------------------------------
IN_Q: Final = codes.INBOUND_SIZE // 8
IN_I: Final = codes.INBOUND_SIZE // 4
IN_H: Final = codes.INBOUND_SIZE // 2
IN_B: Final = codes.INBOUND_SIZE
OUT_Q: Final = schema.OUTPUT.itemsize // 8
OUT_I: Final = schema.OUTPUT.itemsize // 4
OUT_H: Final = schema.OUTPUT.itemsize // 2
OUT_B: Final = schema.OUTPUT.itemsize

# --- header (both records start with the 8-byte message header) -------------------
HDR_BLOCK_LENGTH_H: Final = _at(schema.HEADER, "blockLength", "H")
HDR_TEMPLATE_ID_H: Final = _at(schema.HEADER, "templateId", "H")
HDR_SCHEMA_ID_H: Final = _at(schema.HEADER, "schemaId", "H")
HDR_VERSION_H: Final = _at(schema.HEADER, "version", "H")

# --- inbound: server columns and the four templates -----------------------------------
_NOS: Final = schema.INBOUND_NEW_ORDER_SINGLE
_OCR: Final = schema.INBOUND_ORDER_CANCEL_REQUEST
_OCRR: Final = schema.INBOUND_ORDER_CANCEL_REPLACE_REQUEST
_OMC: Final = schema.INBOUND_ORDER_MASS_CANCEL_REQUEST

IN_SESSION_I: Final = _at(schema.INBOUND, "SessionID", "I")
IN_SESSION_ACCOUNT_I: Final = _at(schema.INBOUND, "SessionAccount", "I")
IN_RECV_TIME_Q: Final = _at(schema.INBOUND, "RecvTime", "Q")
#: ClOrdID is the first field of every inbound template
IN_CLORDID_Q: Final = _at(_NOS, "ClOrdID", "Q")

NOS_PRICE_Q: Final = _at(_NOS, "Price", "Q")
NOS_QTY_I: Final = _at(_NOS, "OrderQty", "I")
NOS_SECURITY_I: Final = _at(_NOS, "SecurityID", "I")
NOS_ACCOUNT_I: Final = _at(_NOS, "Account", "I")
NOS_MIN_QTY_I: Final = _at(_NOS, "MinQty", "I")
NOS_MAX_FLOOR_I: Final = _at(_NOS, "MaxFloor", "I")
NOS_SIDE_B: Final = _at(_NOS, "Side", "B")
NOS_ORD_TYPE_B: Final = _at(_NOS, "OrdType", "B")
NOS_TIF_B: Final = _at(_NOS, "TimeInForce", "B")
NOS_EXEC_INST_B: Final = _at(_NOS, "ExecInst", "B")
NOS_SMP_B: Final = _at(_NOS, "SelfMatchPreventionInstruction", "B")
NOS_EXPIRE_H: Final = _at(_NOS, "ExpireDate", "H")

OCR_ORIG_CLORDID_Q: Final = _at(_OCR, "OrigClOrdID", "Q")
OCR_ORDER_ID_Q: Final = _at(_OCR, "OrderID", "Q")
OCR_SECURITY_I: Final = _at(_OCR, "SecurityID", "I")
OCR_SIDE_B: Final = _at(_OCR, "Side", "B")

OCRR_ORIG_CLORDID_Q: Final = _at(_OCRR, "OrigClOrdID", "Q")
OCRR_PRICE_Q: Final = _at(_OCRR, "Price", "Q")
OCRR_QTY_I: Final = _at(_OCRR, "OrderQty", "I")
OCRR_SECURITY_I: Final = _at(_OCRR, "SecurityID", "I")
OCRR_MAX_FLOOR_I: Final = _at(_OCRR, "MaxFloor", "I")
OCRR_MIN_QTY_I: Final = _at(_OCRR, "MinQty", "I")
OCRR_SIDE_B: Final = _at(_OCRR, "Side", "B")
OCRR_ORD_TYPE_B: Final = _at(_OCRR, "OrdType", "B")
OCRR_TIF_B: Final = _at(_OCRR, "TimeInForce", "B")
OCRR_EXEC_INST_B: Final = _at(_OCRR, "ExecInst", "B")

OMC_SECURITY_I: Final = _at(_OMC, "SecurityID", "I")
OMC_ACCOUNT_I: Final = _at(_OMC, "Account", "I")
OMC_TYPE_B: Final = _at(_OMC, "MassCancelRequestType", "B")
OMC_SIDE_B: Final = _at(_OMC, "Side", "B")

# ``process`` reads the side of a NewOrderSingle or a replace through one index, and
# every template's ClOrdID through another.
assert NOS_SIDE_B == OCRR_SIDE_B
assert all(_at(d, "ClOrdID", "Q") == IN_CLORDID_Q for d in (_OCR, _OCRR, _OMC))

# --- output: the destination column and the order-entry replies --------------------------
OUT_DEST_I: Final = _at(schema.OUTPUT, "dest", "I")

_ER: Final = schema.EXECUTION_REPORT
_CXL: Final = schema.ORDER_CANCEL_REJECT
_OMCR: Final = schema.ORDER_MASS_CANCEL_REPORT

ER_CLORDID_Q: Final = _at(_ER, "ClOrdID", "Q")
ER_TIME_Q: Final = _at(_ER, "TransactTime", "Q")
ER_ORDER_ID_Q: Final = _at(_ER, "OrderID", "Q")
ER_EXEC_ID_Q: Final = _at(_ER, "ExecID", "Q")
ER_LAST_PX_Q: Final = _at(_ER, "LastPx", "Q")
ER_LAST_QTY_I: Final = _at(_ER, "LastQty", "I")
ER_LEAVES_I: Final = _at(_ER, "LeavesQty", "I")
ER_EXEC_TYPE_B: Final = _at(_ER, "ExecType", "B")
ER_ORD_STATUS_B: Final = _at(_ER, "OrdStatus", "B")
ER_EXEC_REASON_B: Final = _at(_ER, "ExecReason", "B")
ER_LIQUIDITY_B: Final = _at(_ER, "LastLiquidityInd", "B")

CXL_CLORDID_Q: Final = _at(_CXL, "ClOrdID", "Q")
CXL_TIME_Q: Final = _at(_CXL, "TransactTime", "Q")
CXL_ORDER_ID_Q: Final = _at(_CXL, "OrderID", "Q")
CXL_EXEC_ID_Q: Final = _at(_CXL, "ExecID", "Q")
CXL_ORIG_CLORDID_Q: Final = _at(_CXL, "OrigClOrdID", "Q")
CXL_ORD_STATUS_B: Final = _at(_CXL, "OrdStatus", "B")
CXL_RESPONSE_TO_B: Final = _at(_CXL, "CxlRejResponseTo", "B")
CXL_REASON_B: Final = _at(_CXL, "CxlRejReason", "B")
CXL_EXEC_REASON_B: Final = _at(_CXL, "ExecReason", "B")

OMCR_CLORDID_Q: Final = _at(_OMCR, "ClOrdID", "Q")
OMCR_TIME_Q: Final = _at(_OMCR, "TransactTime", "Q")
OMCR_EXEC_ID_Q: Final = _at(_OMCR, "ExecID", "Q")
OMCR_TOTAL_I: Final = _at(_OMCR, "TotalAffectedOrders", "I")
OMCR_SECURITY_I: Final = _at(_OMCR, "SecurityID", "I")
OMCR_TYPE_B: Final = _at(_OMCR, "MassCancelRequestType", "B")
OMCR_RESPONSE_B: Final = _at(_OMCR, "MassCancelResponse", "B")
OMCR_REJECT_REASON_B: Final = _at(_OMCR, "MassCancelRejectReason", "B")
OMCR_EXEC_REASON_B: Final = _at(_OMCR, "ExecReason", "B")
OMCR_ACCOUNT_I: Final = _at(_OMCR, "Account", "I")
OMCR_SIDE_B: Final = _at(_OMCR, "Side", "B")

# --- output: market data ----------------------------------------------------------------
_MD_ALL: Final = tuple(t.dtype for t in schema.TEMPLATES.values() if t.schema_id == codes.SCHEMA_MARKET_DATA)
MD_TIME_Q: Final = _at(schema.ADD_ORDER, "TransactTime", "Q")
MD_SECURITY_I: Final = _at(schema.ADD_ORDER, "SecurityID", "I")
MD_MEI_B: Final = _at(schema.ADD_ORDER, "MatchEventIndicator", "B")
assert all(
    _at(d, "TransactTime", "Q") == MD_TIME_Q
    and _at(d, "SecurityID", "I") == MD_SECURITY_I
    and _at(d, "MatchEventIndicator", "B") == MD_MEI_B
    for d in _MD_ALL
)

ADD_ORDER_ID_Q: Final = _at(schema.ADD_ORDER, "OrderID", "Q")
ADD_PX_Q: Final = _at(schema.ADD_ORDER, "MDEntryPx", "Q")
ADD_SIZE_I: Final = _at(schema.ADD_ORDER, "MDEntrySize", "I")
ADD_ENTRY_TYPE_B: Final = _at(schema.ADD_ORDER, "MDEntryType", "B")

EXE_ORDER_ID_Q: Final = _at(schema.ORDER_EXECUTED, "OrderID", "Q")
EXE_PX_Q: Final = _at(schema.ORDER_EXECUTED, "LastPx", "Q")
EXE_QTY_I: Final = _at(schema.ORDER_EXECUTED, "LastQty", "I")
EXE_LEAVES_I: Final = _at(schema.ORDER_EXECUTED, "LeavesQty", "I")
EXE_TRADE_ID_Q: Final = _at(schema.ORDER_EXECUTED, "TradeID", "Q")
EXE_AGGRESSOR_B: Final = _at(schema.ORDER_EXECUTED, "AggressorSide", "B")

RED_ORDER_ID_Q: Final = _at(schema.ORDER_REDUCED, "OrderID", "Q")
RED_CANCELED_I: Final = _at(schema.ORDER_REDUCED, "CanceledQty", "I")
RED_LEAVES_I: Final = _at(schema.ORDER_REDUCED, "LeavesQty", "I")

DEL_ORDER_ID_Q: Final = _at(schema.ORDER_DELETE, "OrderID", "Q")

RPL_ORIG_ORDER_ID_Q: Final = _at(schema.ORDER_REPLACE, "OrigOrderID", "Q")
RPL_ORDER_ID_Q: Final = _at(schema.ORDER_REPLACE, "OrderID", "Q")
RPL_PX_Q: Final = _at(schema.ORDER_REPLACE, "MDEntryPx", "Q")
RPL_SIZE_I: Final = _at(schema.ORDER_REPLACE, "MDEntrySize", "I")
RPL_ENTRY_TYPE_B: Final = _at(schema.ORDER_REPLACE, "MDEntryType", "B")

TRD_TRADE_ID_Q: Final = _at(schema.TRADE, "TradeID", "Q")
TRD_PX_Q: Final = _at(schema.TRADE, "LastPx", "Q")
TRD_QTY_I: Final = _at(schema.TRADE, "LastQty", "I")
TRD_AGGRESSOR_B: Final = _at(schema.TRADE, "AggressorSide", "B")
TRD_CONDITION_B: Final = _at(schema.TRADE, "TradeCondition", "B")

BL_PX_Q: Final = _at(schema.BOOK_LEVEL, "MDEntryPx", "Q")
BL_SIZE_Q: Final = _at(schema.BOOK_LEVEL, "MDEntrySize", "Q")
BL_COUNT_I: Final = _at(schema.BOOK_LEVEL, "NumberOfOrders", "I")
BL_ENTRY_TYPE_B: Final = _at(schema.BOOK_LEVEL, "MDEntryType", "B")
BL_ACTION_B: Final = _at(schema.BOOK_LEVEL, "MDUpdateAction", "B")

BBO_BID_PX_Q: Final = _at(schema.BEST_BID_OFFER, "BidPx", "Q")
BBO_OFFER_PX_Q: Final = _at(schema.BEST_BID_OFFER, "OfferPx", "Q")
BBO_BID_SIZE_Q: Final = _at(schema.BEST_BID_OFFER, "BidSize", "Q")
BBO_OFFER_SIZE_Q: Final = _at(schema.BEST_BID_OFFER, "OfferSize", "Q")

SS_STATUS_B: Final = _at(schema.SECURITY_STATUS, "TradingStatus", "B")
SS_HALT_REASON_B: Final = _at(schema.SECURITY_STATUS, "HaltReason", "B")

IND_PX_Q: Final = _at(schema.INDICATIVE_AUCTION, "IndicativePx", "Q")
IND_MATCHED_Q: Final = _at(schema.INDICATIVE_AUCTION, "MatchedQty", "Q")
IND_IMBALANCE_Q: Final = _at(schema.INDICATIVE_AUCTION, "ImbalanceQty", "Q")
IND_SIDE_B: Final = _at(schema.INDICATIVE_AUCTION, "ImbalanceSide", "B")

__all__ = [name for name in dir() if name.isupper() and not name.startswith("_")]
