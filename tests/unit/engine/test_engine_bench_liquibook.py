"""The liquibook baseline of `qfix bench engine`: conversion, driver build and replay, skips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qfix.bench import _common, _liquibook
from qfix.bench import engine as bench_engine
from qfix.testing import generators as gen
from qfix.wire import codes as C  # noqa: N812
from qfix.wire import schema

INSTS = (gen._wl_instrument(1),)
REF = 1_000_000


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> _liquibook.Driver:
    try:
        return _liquibook.build(tmp_path_factory.mktemp("lqbuild"))
    except _liquibook.Unavailable as exc:
        pytest.skip(f"liquibook baseline unavailable here: {exc}")


def _nos(session: int, clordid: int, side: int, price: int, qty: int, t: int, **kw: int) -> bytes:
    fields = dict(
        clordid=clordid, price=price, qty=qty, sec=1, account=C.NULL_U32, min_qty=C.NULL_U32,
        max_floor=C.NULL_U32, side=side, ord_type=C.ORD_TYPE_LIMIT, tif=C.TIF_GTC, exec_inst=0,
        smp=C.SMP_DEFAULT, expire=C.NULL_DATE, session=session, session_account=session + 1, recv_time=t,
    )  # fmt: skip
    fields.update(kw)
    return gen.pack_new_order(**fields)


def _scenario() -> np.ndarray:
    """Every kind the converter maps, in a stream without self-trades (so both sides trade alike)."""
    t = iter(range(gen.BASE_TIME + 1_000, gen.BASE_TIME + 1_000_000, 1_000))
    recs = [
        _nos(0, 1, C.SIDE_SELL, REF + 10, 100, next(t)),
        _nos(1, 1, C.SIDE_SELL, REF + 20, 50, next(t)),
        _nos(3, 1, C.SIDE_SELL, REF + 40, 20, next(t)),
        # IOC limit: 30 @ REF+10
        _nos(2, 1, C.SIDE_BUY, REF + 10, 30, next(t), tif=C.TIF_IOC),
        # market: 70 @ REF+10, 30 @ REF+20
        _nos(2, 2, C.SIDE_BUY, C.NULL_PRICE, 100, next(t), ord_type=C.ORD_TYPE_MARKET, tif=C.TIF_IOC),
        # replace by OrigClOrdID (20 left of 50, new total 40 -> 10 left), new price
        gen.pack_replace(
            clordid=2,
            orig=1,
            price=REF + 30,
            qty=40,
            sec=1,
            max_floor=C.NULL_U32,
            side=C.SIDE_SELL,
            ord_type=C.ORD_TYPE_LIMIT,
            tif=C.TIF_GTC,
            exec_inst=0,
            min_qty=C.NULL_U32,
            session=1,
            session_account=2,
            recv_time=next(t),
        ),
        # rejected (outside the band): a NOP for the driver
        _nos(0, 2, C.SIDE_BUY, REF + 200_000, 10, next(t)),
        # FOK that cannot fill: killed on both sides
        _nos(2, 3, C.SIDE_BUY, REF + 50, 1_000, next(t), tif=C.TIF_FOK),
        # cancel by OrderID (the engine's OrderID 3 is session 3's order)
        gen.pack_cancel(
            clordid=2,
            orig=C.NULL_U64,
            order_id=3,
            sec=1,
            side=C.SIDE_SELL,
            session=3,
            session_account=4,
            recv_time=next(t),
        ),
        # resting buy, then a sell that crosses it and the replaced order stays
        _nos(4, 1, C.SIDE_BUY, REF - 5, 25, next(t)),
        _nos(5, 1, C.SIDE_SELL, REF - 5, 5, next(t)),
        # cancel by OrigClOrdID of the replaced order (its current ClOrdID is 2)
        gen.pack_cancel(
            clordid=3,
            orig=2,
            order_id=C.NULL_U64,
            sec=1,
            side=C.SIDE_SELL,
            session=1,
            session_account=2,
            recv_time=next(t),
        ),
        # mass cancel of account 5 (session 4's resting buy)
        gen.pack_mass_cancel(
            clordid=2,
            sec=C.NULL_U32,
            account=C.NULL_U32,
            request_type=C.MASS_CANCEL_TYPE_ALL,
            side=C.MASS_CANCEL_SIDE_BOTH,
            session=4,
            session_account=5,
            recv_time=next(t),
        ),
    ]
    return np.frombuffer(b"".join(recs), dtype=schema.INBOUND).copy()


def test_converted_scenario_trades_alike_on_both_sides(driver: _liquibook.Driver, tmp_path: Path) -> None:
    records = _scenario()
    stream = tmp_path / "scenario.qfs"
    gen.save_stream(stream, records)
    commands, note = _liquibook.commands(stream, gen.stream_digest(stream), records, 3, INSTS)
    assert note["engine_rejected"] == 1 and note["kinds"]["nop"] == 1
    assert note["kinds"] == {"new": 5, "cancel": 2, "replace": 1, "mass_cancel": 1, "nop": 1}
    done = _liquibook.run(driver, commands)
    assert done["messages"] == len(records) - 3
    assert (done["trades"], done["volume"]) == (note["engine_trades"], note["engine_volume"]) == (4, 135)
    assert done["missing_cancels"] == done["missing_replaces"] == 0
    assert done["cancel_rejects"] == done["replace_rejects"] == 0
    assert done["live_orders"] == 0  # filled, cancelled (by OrderID, by OrigClOrdID, mass) or IOC
    # the command file is reused while the stream's digest is unchanged
    again, _ = _liquibook.commands(stream, gen.stream_digest(stream), records, 3, INSTS)
    assert again == commands


def test_tiny_mix_stream_converts_and_trades_close(driver: _liquibook.Driver, tmp_path: Path) -> None:
    wl = gen.mix(n=3_000)
    stream = tmp_path / "mix.qfs"
    gen.save_stream(stream, wl.records)
    commands, note = _liquibook.commands(stream, gen.stream_digest(stream), wl.records, wl.prefill, INSTS)
    assert note["engine_rejected"] == 0 and note["kinds"]["nop"] == 0
    done = _liquibook.run(driver, commands)
    assert done["messages"] == 3_000
    assert done["missing_cancels"] == done["missing_replaces"] == 0
    assert note["engine_trades"] > 0
    assert abs(done["trades"] - note["engine_trades"]) <= 0.05 * note["engine_trades"]
    assert abs(done["volume"] - note["engine_volume"]) <= 0.05 * note["engine_volume"]


def test_no_compiler_skips_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "qfix-no-such-compiler")
    baseline = bench_engine._Baseline(True, tmp_path, _common.Progress(1, quiet=True))
    assert baseline.driver is None
    assert "no C++ compiler" in baseline.extra()["skipped"]


def test_missing_headers_skip_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_liquibook.INCLUDE_ENV, str(tmp_path))
    with pytest.raises(_liquibook.Unavailable, match="headers not found"):
        _liquibook.build(tmp_path / "cache")


def test_no_liquibook_flag_is_a_skip_without_steps() -> None:
    assert bench_engine.steps(["mix"], quick=True, liquibook=False) + 1 + 2 + 3 == bench_engine.steps(
        ["mix"], quick=True
    )
