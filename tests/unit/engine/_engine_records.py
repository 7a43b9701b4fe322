"""Minimal inbound-record builders for the engine's own unit tests.

Independent of ``qfix.testing.builders`` on purpose: the engine tests were written
from ENGINE.md and WIRE.md before the shared builders were read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qfix.engine.config import EngineConfig, InstrumentConfig
from qfix.wire import codes
from qfix.wire.schema import INBOUND, INBOUND_BY_TEMPLATE, OUTPUT, TEMPLATES

NULL32 = codes.NULL_U32
NULL64 = codes.NULL_U64
TICK = 1_000_000  # PRICE9 units per tick in these tests

#: a small engine configuration with the event hash on
SMALL = EngineConfig(max_orders=256, max_levels=64, max_instruments=8, max_sessions=64, event_hash=True)


def instrument(sec: int = 1, **kw: Any) -> InstrumentConfig:
    """A test instrument: tick 0.001, Ref 100 ticks, band +-50, collar 5."""
    params: dict[str, Any] = {"symbol": f"S{sec}", "tick_size_p9": TICK, "ref": 100, "band_width": 50, "collar": 5}
    params.update(kw)
    return InstrumentConfig(sec, **params)


def _record(template: int, session: int, account: int, recv: int, **fields: Any) -> np.ndarray:
    rec = np.zeros(1, INBOUND)
    view = rec.view(INBOUND_BY_TEMPLATE[template])
    view["blockLength"] = 52
    view["templateId"] = template
    view["schemaId"] = 60
    view["version"] = 0
    for key, value in fields.items():
        view[key] = value
    view["SessionID"] = session
    view["SessionAccount"] = account
    view["RecvTime"] = recv
    return rec


def nos(
    clordid: int,
    side: str = "buy",
    price: int | None = 100,
    qty: int = 10,
    *,
    sec: int = 1,
    session: int = 1,
    account: int = NULL32,
    sess_account: int = 0,
    recv: int = 0,
    tif: int = codes.TIF_DAY,
    ord_type: int | None = None,
    min_qty: int = NULL32,
    max_floor: int = NULL32,
    exec_inst: int = 0,
    smp: int = codes.SMP_DEFAULT,
    expire: int = codes.NULL_DATE,
    price_raw: int | None = None,
) -> np.ndarray:
    """A NewOrderSingle; ``price`` in ticks (None = market)."""
    if ord_type is None:
        ord_type = codes.ORD_TYPE_MARKET if price is None else codes.ORD_TYPE_LIMIT
    px = codes.NULL_PRICE if price is None else price * TICK
    if price_raw is not None:
        px = price_raw
    return _record(
        1,
        session,
        sess_account if sess_account else session,
        recv,
        ClOrdID=clordid,
        Price=px,
        OrderQty=qty,
        SecurityID=sec,
        Account=account,
        MinQty=min_qty,
        MaxFloor=max_floor,
        Side=codes.SIDE_BUY if side == "buy" else codes.SIDE_SELL,
        OrdType=ord_type,
        TimeInForce=tif,
        ExecInst=exec_inst,
        SelfMatchPreventionInstruction=smp,
        ExpireDate=expire,
    )


def cancel(
    clordid: int,
    orig: int = NULL64,
    order_id: int = NULL64,
    side: str = "buy",
    *,
    sec: int = 1,
    session: int = 1,
    sess_account: int = 0,
    recv: int = 0,
) -> np.ndarray:
    return _record(
        2,
        session,
        sess_account if sess_account else session,
        recv,
        ClOrdID=clordid,
        OrigClOrdID=orig,
        OrderID=order_id,
        SecurityID=sec,
        Side=codes.SIDE_BUY if side == "buy" else codes.SIDE_SELL,
    )


def replace(
    clordid: int,
    orig: int,
    price: int,
    qty: int,
    side: str = "buy",
    *,
    sec: int = 1,
    session: int = 1,
    sess_account: int = 0,
    recv: int = 0,
    tif: int = codes.TIF_DAY,
    max_floor: int = NULL32,
    exec_inst: int = 0,
    min_qty: int = NULL32,
    ord_type: int = codes.ORD_TYPE_LIMIT,
) -> np.ndarray:
    return _record(
        3,
        session,
        sess_account if sess_account else session,
        recv,
        ClOrdID=clordid,
        OrigClOrdID=orig,
        Price=price * TICK,
        OrderQty=qty,
        SecurityID=sec,
        MaxFloor=max_floor,
        Side=codes.SIDE_BUY if side == "buy" else codes.SIDE_SELL,
        OrdType=ord_type,
        TimeInForce=tif,
        ExecInst=exec_inst,
        MinQty=min_qty,
    )


def mass(
    clordid: int,
    *,
    sec: int = NULL32,
    account: int = NULL32,
    mtype: int = codes.MASS_CANCEL_TYPE_ALL,
    side: int = codes.MASS_CANCEL_SIDE_BOTH,
    session: int = 1,
    sess_account: int = 0,
    recv: int = 0,
) -> np.ndarray:
    return _record(
        4,
        session,
        sess_account if sess_account else session,
        recv,
        ClOrdID=clordid,
        SecurityID=sec,
        Account=account,
        MassCancelRequestType=mtype,
        Side=side,
    )


def batch(*records: np.ndarray) -> np.ndarray:
    return np.concatenate(records) if records else np.zeros(0, INBOUND)


def decode(out: np.ndarray) -> list[dict[str, Any]]:
    """Output records as dicts: template name, its fields, and ``dest``."""
    rows = []
    for rec in out:
        msg = rec["message"]
        tid = int(msg[2]) | (int(msg[3]) << 8)
        tpl = TEMPLATES[tid]
        view = msg.view(tpl.dtype)[0]
        row: dict[str, Any] = {"t": tpl.name, "dest": int(rec["dest"])}
        for name in tpl.dtype.names or ():
            if name in ("blockLength", "templateId", "schemaId", "version", "Reserved"):
                continue
            row[name] = view[name].item()
        rows.append(row)
    return rows


def new_out(n: int = 4096) -> np.ndarray:
    return np.zeros(n, OUTPUT)
