"""Stream generators (ENGINE.md §9, §10) and the stream file format."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qfix.engine.contract import STATUS_OK
from qfix.testing import ReferenceEngine
from qfix.testing.generators import (
    default_random_config,
    default_random_instruments,
    insert,
    load_stream,
    mix,
    multi,
    random_stream,
    save_stream,
    stream_digest,
    workload,
)
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema


def _outcomes(instruments: tuple[object, ...], config: object, records: np.ndarray) -> Counter[tuple[int, int]]:
    """(template, reason) counts of replaying ``records`` on a fresh reference engine."""
    eng = ReferenceEngine(instruments, config)  # type: ignore[arg-type]
    out = np.zeros(1 << 16, dtype=schema.OUTPUT)
    seen: Counter[tuple[int, int]] = Counter()
    pos = 0
    while pos < len(records):
        res = eng.process(records[pos : pos + 256], out)
        if res.status != STATUS_OK and res.needed > len(out):
            out = np.zeros(res.needed, dtype=schema.OUTPUT)  # one record's U exceeds the buffer: grow
        pos += res.consumed
        msgs = out["message"][: res.written]
        for m in msgs:
            tid = int(m[2])
            if tid == C.TEMPLATE_EXECUTION_REPORT:
                seen[(tid, int(m[56]) << 8 | int(m[58]))] += 1
            elif tid == C.TEMPLATE_ORDER_CANCEL_REJECT:
                seen[(tid, int(m[51]))] += 1
            elif tid == C.TEMPLATE_ORDER_MASS_CANCEL_REPORT:
                seen[(tid, int(m[43]))] += 1
            else:
                seen[(tid, 0)] += 1
    return seen


def test_random_stream_is_deterministic_and_seed_dependent() -> None:
    a = random_stream(7, 400)
    b = random_stream(7, 400)
    c = random_stream(8, 400)
    assert a.dtype == schema.INBOUND and len(a) == 400
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_random_stream_reaches_every_reason_and_keeps_invariants() -> None:
    insts, cfg = default_random_instruments(), default_random_config()
    engine = ReferenceEngine(insts, cfg, check=True)  # invariants after every message
    records = random_stream(2, 6_000, engine=engine, p_invalid=0.12)
    seen = _outcomes(insts, cfg, records)
    er_reasons = {key & 0xFF for (tid, key) in seen if tid == C.TEMPLATE_EXECUTION_REPORT}
    expected_er = {
        C.EXEC_REASON_UNKNOWN_SYMBOL, C.EXEC_REASON_TRADING_STATE_NOT_OPEN, C.EXEC_REASON_QTY_OVER_MAX,
        C.EXEC_REASON_INVALID_EXPIRE_DATE, C.EXEC_REASON_DUPLICATE_CLORDID, C.EXEC_REASON_UNSUPPORTED,
        C.EXEC_REASON_INCORRECT_QTY, C.EXEC_REASON_PRICE_OUTSIDE_BAND, C.EXEC_REASON_PRICE_OFF_TICK,
        C.EXEC_REASON_INVALID_SIDE, C.EXEC_REASON_INVALID_ORD_TYPE, C.EXEC_REASON_INVALID_TIME_IN_FORCE,
        C.EXEC_REASON_INVALID_EXEC_INST, C.EXEC_REASON_INVALID_SMP_INSTRUCTION, C.EXEC_REASON_PRICE_REQUIRED,
        C.EXEC_REASON_PRICE_NOT_ALLOWED, C.EXEC_REASON_EXPIRE_DATE_MISMATCH, C.EXEC_REASON_INVALID_MIN_QTY,
        C.EXEC_REASON_INVALID_MAX_FLOOR, C.EXEC_REASON_POST_ONLY_WOULD_CROSS, C.EXEC_REASON_CAPACITY_FULL,
        C.EXEC_REASON_NOTIONAL_OVER_MAX, C.EXEC_REASON_USER_REQUEST, C.EXEC_REASON_IOC_FOK_REMAINDER,
        C.EXEC_REASON_SELF_MATCH, C.EXEC_REASON_MASS_CANCEL, C.EXEC_REASON_MIN_QTY_NOT_MET,
    }  # fmt: skip
    assert expected_er - er_reasons == set()
    exec_types = {key >> 8 for (tid, key) in seen if tid == C.TEMPLATE_EXECUTION_REPORT}
    assert {C.EXEC_TYPE_NEW, C.EXEC_TYPE_TRADE, C.EXEC_TYPE_CANCELED, C.EXEC_TYPE_REPLACED,
            C.EXEC_TYPE_RESTATED, C.EXEC_TYPE_REJECTED} <= exec_types  # fmt: skip
    ocr = {r for (tid, r) in seen if tid == C.TEMPLATE_ORDER_CANCEL_REJECT}
    assert {C.EXEC_REASON_UNKNOWN_ORDER, C.EXEC_REASON_OTHER_ACCOUNT, C.EXEC_REASON_DUPLICATE_CLORDID,
            C.EXEC_REASON_UNSUPPORTED, C.EXEC_REASON_INVALID_SIDE, C.EXEC_REASON_UNKNOWN_SYMBOL} <= ocr  # fmt: skip
    mass = {r for (tid, r) in seen if tid == C.TEMPLATE_ORDER_MASS_CANCEL_REPORT}
    assert {0, C.EXEC_REASON_INVALID_MASS_CANCEL_REQUEST} <= mass
    md = {tid for (tid, _) in seen}
    assert {
        C.TEMPLATE_ADD_ORDER, C.TEMPLATE_ORDER_EXECUTED, C.TEMPLATE_ORDER_REDUCED, C.TEMPLATE_ORDER_DELETE,
        C.TEMPLATE_ORDER_REPLACE, C.TEMPLATE_TRADE, C.TEMPLATE_BOOK_LEVEL, C.TEMPLATE_BEST_BID_OFFER,
    } <= md  # fmt: skip


def test_stream_file_roundtrip_and_digest(tmp_path: Path) -> None:
    records = random_stream(4, 50)
    path = tmp_path / "s.qfs"
    save_stream(path, records)
    data = path.read_bytes()
    assert data[:8] == b"QFIXSTRM" and len(data) == 16 + 80 * 50
    assert load_stream(path).tobytes() == records.tobytes()
    assert stream_digest(path) == hashlib.blake2b(data).hexdigest()
    path.write_bytes(b"XXXXXXXX" + data[8:])
    with pytest.raises(ValueError, match="not a qfix stream"):
        load_stream(path)
    path.write_bytes(data[:-1])
    with pytest.raises(ValueError, match="body"):
        load_stream(path)


def _no_rejects(seen: Counter[tuple[int, int]]) -> None:
    bad = {k: v for k, v in seen.items() if k[0] == C.TEMPLATE_ORDER_CANCEL_REJECT
           or (k[0] == C.TEMPLATE_EXECUTION_REPORT and k[1] >> 8 == C.EXEC_TYPE_REJECTED)}  # fmt: skip
    assert bad == {}


def test_mix_workload_shape() -> None:
    wl = mix(n=3_000)
    assert (wl.name, wl.prefill, len(wl.records)) == ("mix", 1_000, 4_000)
    assert wl.instruments[0].ref == 1_000_000 and wl.instruments[0].collar == 1_000
    seen = _outcomes(wl.instruments, wl.config, wl.records)
    _no_rejects(seen)
    eng = ReferenceEngine(wl.instruments, wl.config)
    eng.process(wl.records[: wl.prefill], np.zeros(1 << 16, dtype=schema.OUTPUT))
    assert len(eng.live_orders()) == 1_000
    assert mix(n=200).records.tobytes() == mix(n=200).records.tobytes()


def test_insert_workload_shape() -> None:
    wl = insert(n=2_000)
    assert len(wl.records) == 2_000 and wl.prefill == 0
    view = wl.records.view(schema.INBOUND_NEW_ORDER_SINGLE)
    buys = view["Side"] == C.SIDE_BUY
    assert buys[::2].all() and not buys[1::2].any()
    assert view["Price"][buys].min() >= 1_000_000 and view["Price"][buys].max() <= 1_000_009
    assert view["Price"][~buys].min() >= 1_000_005 and view["Price"][~buys].max() <= 1_000_014
    _no_rejects(_outcomes(wl.instruments, wl.config, wl.records))


def test_multi_workload_shape() -> None:
    wl = multi(n=3_000, instruments=30)
    assert wl.prefill == 30 * 50 and len(wl.instruments) == 30
    seen = _outcomes(wl.instruments, wl.config, wl.records)
    _no_rejects(seen)
    assert seen[(C.TEMPLATE_ORDER_REDUCED, 0)] > 0  # reduces keep priority


def test_unknown_workload() -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        workload("auction")


@pytest.mark.slow
def test_quick_workloads_replay_without_rejects() -> None:
    for name in ("mix", "insert"):
        wl = workload(name, quick=True)
        _no_rejects(_outcomes(wl.instruments, wl.config, wl.records))
