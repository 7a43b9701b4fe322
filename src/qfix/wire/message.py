"""One message at a time, for the SDK, the CLI and tests: build from keyword arguments,
read back as a plain dict of display values. Not for hot paths (use ``codec`` on arrays).

Prices are ``decimal.Decimal`` here and PRICE9 mantissas on the wire; conversion is
exact or it raises, so no price is ever rounded silently.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.wire import codes, schema
from qfix.wire.codec import new_records

_P9: Final = Decimal(10) ** 9

_SIDES: Final = {"buy": codes.SIDE_BUY, "sell": codes.SIDE_SELL, "both": codes.MASS_CANCEL_SIDE_BOTH}
_ORD_TYPES: Final = {"market": codes.ORD_TYPE_MARKET, "limit": codes.ORD_TYPE_LIMIT}
_TIFS: Final = {
    "day": codes.TIF_DAY,
    "gtc": codes.TIF_GTC,
    "ioc": codes.TIF_IOC,
    "fok": codes.TIF_FOK,
    "gtd": codes.TIF_GTD,
}
_SMP: Final = {
    "cancel-aggressive": codes.SMP_CANCEL_AGGRESSIVE,
    "cancel-passive": codes.SMP_CANCEL_PASSIVE,
    "cancel-both": codes.SMP_CANCEL_BOTH,
    "decrement": codes.SMP_DECREMENT,
    "default": codes.SMP_DEFAULT,
}

#: which code table (codes.NAMES key) a field's values come from, for display
_FIELD_TABLES: Final = {
    "Side": "Side",
    "OrdType": "OrdType",
    "TimeInForce": "TimeInForce",
    "ExecInst": "ExecInst",
    "SelfMatchPreventionInstruction": "SMPInstruction",
    "ExecType": "ExecType",
    "OrdStatus": "OrdStatus",
    "ExecReason": "ExecReason",
    "LastLiquidityInd": "LastLiquidityInd",
    "CxlRejResponseTo": "CxlRejResponseTo",
    "CxlRejReason": "CxlRejReason",
    "MassCancelRequestType": "MassCancelRequestType",
    "MassCancelResponse": "MassCancelResponse",
    "MassCancelRejectReason": "MassCancelRejectReason",
    "BusinessRejectReason": "BusinessRejectReason",
    "RetransmitStatus": "RetransmitStatus",
    "TradingStatus": "TradingStatus",
    "HaltReason": "HaltReason",
    "MDEntryType": "MDEntryType",
    "MDUpdateAction": "MDUpdateAction",
    "AggressorSide": "AggressorSide",
    "TradeCondition": "TradeCondition",
    "ImbalanceSide": "ImbalanceSide",
    "MatchEventIndicator": "MatchEventIndicator",
    "MDFeed": "MDFeed",
    "ChannelEvent": "ChannelEvent",
    "RequestStatus": "RequestStatus",
}
_PRICE_FIELDS: Final = frozenset(
    {
        "Price",
        "LastPx",
        "MDEntryPx",
        "BidPx",
        "OfferPx",
        "IndicativePx",
        "MinPriceIncrement",
        "LowLimitPrice",
        "HighLimitPrice",
    }
)
#: (field, templates where it is optional) -> the null value that displays as None
_NULLS: Final = {
    (field, template_id): null
    for field, template_ids, null in (
        ("Account", (1, 4, 12), codes.NULL_U32),
        ("SecurityID", (4, 12), codes.NULL_U32),
        ("MinQty", (1, 3), codes.NULL_U32),
        ("MaxFloor", (1, 3), codes.NULL_U32),
        ("OrigClOrdID", (2, 11), codes.NULL_U64),
        ("OrderID", (2, 10, 11), codes.NULL_U64),
        ("ExpireDate", (1,), codes.NULL_DATE),
    )
    for template_id in template_ids
}
_MASS_CANCEL_TEMPLATES: Final = frozenset(
    {codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST, codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT}
)


def price_to_p9(price: Decimal | int | str | None) -> int:
    """A decimal price as a PRICE9 mantissa (None -> the null). Raises ValueError if the
    price has more than 9 decimals or does not fit int64."""
    if price is None:
        return codes.NULL_PRICE
    as_decimal = Decimal(price)
    if not as_decimal.is_finite():
        raise ValueError(f"price {price} is not a finite number")
    scaled = as_decimal * _P9
    if scaled != scaled.to_integral_value():
        raise ValueError(f"price {price} has more than 9 decimal places")
    value = int(scaled)
    if not -(2**63) <= value < codes.NULL_PRICE:
        raise ValueError(f"price {price} does not fit PRICE9")
    return value


def p9_to_price(mantissa: int) -> Decimal | None:
    """A PRICE9 mantissa as a Decimal (the null -> None)."""
    if mantissa == codes.NULL_PRICE:
        return None
    price = (Decimal(mantissa) / _P9).normalize()
    # normalize() writes 100 as 1E+2; keep plain notation for whole numbers
    return price.quantize(Decimal(1)) if price == price.to_integral_value() else price


def _code(table: dict[str, int], value: str | int, what: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return table[value.lower()]
    except KeyError:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(table)}") from None


def _opt_u32(value: int | None) -> int:
    return codes.NULL_U32 if value is None else value


def _opt_u64(value: int | None) -> int:
    return codes.NULL_U64 if value is None else value


def new_order_single(
    *,
    cl_ord_id: int,
    security_id: int,
    side: str | int,
    qty: int,
    price: Decimal | int | str | None = None,
    ord_type: str | int | None = None,
    tif: str | int = "day",
    account: int | None = None,
    min_qty: int | None = None,
    max_floor: int | None = None,
    post_only: bool = False,
    smp: str | int = "default",
    expire_date: int | None = None,
    transact_time: int = 0,
) -> np.void:
    """A NewOrderSingle (template 1). ``ord_type`` defaults to limit when a price is given.

    Args:
        cl_ord_id: client order id, strictly increasing per session.
        security_id: instrument id.
        side: "buy", "sell" or the wire code.
        qty: OrderQty in lots.
        price: limit price as a decimal (None for market orders).
        ord_type: "limit", "market" or the wire code.
        tif: "day", "gtc", "ioc", "fok", "gtd" or the wire code.
        account: trading account; None uses the session's account.
        min_qty: minimum quantity on entry, or None.
        max_floor: displayed quantity of an iceberg, or None.
        post_only: ExecInst ParticipateDontInitiate.
        smp: self-match prevention: "cancel-aggressive", "cancel-passive",
            "cancel-both", "decrement" or "default".
        expire_date: GTD expiry as days since 1970-01-01, or None.
        transact_time: client send time, ns since the epoch (informational).
    """
    if ord_type is None:
        ord_type = "market" if price is None else "limit"
    record = new_records(codes.TEMPLATE_NEW_ORDER_SINGLE)[0]
    record["ClOrdID"] = cl_ord_id
    record["TransactTime"] = transact_time
    record["Price"] = price_to_p9(price)
    record["OrderQty"] = qty
    record["SecurityID"] = security_id
    record["Account"] = _opt_u32(account)
    record["MinQty"] = _opt_u32(min_qty)
    record["MaxFloor"] = _opt_u32(max_floor)
    record["Side"] = _code(_SIDES, side, "side")
    record["OrdType"] = _code(_ORD_TYPES, ord_type, "order type")
    record["TimeInForce"] = _code(_TIFS, tif, "time in force")
    record["ExecInst"] = codes.EXEC_INST_POST_ONLY if post_only else 0
    record["SelfMatchPreventionInstruction"] = _code(_SMP, smp, "SMP instruction")
    record["ExpireDate"] = codes.NULL_DATE if expire_date is None else expire_date
    return record  # type: ignore[no-any-return]


def order_cancel_request(
    *,
    cl_ord_id: int,
    security_id: int,
    side: str | int,
    orig_cl_ord_id: int | None = None,
    order_id: int | None = None,
    transact_time: int = 0,
) -> np.void:
    """An OrderCancelRequest (template 2), by OrderID if given, else by OrigClOrdID."""
    record = new_records(codes.TEMPLATE_ORDER_CANCEL_REQUEST)[0]
    record["ClOrdID"] = cl_ord_id
    record["TransactTime"] = transact_time
    record["OrigClOrdID"] = _opt_u64(orig_cl_ord_id)
    record["OrderID"] = _opt_u64(order_id)
    record["SecurityID"] = security_id
    record["Side"] = _code(_SIDES, side, "side")
    return record  # type: ignore[no-any-return]


def order_cancel_replace_request(
    *,
    cl_ord_id: int,
    orig_cl_ord_id: int,
    security_id: int,
    side: str | int,
    qty: int,
    price: Decimal | int | str,
    tif: str | int = "day",
    max_floor: int | None = None,
    post_only: bool = False,
    transact_time: int = 0,
) -> np.void:
    """An OrderCancelReplaceRequest (template 3): new price, total qty and display qty."""
    record = new_records(codes.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST)[0]
    record["ClOrdID"] = cl_ord_id
    record["TransactTime"] = transact_time
    record["OrigClOrdID"] = orig_cl_ord_id
    record["Price"] = price_to_p9(price)
    record["OrderQty"] = qty
    record["SecurityID"] = security_id
    record["MaxFloor"] = _opt_u32(max_floor)
    record["Side"] = _code(_SIDES, side, "side")
    record["OrdType"] = codes.ORD_TYPE_LIMIT
    record["TimeInForce"] = _code(_TIFS, tif, "time in force")
    record["ExecInst"] = codes.EXEC_INST_POST_ONLY if post_only else 0
    record["MinQty"] = codes.NULL_U32
    return record  # type: ignore[no-any-return]


def order_mass_cancel_request(
    *,
    cl_ord_id: int,
    security_id: int | None = None,
    account: int | None = None,
    side: str | int = "both",
    transact_time: int = 0,
) -> np.void:
    """An OrderMassCancelRequest (template 4): one instrument, or all when ``security_id`` is None."""
    record = new_records(codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST)[0]
    record["ClOrdID"] = cl_ord_id
    record["TransactTime"] = transact_time
    record["SecurityID"] = _opt_u32(security_id)
    record["Account"] = _opt_u32(account)
    record["MassCancelRequestType"] = (
        codes.MASS_CANCEL_TYPE_ALL if security_id is None else codes.MASS_CANCEL_TYPE_SECURITY
    )
    record["Side"] = _code(_SIDES, side, "side")
    return record  # type: ignore[no-any-return]


def heartbeat(*, last_exec_id: int = 0, last_cl_ord_id: int = 0, transact_time: int = 0) -> np.void:
    """A Heartbeat (template 20)."""
    record = new_records(codes.TEMPLATE_HEARTBEAT)[0]
    record["LastExecID"] = last_exec_id
    record["TransactTime"] = transact_time
    record["LastClOrdID"] = last_cl_ord_id
    return record  # type: ignore[no-any-return]


def retransmit_request(*, from_exec_id: int, count: int, transact_time: int = 0) -> np.void:
    """A RetransmitRequest (template 21)."""
    record = new_records(codes.TEMPLATE_RETRANSMIT_REQUEST)[0]
    record["FromExecID"] = from_exec_id
    record["TransactTime"] = transact_time
    record["Count"] = count
    return record  # type: ignore[no-any-return]


def template_of(message: bytes | np.void | npt.NDArray[np.uint8]) -> schema.Template:
    """The template of one 60-byte message. Raises KeyError for an unknown templateId."""
    data = bytes(message) if not isinstance(message, np.void) else message.tobytes()
    if len(data) != 60:
        raise ValueError(f"a message is 60 bytes, got {len(data)}")
    return schema.TEMPLATES[int.from_bytes(data[2:4], "little")]


def _display(template_id: int, name: str, code: str, value: Any) -> Any:
    """Display value of one field; ``code`` is its struct code (``c`` = FIX char, ``<n>s``
    = char array: shown as text without its zero padding, other bytes escaped)."""
    if code.endswith("s"):
        return bytes(value).rstrip(b"\x00").decode("ascii", errors="backslashreplace")
    number = int(value)
    if name in _PRICE_FIELDS:
        return p9_to_price(number)
    if _NULLS.get((name, template_id)) == number:
        return None
    table_name = _FIELD_TABLES.get(name)
    if name == "Side" and template_id in _MASS_CANCEL_TEMPLATES:
        table_name = "MassCancelSide"
    if table_name is None:
        return chr(number) if code == "c" else number
    table = codes.NAMES[table_name]
    if table_name in codes.SETS:
        flags = [label for bit, label in sorted(table.items()) if number & bit]
        unknown = number & ~sum(table)
        return "|".join(flags + ([f"0x{unknown:02x}"] if unknown else [])) or "0"
    label = table.get(number, "?")
    return f"{chr(number)} {label}" if code == "c" else f"{number} {label}"


def describe(message: bytes | np.void | npt.NDArray[np.uint8]) -> dict[str, Any]:
    """Field name -> display value of one message (header included, plus ``template``)."""
    template = template_of(message)
    data = message.tobytes() if isinstance(message, np.void) else bytes(message)
    record = np.frombuffer(data, dtype=template.dtype)[0]
    out: dict[str, Any] = {"template": template.name}
    for name, code in template.fields:
        if name != "Reserved":
            out[name] = _display(template.template_id, name, code, record[name])
    return out
