"""Golden vectors (WIRE.md §8 worked examples and struct-packed messages of every template)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from qfix.wire import codec, codes, message, schema

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "wire"


def _load(stem: str) -> tuple[bytes, dict]:
    data = bytes.fromhex((VECTORS / f"{stem}.hex").read_text().strip())
    return data, json.loads((VECTORS / f"{stem}.json").read_text())


def _struct_stems() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("struct-*.hex"))


def test_every_template_has_a_struct_vector() -> None:
    ids = {int(stem.split("-")[1]) for stem in _struct_stems()}
    assert ids == set(schema.TEMPLATES)


@pytest.mark.parametrize("stem", _struct_stems())
def test_struct_vector_decodes_and_reencodes(stem: str) -> None:
    data, doc = _load(stem)
    template = schema.TEMPLATES[doc["template_id"]]
    assert template.struct_format == doc["format"]
    record = np.frombuffer(data, dtype=template.dtype)[0]
    assert len(template.fields) == len(doc["values"])
    rebuilt = codec.new_records(template.template_id)
    for (name, code), value in zip(template.fields, doc["values"], strict=True):
        if code == "c":
            assert record[name] == ord(value), name
            rebuilt[name] = ord(value)
        elif code.endswith("s"):
            assert bytes(record[name]) == bytes.fromhex(value), name
            rebuilt[name] = np.frombuffer(bytes.fromhex(value), np.uint8)
        else:
            assert int(record[name]) == value, name
            rebuilt[name] = value
    assert codec.encode(rebuilt) == data
    # Python's struct, reading the design's format string, sees the vector's values.
    unpacked = struct.unpack(doc["format"], data)
    for (name, code), got, value in zip(template.fields, unpacked, doc["values"], strict=True):
        if code == "c":
            assert got == value.encode("ascii"), name
        elif code.endswith("s"):
            assert got == bytes.fromhex(value), name
        else:
            assert got == value, name


@pytest.mark.parametrize("stem", ["wire-md-new-order-single", "wire-md-execution-report", "wire-md-add-order"])
def test_worked_example(stem: str) -> None:
    data, doc = _load(stem)
    template = schema.TEMPLATES[doc["template_id"]]
    record = codec.new_records(template.template_id)
    for name, value in doc["fields"].items():
        record[name] = ord(value) if isinstance(value, str) else value
    assert codec.encode(record) == data
    decoded = np.frombuffer(data, dtype=template.dtype)[0]
    for name, value in doc["fields"].items():
        expected = ord(value) if isinstance(value, str) else value
        assert int(decoded[name]) == expected, name


def test_worked_new_order_single_from_keywords() -> None:
    data, _ = _load("wire-md-new-order-single")
    built = message.new_order_single(
        cl_ord_id=1001,
        transact_time=1_767_225_600_000_000_000,
        price="65000.50",
        qty=250,
        security_id=42,
        account=7,
        side="buy",
        tif="gtc",
        post_only=True,
        smp="cancel-aggressive",
    )
    assert built.tobytes() == data
    shown = message.describe(data)
    assert shown["Price"] == message.p9_to_price(65_000_500_000_000)
    assert shown["Side"] == "1 Buy"
    assert shown["MinQty"] is None and shown["ExpireDate"] is None


def test_reference_data_vectors_describe_as_display_values() -> None:
    """SecurityDefinition and SecurityLimits: prices as decimals, Symbol as text without its
    zero padding, the rest as plain numbers or labelled codes."""
    data, _ = _load("struct-47-SecurityDefinition")
    shown = message.describe(data)
    assert shown["template"] == "SecurityDefinition" and shown["templateId"] == codes.TEMPLATE_SECURITY_DEFINITION
    assert (shown["SecurityID"], shown["RptSeq"], shown["TransactTime"]) == (42, 1, 1_767_225_600_000_000_000)
    assert shown["MinPriceIncrement"] == message.p9_to_price(10_000_000) and str(shown["MinPriceIncrement"]) == "0.01"
    assert (shown["MaxTradeVol"], shown["RoundLot"], shown["Symbol"]) == (1_000_000, 100, "BTC-USD")
    assert shown["TradingStatus"] == "17 Continuous" and shown["MatchEventIndicator"] == "EndOfEvent"
    assert "Reserved" not in shown
    assert np.frombuffer(data, schema.SECURITY_DEFINITION)[0]["Symbol"].tobytes() == b"BTC-USD" + bytes(9)
    data, _ = _load("struct-48-SecurityLimits")
    shown = message.describe(data)
    assert shown["template"] == "SecurityLimits" and shown["templateId"] == codes.TEMPLATE_SECURITY_LIMITS
    assert (str(shown["LowLimitPrice"]), str(shown["HighLimitPrice"])) == ("60000", "70000")
    assert (shown["MaxNotional"], shown["Collar"]) == (10**15, 1_000)
    assert "Reserved" not in shown


def test_describe_shows_odd_symbol_bytes_escaped() -> None:
    """Only the right-hand zero padding is dropped; other bytes stay visible."""
    record = codec.new_records(codes.TEMPLATE_SECURITY_DEFINITION)
    record["Symbol"] = np.frombuffer(b"A\x00B\xff".ljust(16, b"\x00"), np.uint8)
    assert message.describe(record[0])["Symbol"] == "A\x00B\\xff"


def test_worked_examples_pass_their_direction_checks() -> None:
    nos, _ = _load("wire-md-new-order-single")
    er, _ = _load("wire-md-execution-report")
    assert codec.validate(nos, 0, direction=codec.CLIENT_TO_SERVER).all_accepted
    assert codec.validate(er, 0, direction=codec.SERVER_TO_CLIENT).all_accepted
    refused = codec.validate(er, 0, direction=codec.CLIENT_TO_SERVER)
    assert refused.reasons.tolist() == [codes.BRR_WRONG_DIRECTION]


def test_builders_place_every_field_where_the_design_says() -> None:
    """Keyword builders against struct.pack of the design's formats, field by field in
    the design's order: a swapped or misnamed field changes the bytes."""
    nos = message.new_order_single(
        cl_ord_id=11,
        transact_time=12,
        price="1.5",
        qty=13,
        security_id=14,
        account=15,
        min_qty=16,
        max_floor=17,
        side="sell",
        tif="gtd",
        post_only=True,
        smp="decrement",
        expire_date=18,
    )
    assert nos.tobytes() == struct.pack(
        "<HHHHQQqIIIIIcccBB1sH",
        52,
        1,
        60,
        0,
        11,
        12,
        1_500_000_000,
        13,
        14,
        15,
        16,
        17,
        b"2",
        b"2",
        b"6",
        1,
        4,
        b"\0",
        18,
    )
    cancel = message.order_cancel_request(
        cl_ord_id=21, transact_time=22, orig_cl_ord_id=23, order_id=24, security_id=25, side="buy"
    )
    assert cancel.tobytes() == struct.pack("<HHHHQQQQIc15s", 52, 2, 60, 0, 21, 22, 23, 24, 25, b"1", bytes(15))
    replace = message.order_cancel_replace_request(
        cl_ord_id=31,
        transact_time=32,
        orig_cl_ord_id=33,
        price="-2",
        qty=34,
        security_id=35,
        max_floor=36,
        side="sell",
        tif="gtc",
        post_only=True,
    )
    assert replace.tobytes() == struct.pack(
        "<HHHHQQQqIIIcccBI",
        52,
        3,
        60,
        0,
        31,
        32,
        33,
        -2_000_000_000,
        34,
        35,
        36,
        b"2",
        b"2",
        b"1",
        1,
        2**32 - 1,
    )
    mass = message.order_mass_cancel_request(cl_ord_id=41, transact_time=42, security_id=43, account=44, side="sell")
    assert mass.tobytes() == struct.pack("<HHHHQQIIcc26s", 52, 4, 60, 0, 41, 42, 43, 44, b"1", b"2", bytes(26))
    hb = message.heartbeat(last_exec_id=51, transact_time=52, last_cl_ord_id=53)
    assert hb.tobytes() == struct.pack("<HHHHQQQ28s", 52, 20, 60, 0, 51, 52, 53, bytes(28))
    rr = message.retransmit_request(from_exec_id=61, count=62, transact_time=63)
    assert rr.tobytes() == struct.pack("<HHHHQQI32s", 52, 21, 60, 0, 61, 63, 62, bytes(32))
