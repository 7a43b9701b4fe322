"""Continuous trading: exact outcome chains of ENGINE.md §2.2/§2.3 for the basic cases."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from ref_common import ALL, T0, make_engine

from qfix.engine.contract import STATUS_OK
from qfix.testing import (
    ReferenceEngine,
    assert_chain,
    batch,
    cancel,
    new_order,
    process_decoded,
)
from qfix.testing.generators import default_random_config, default_random_instruments, random_stream
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

ER = "ExecutionReport"
NULL = C.NULL_PRICE
MD = C.MD_DEST


def er(exec_type: int, **kw: int) -> dict[str, int | str]:
    return {"template": ER, "ExecType": exec_type, **kw}


def test_limit_rests_with_full_chain(eng: ReferenceEngine) -> None:
    recs = process_decoded(eng, new_order(7, price=99, qty=10, session=3, recv_time=T0 + 5))
    assert_chain(
        recs,
        [
            {
                "template": ER, "ClOrdID": 7, "TransactTime": T0 + 5, "OrderID": 1, "ExecID": 1, "LastPx": 99,
                "LastQty": 10, "LeavesQty": 10, "ExecType": C.EXEC_TYPE_NEW, "OrdStatus": C.ORD_STATUS_NEW,
                "ExecReason": 0, "LastLiquidityInd": C.LIQUIDITY_NONE, "dest": 3,
            },
            {
                "template": "AddOrder", "TransactTime": T0 + 5, "SecurityID": 1, "RptSeq": 0, "OrderID": 1,
                "MDEntryPx": 99, "MDEntrySize": 10, "MDEntryType": C.MD_ENTRY_BID, "MatchEventIndicator": 0,
                "dest": MD,
            },
            {
                "template": "BookLevel", "MDEntryPx": 99, "MDEntrySize": 10, "NumberOfOrders": 1,
                "MDEntryType": C.MD_ENTRY_BID, "MDUpdateAction": C.MD_UPDATE_NEW, "MatchEventIndicator": 0,
            },
            {
                "template": "BestBidOffer", "BidPx": 99, "OfferPx": NULL, "BidSize": 10, "OfferSize": 0,
                "MatchEventIndicator": C.MEI_END_OF_EVENT, "dest": MD,
            },
        ],
    )  # fmt: skip


def test_aggressor_sweeps_two_levels_and_rests(eng: ReferenceEngine) -> None:
    process_decoded(
        eng,
        new_order(1, side=C.SIDE_SELL, price=101, qty=5, session=1),
        new_order(1, side=C.SIDE_SELL, price=102, qty=5, session=2),
    )
    recs = process_decoded(eng, new_order(1, side=C.SIDE_BUY, price=102, qty=12, session=0))
    filled, partial = C.ORD_STATUS_FILLED, C.ORD_STATUS_PARTIALLY_FILLED
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=3, ExecID=3, LastPx=102, LastQty=12, LeavesQty=12, dest=0),
            er(C.EXEC_TYPE_TRADE, OrderID=3, ExecID=4, LastPx=101, LastQty=5, LeavesQty=7, OrdStatus=partial,
               LastLiquidityInd=C.LIQUIDITY_REMOVED, dest=0),
            er(C.EXEC_TYPE_TRADE, OrderID=1, ExecID=5, LastPx=101, LastQty=5, LeavesQty=0, OrdStatus=filled,
               LastLiquidityInd=C.LIQUIDITY_ADDED, dest=1),
            {"template": "OrderExecuted", "OrderID": 1, "LastPx": 101, "LastQty": 5, "LeavesQty": 0, "TradeID": 1,
             "AggressorSide": C.AGGRESSOR_BUY, "MatchEventIndicator": 0},
            {"template": "Trade", "TradeID": 1, "LastPx": 101, "LastQty": 5, "AggressorSide": C.AGGRESSOR_BUY,
             "TradeCondition": C.TRADE_CONDITION_REGULAR, "MatchEventIndicator": 0},
            er(C.EXEC_TYPE_TRADE, OrderID=3, LastPx=102, LastQty=5, LeavesQty=2, OrdStatus=partial),
            er(C.EXEC_TYPE_TRADE, OrderID=2, LastPx=102, LastQty=5, LeavesQty=0, OrdStatus=filled, dest=2),
            {"template": "OrderExecuted", "OrderID": 2, "LeavesQty": 0, "TradeID": 2},
            {"template": "Trade", "TradeID": 2, "LastPx": 102, "MatchEventIndicator": C.MEI_LAST_TRADE_MSG},
            {"template": "AddOrder", "OrderID": 3, "MDEntryPx": 102, "MDEntrySize": 2, "MDEntryType": C.MD_ENTRY_BID},
            {"template": "BookLevel", "MDEntryPx": 102, "MDEntryType": C.MD_ENTRY_BID, "MDEntrySize": 2,
             "NumberOfOrders": 1, "MDUpdateAction": C.MD_UPDATE_NEW},
            {"template": "BookLevel", "MDEntryPx": 101, "MDEntryType": C.MD_ENTRY_OFFER, "MDEntrySize": 0,
             "NumberOfOrders": 0, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BookLevel", "MDEntryPx": 102, "MDEntryType": C.MD_ENTRY_OFFER,
             "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BestBidOffer", "BidPx": 102, "OfferPx": NULL, "BidSize": 2, "OfferSize": 0,
             "MatchEventIndicator": C.MEI_END_OF_EVENT},
        ],
    )  # fmt: skip


def test_time_priority_within_a_level(eng: ReferenceEngine) -> None:
    process_decoded(
        eng,
        new_order(1, side=C.SIDE_SELL, price=101, qty=5, session=1),
        new_order(1, side=C.SIDE_SELL, price=101, qty=5, session=2),
    )
    recs = process_decoded(eng, new_order(1, price=101, qty=7))
    makers = [r["OrderID"] for r in recs if r["template"] == "OrderExecuted"]
    assert makers == [1, 2]
    assert eng.book(1, C.SIDE_SELL) == [(101, 3, 1)]


def test_market_order_collar_and_remainder(eng: ReferenceEngine) -> None:
    process_decoded(
        eng,
        new_order(1, side=C.SIDE_SELL, price=101, qty=5, session=1),
        new_order(2, side=C.SIDE_SELL, price=106, qty=5, session=1),
        new_order(3, side=C.SIDE_SELL, price=107, qty=5, session=1),
    )
    # L = min(best ask 101 + collar 5, band high 150) = 106: 107 is out of reach
    recs = process_decoded(eng, new_order(1, price=None, qty=20, tif=C.TIF_IOC))
    trades = [(r["LastPx"], r["LastQty"]) for r in recs if r["template"] == "Trade"]
    assert trades == [(101, 5), (106, 5)]
    assert recs[0]["LastPx"] == NULL
    cancel_er = [r for r in recs if r["template"] == ER and r["ExecType"] == C.EXEC_TYPE_CANCELED]
    assert_chain(
        cancel_er,
        [er(C.EXEC_TYPE_CANCELED, OrderID=4, LastPx=NULL, LastQty=10, LeavesQty=0,
            ExecReason=C.EXEC_REASON_IOC_FOK_REMAINDER, OrdStatus=C.ORD_STATUS_CANCELED, dest=0)],
    )  # fmt: skip
    assert eng.book(1, C.SIDE_SELL) == [(107, 5, 1)]


def test_market_order_on_empty_side_is_cancelled_whole(eng: ReferenceEngine) -> None:
    recs = process_decoded(eng, new_order(1, side=C.SIDE_SELL, price=None, qty=9))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_NEW, OrderID=1, LastPx=NULL, LastQty=9, LeavesQty=9),
            er(C.EXEC_TYPE_CANCELED, OrderID=1, LastQty=9, LeavesQty=0, ExecReason=C.EXEC_REASON_IOC_FOK_REMAINDER),
        ],
    )  # fmt: skip


def test_ioc_limit_remainder_is_cancelled(eng: ReferenceEngine) -> None:
    process_decoded(eng, new_order(1, side=C.SIDE_SELL, price=101, qty=5, session=1))
    recs = process_decoded(eng, new_order(1, price=101, qty=8, tif=C.TIF_IOC))
    kinds = [(r["template"], r.get("ExecType")) for r in recs]
    assert kinds[:3] == [(ER, C.EXEC_TYPE_NEW), (ER, C.EXEC_TYPE_TRADE), (ER, C.EXEC_TYPE_TRADE)]
    assert kinds[5] == (ER, C.EXEC_TYPE_CANCELED)
    assert recs[5]["LastQty"] == 3 and recs[5]["LastPx"] == 101
    assert eng.book(1, C.SIDE_BUY) == [] and eng.book(1, C.SIDE_SELL) == []


def test_cancel_by_other_session_of_same_account_sends_copy(eng: ReferenceEngine) -> None:
    process_decoded(eng, new_order(5, price=99, qty=10, session=1, session_account=77))
    recs = process_decoded(eng, cancel(9, order_id=1, session=2, session_account=77, recv_time=T0))
    assert_chain(
        recs,
        [
            er(C.EXEC_TYPE_CANCELED, ClOrdID=9, OrderID=1, ExecID=2, LastPx=99, LastQty=10, LeavesQty=0,
               OrdStatus=C.ORD_STATUS_CANCELED, ExecReason=C.EXEC_REASON_USER_REQUEST, dest=1),
            er(C.EXEC_TYPE_CANCELED, ClOrdID=9, OrderID=1, ExecID=2, dest=2),
            {"template": "OrderDelete", "OrderID": 1, "dest": MD},
            {"template": "BookLevel", "MDEntryPx": 99, "MDUpdateAction": C.MD_UPDATE_DELETE},
            {"template": "BestBidOffer", "BidPx": NULL, "OfferPx": NULL, "MatchEventIndicator": C.MEI_END_OF_EVENT},
        ],
    )  # fmt: skip


def test_cancel_by_orig_clordid_own_session_no_copy(eng: ReferenceEngine) -> None:
    process_decoded(eng, new_order(5, price=99, qty=10, session=1))
    recs = process_decoded(eng, cancel(6, orig_clordid=5, session=1))
    assert [r["dest"] for r in recs if r["template"] == ER] == [1]
    assert eng.live_orders() == []


def test_bad_header_raises_and_changes_nothing(eng: ReferenceEngine) -> None:
    good = new_order(1, price=99)
    bad = new_order(2, price=98)
    bad["message"][0][4] = 61  # schemaId
    before = (eng.state_hash(), eng.event_hash())
    out = np.zeros(64, dtype=schema.OUTPUT)
    with pytest.raises(ValueError, match="header"):
        eng.process(batch(good, bad), out)
    assert (eng.state_hash(), eng.event_hash()) == before
    assert not out.view(np.uint8).any()


def test_recv_time_never_goes_back(eng: ReferenceEngine) -> None:
    a = process_decoded(eng, new_order(1, price=99, recv_time=T0 + 100))
    b = process_decoded(eng, new_order(2, price=98, recv_time=T0 + 50))
    assert {r["TransactTime"] for r in a} == {T0 + 100}
    assert {r["TransactTime"] for r in b} == {T0 + 100}
    assert eng.last_time == T0 + 100


def _run(engine: ReferenceEngine, records: np.ndarray, step: int) -> list[bytes]:
    out = np.zeros(1 << 16, dtype=schema.OUTPUT)
    got: list[bytes] = []
    for i in range(0, len(records), step):
        res = engine.process(records[i : i + step], out)
        assert res.status == STATUS_OK and res.consumed == len(records[i : i + step])
        got.extend(out[: res.written].tobytes()[k : k + 64] for k in range(0, res.written * 64, 64))
    return got


def test_batch_equals_one_by_one() -> None:
    insts, cfg = default_random_instruments(), default_random_config()
    records = random_stream(3, 600)
    a = ReferenceEngine(insts, cfg, check=True)
    b = ReferenceEngine(insts, cfg)
    out_a = _run(a, records, len(records))
    out_b = _run(b, records, 1)
    assert out_a == out_b
    assert a.state_hash() == b.state_hash()
    # one link for the whole batch: E_1 = BLAKE2b-256(zeros ‖ records with dest)
    assert a.event_hash() == hashlib.blake2b(bytes(32) + b"".join(out_a), digest_size=32).digest()
    assert a.event_hash() != b.event_hash()  # the chain depends on batch boundaries


def test_hashes_are_deterministic_and_cover_rejects() -> None:
    records = random_stream(5, 300)
    insts, cfg = default_random_instruments(), default_random_config()
    runs = []
    for _ in range(2):
        e = ReferenceEngine(insts, cfg)
        _run(e, records, 37)
        runs.append((e.state_hash(), e.event_hash()))
    assert runs[0] == runs[1]
    e = ReferenceEngine(insts, cfg)
    _run(e, records, 37)
    before = e.state_hash()
    _run(e, batch(new_order(2**62, sec=999_999, session=0)), 1)  # UnknownSymbol reject
    assert e.state_hash() != before


def test_state_hash_of_fresh_engine_matches_layout() -> None:
    e = make_engine()
    h = hashlib.blake2b(digest_size=16)
    h.update(struct.pack("<8sQQQQQ", b"QFIXST01", 1, 1, 1, 1, 0))
    h.update(struct.pack("<I", 0))
    for inst in sorted(ALL, key=lambda i: i.security_id):
        h.update(struct.pack("<IBqQqqqBI", inst.security_id, inst.phase, inst.ref, 0, -(2**63), 0, 0, 0, 0))
    assert e.state_hash() == h.digest()


def test_state_hash_order_record_layout() -> None:
    e = make_engine(instruments=(ALL[0],))
    process_decoded(
        e,
        new_order(4, side=C.SIDE_SELL, price=120, qty=9, max_floor=3, session=2, recv_time=T0,
                  tif=C.TIF_GTD, expire_date=30_000, smp=C.SMP_DECREMENT),
    )  # fmt: skip
    inst = ALL[0]
    h = hashlib.blake2b(digest_size=16)
    h.update(struct.pack("<8sQQQQQ", b"QFIXST01", 2, 2, 1, 2, T0))
    h.update(struct.pack("<I", 1) + struct.pack("<IQ", 2, 4))
    h.update(struct.pack("<IBqQqqqBI", 1, inst.phase, inst.ref, 0, -(2**63), 0, 0, 0, 1))
    h.update(
        struct.pack("<QQIIIBBBBBHqqqqqqQ", 1, 4, 2, 1002, 1002, 2, 2, C.TIF_GTD, 0, 4, 30_000, 120, 9, 0, 9, 3, 3, 1)
    )
    assert e.state_hash() == h.digest()


def test_every_output_has_zero_reserved_and_valid_header() -> None:
    insts, cfg = default_random_instruments(), default_random_config()
    records = random_stream(11, 400)
    e = ReferenceEngine(insts, cfg)
    for raw in _run(e, records, 50):
        hdr = struct.unpack_from("<HHHH", raw)
        assert hdr[0] == 52 and hdr[3] == 0
        tmpl = schema.TEMPLATES[hdr[1]]
        assert hdr[2] == tmpl.schema_id
        span = tmpl.reserved_span
        if span is not None:
            assert raw[span[0] : span[0] + span[1]] == bytes(span[1])
        if tmpl.schema_id == C.SCHEMA_MARKET_DATA:
            assert raw[60:64] == b"\xff\xff\xff\xff"
            assert raw[20:24] == bytes(4)  # RptSeq 0
            assert raw[59] & ~C.MEI_DEFINED_MASK == 0
