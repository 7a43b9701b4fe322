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
    # The codec's view agrees with Python's struct unpacking of WIRE.md's format.
    unpacked = struct.unpack(template.struct_format, data)
    assert len(unpacked) == len(template.fields)


@pytest.mark.parametrize(
    "stem", ["wire-md-new-order-single", "wire-md-execution-report", "wire-md-add-order"]
)
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


def test_worked_examples_pass_their_direction_checks() -> None:
    nos, _ = _load("wire-md-new-order-single")
    er, _ = _load("wire-md-execution-report")
    assert codec.validate(nos, direction=codec.CLIENT_TO_SERVER).all_accepted
    assert codec.validate(er, direction=codec.SERVER_TO_CLIENT).all_accepted
    refused = codec.validate(er, direction=codec.CLIENT_TO_SERVER)
    assert refused.reasons.tolist() == [codes.BRR_WRONG_DIRECTION]
