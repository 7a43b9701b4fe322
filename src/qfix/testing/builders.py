"""Builders of single 80-byte inbound records (WIRE.md §6.1) for tests and generators.

Each builder returns a 1-element array of dtype ``wire.schema.INBOUND`` so records can be
joined with :func:`batch`. Prices are wire PRICE9 mantissas (with tick size 1 they equal
ticks); ``None`` means the field's null. Unless given, SessionAccount is
``default_account(session)`` and Account is null (the engine then uses SessionAccount).
"""

from __future__ import annotations

import numpy as np

from qfix.engine.contract import STATUS_OK, MatchingEngine
from qfix.wire import codes, schema

__all__ = [
    "assert_chain",
    "batch",
    "cancel",
    "decode",
    "default_account",
    "mass_cancel",
    "new_order",
    "process_decoded",
    "replace",
]


def default_account(session: int) -> int:
    """SessionAccount the builders attach to ``session`` unless told otherwise."""
    return 1000 + session


def _u32(value: int | None) -> int:
    return codes.NULL_U32 if value is None else value


def _record(template_id: int, session: int, session_account: int | None, recv_time: int) -> np.ndarray:
    rec = np.zeros(1, dtype=schema.INBOUND_BY_TEMPLATE[template_id])
    rec["blockLength"] = codes.BLOCK_LENGTH
    rec["templateId"] = template_id
    rec["schemaId"] = codes.SCHEMA_ORDER_ENTRY
    rec["version"] = codes.SCHEMA_VERSION
    rec["SessionID"] = session
    rec["SessionAccount"] = default_account(session) if session_account is None else session_account
    rec["RecvTime"] = recv_time
    return rec


def new_order(
    clordid: int,
    *,
    side: int = codes.SIDE_BUY,
    price: int | None = 100,
    qty: int = 10,
    sec: int = 1,
    session: int = 0,
    session_account: int | None = None,
    account: int | None = None,
    ord_type: int | None = None,
    tif: int = codes.TIF_DAY,
    exec_inst: int = 0,
    smp: int = codes.SMP_DEFAULT,
    min_qty: int | None = None,
    max_floor: int | None = None,
    expire_date: int | None = None,
    recv_time: int = 0,
    transact_time: int = 0,
) -> np.ndarray:
    """NewOrderSingle; ``ord_type`` defaults to Limit if ``price`` is given, else Market."""
    rec = _record(codes.TEMPLATE_NEW_ORDER_SINGLE, session, session_account, recv_time)
    rec["ClOrdID"] = clordid
    rec["TransactTime"] = transact_time
    rec["Price"] = codes.NULL_PRICE if price is None else price
    rec["OrderQty"] = qty
    rec["SecurityID"] = sec
    rec["Account"] = _u32(account)
    rec["MinQty"] = _u32(min_qty)
    rec["MaxFloor"] = _u32(max_floor)
    rec["Side"] = side
    if ord_type is None:
        ord_type = codes.ORD_TYPE_MARKET if price is None else codes.ORD_TYPE_LIMIT
    rec["OrdType"] = ord_type
    rec["TimeInForce"] = tif
    rec["ExecInst"] = exec_inst
    rec["SelfMatchPreventionInstruction"] = smp
    rec["ExpireDate"] = codes.NULL_DATE if expire_date is None else expire_date
    return rec.view(schema.INBOUND)


def cancel(
    clordid: int,
    *,
    order_id: int | None = None,
    orig_clordid: int | None = None,
    side: int = codes.SIDE_BUY,
    sec: int = 1,
    session: int = 0,
    session_account: int | None = None,
    recv_time: int = 0,
) -> np.ndarray:
    """OrderCancelRequest by OrderID (if given) or by the session's OrigClOrdID."""
    rec = _record(codes.TEMPLATE_ORDER_CANCEL_REQUEST, session, session_account, recv_time)
    rec["ClOrdID"] = clordid
    rec["OrigClOrdID"] = codes.NULL_U64 if orig_clordid is None else orig_clordid
    rec["OrderID"] = codes.NULL_U64 if order_id is None else order_id
    rec["SecurityID"] = sec
    rec["Side"] = side
    return rec.view(schema.INBOUND)


