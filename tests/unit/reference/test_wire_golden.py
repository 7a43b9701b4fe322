"""WIRE.md §8 golden messages through the builders and the reference engine's encoders."""

from __future__ import annotations

import re

from qfix.testing import new_order
from qfix.testing import reference as ref
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

GOLDEN_NOS = (
    "340001003c000000e9030000000000000000faed517286180075b61b1e3b0000fa0000002a00000007000000"
    "ffffffffffffffff313231010100ffff"
)
GOLDEN_ER = (
    "34000a003c000000e903000000000000e204faed517286184154890000000000514b4c00000000000075b61b1e3b0000"
    "640000009600000046310001"
)
GOLDEN_ADD = (
    "34001f003d000000f401faed517286182a0000000700000041548900000000000075b61b1e3b0000fa00000030000000"
    "000000000000000000000080"
)
T = 1_767_225_600_000_000_000
PX = 65_000_500_000_000


def test_builder_reproduces_golden_new_order_single() -> None:
    rec = new_order(
        1001, transact_time=T, price=PX, qty=250, sec=42, account=7, side=C.SIDE_BUY, tif=C.TIF_GTC,
        exec_inst=C.EXEC_INST_POST_ONLY, smp=C.SMP_CANCEL_AGGRESSIVE,
    )  # fmt: skip
    assert rec["message"][0].tobytes().hex() == GOLDEN_NOS


def test_execution_report_layout_matches_golden() -> None:
    raw = ref._ER.pack(
        52, 10, 60, 0, 1001, T + 1_250, 9_000_001, 5_000_017, PX, 100, 150, C.EXEC_TYPE_TRADE,
        C.ORD_STATUS_PARTIALLY_FILLED, 0, C.LIQUIDITY_ADDED,
    )  # fmt: skip
    assert raw.hex() == GOLDEN_ER


def test_add_order_layout_matches_golden() -> None:
    raw = ref._ADD_ORDER.pack(52, 31, 61, 0, T + 500, 42, 7, 9_000_001, PX, 250, C.MD_ENTRY_BID, C.MEI_END_OF_EVENT)
    assert raw.hex() == GOLDEN_ADD


def test_every_encoder_has_the_wire_layout() -> None:
    """Each encoder's format, with char fields as B and Reserved as pad, is WIRE.md §3.1's."""
    encoders = {
        10: ref._ER, 11: ref._OCR, 12: ref._OMCR, 30: ref._SEC_STATUS, 31: ref._ADD_ORDER,
        32: ref._ORDER_EXECUTED, 33: ref._ORDER_REDUCED, 34: ref._ORDER_DELETE, 35: ref._ORDER_REPLACE,
        36: ref._TRADE, 37: ref._BOOK_LEVEL, 38: ref._BBO,
    }  # fmt: skip
    for tid, enc in encoders.items():
        wire = schema.TEMPLATES[tid].struct_format.replace("c", "B")
        wire = re.sub(r"(\d+)s", lambda m: m.group(1) + "x", wire)
        assert enc.format == wire, tid