def replace(
    clordid: int,
    orig_clordid: int,
    *,
    price: int | None = 100,
    qty: int = 10,
    side: int = codes.SIDE_BUY,
    sec: int = 1,
    session: int = 0,
    session_account: int | None = None,
    ord_type: int = codes.ORD_TYPE_LIMIT,
    tif: int = codes.TIF_DAY,
    exec_inst: int = 0,
    max_floor: int | None = None,
    min_qty: int | None = None,
    recv_time: int = 0,
) -> np.ndarray:
    """OrderCancelReplaceRequest (``qty`` is the new total OrderQty)."""
    rec = _record(codes.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST, session, session_account, recv_time)
    rec["ClOrdID"] = clordid
    rec["OrigClOrdID"] = orig_clordid
    rec["Price"] = codes.NULL_PRICE if price is None else price
    rec["OrderQty"] = qty
    rec["SecurityID"] = sec
    rec["MaxFloor"] = _u32(max_floor)
    rec["Side"] = side
    rec["OrdType"] = ord_type
    rec["TimeInForce"] = tif
    rec["ExecInst"] = exec_inst
    rec["MinQty"] = _u32(min_qty)
    return rec.view(schema.INBOUND)


def mass_cancel(
    clordid: int,
    *,
    sec: int | None = None,
    request_type: int | None = None,
    side: int = codes.MASS_CANCEL_SIDE_BOTH,
    account: int | None = None,
    session: int = 0,
    session_account: int | None = None,
    recv_time: int = 0,
) -> np.ndarray:
    """OrderMassCancelRequest; the type defaults to per-security if ``sec`` is given, else all."""
    rec = _record(codes.TEMPLATE_ORDER_MASS_CANCEL_REQUEST, session, session_account, recv_time)
    rec["ClOrdID"] = clordid
    rec["SecurityID"] = _u32(sec)
    rec["Account"] = _u32(account)
    if request_type is None:
        request_type = codes.MASS_CANCEL_TYPE_ALL if sec is None else codes.MASS_CANCEL_TYPE_SECURITY
    rec["MassCancelRequestType"] = request_type
    rec["Side"] = side
    return rec.view(schema.INBOUND)


def batch(*records: np.ndarray) -> np.ndarray:
    """Concatenate inbound records (each a 1-element or longer INBOUND array)."""
    if not records:
        return np.zeros(0, dtype=schema.INBOUND)
    return np.concatenate([np.asarray(r).view(schema.INBOUND).reshape(-1) for r in records])


def decode(message: bytes, dest: int | None = None) -> dict[str, int | str]:
    """One 60-byte output (or any) message as {field: int} plus ``template`` (its name) and,
    if given, ``dest``; Reserved bytes are left out."""
    template_id = int.from_bytes(message[2:4], "little")
    tmpl = schema.TEMPLATES[template_id]
    rec = np.frombuffer(bytes(message[:60]), dtype=tmpl.dtype)[0]
    out: dict[str, int | str] = {"template": tmpl.name}
    for name in tmpl.dtype.names or ():
        if name != "Reserved":
            out[name] = int(rec[name])
    if dest is not None:
        out["dest"] = dest
    return out


def process_decoded(
    engine: MatchingEngine, *records: np.ndarray, out_size: int = 1 << 16
) -> list[dict[str, int | str]]:
    """Process ``records`` as one batch and return the decoded outputs (with ``dest``)."""
    out = np.zeros(out_size, dtype=schema.OUTPUT)
    res = engine.process(batch(*records), out)
    if res.status != STATUS_OK:
        raise RuntimeError(f"process stopped early: {res}")
    return [decode(out["message"][k].tobytes(), int(out["dest"][k])) for k in range(res.written)]


def assert_chain(actual: list[dict[str, int | str]], expected: list[dict[str, int | str]]) -> None:
    """Assert ``actual`` has exactly len(expected) records and each contains its expected fields."""
    lines = []
    ok = len(actual) == len(expected)
    for i in range(max(len(actual), len(expected))):
        got = actual[i] if i < len(actual) else None
        want = expected[i] if i < len(expected) else None
        bad = got is None or want is None or any(got.get(k) != v for k, v in want.items())
        ok = ok and not bad
        diff = {} if got is None or want is None else {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        lines.append(f"{'!!' if bad else '  '} {i}: want {want} got-diff {diff if got else None}")
    if not ok:
        raise AssertionError("chain mismatch:\n" + "\n".join(lines) + f"\nactual: {actual}")
