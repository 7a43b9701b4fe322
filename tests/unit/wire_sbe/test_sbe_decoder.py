"""WIRE.md §7 test 2: the independent decoder ``sbe`` 0.4.3 (PyPI) against the NumPy codec.

Both directions for all 30 templates: messages built with NumPy (a record of the template
dtype, ``.tobytes()``) decode with ``sbe`` to the same values, and ``sbe``-encoded
messages decode with ``np.frombuffer(b, dtype=template.dtype)`` to the same values.

What ``sbe`` 0.4.3 cannot check, pinned by the ``test_sbe_quirk_*`` tests below and
checked instead by the generic decoder of ``test_generic_decoder.py``:

- char arrays are decoded up to the first NUL and stripped of surrounding whitespace, so
  ``sbe`` only sees that a Reserved field starts with a zero byte, and sees a text field
  (SecurityDefinition's Symbol) only up to its zero padding (the strategies draw symbols
  without spaces, so the strip never changes one);
- ``Set.encode`` packs choices by rank, not by bit position, so on the ``sbe`` -> NumPy
  side a set is drawn only from choices whose rank equals their bit (MatchEventIndicator:
  LastTradeMsg only; ExecInst: both choices).

Fields typed directly as primitives crash ``sbe``; the XML types every field through a
named type, which ``sbe`` handles, so nothing is dropped for that reason.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sbe
from hypothesis import given, settings
from hypothesis import strategies as st

from qfix.wire import schema

from . import _sbexml
from ._common import (
    TEMPLATE_IDS,
    XML_PATHS,
    header_of,
    message_spec,
    numpy_decode,
    numpy_encode,
    raw_values,
)

EXAMPLES = settings(max_examples=25, deadline=None)


@cache
def sbe_schema(schema_id: int) -> Any:
    return sbe.Schema.parse(str(XML_PATHS[schema_id]))


def sbe_set_encodable_bits(f: _sbexml.Field) -> tuple[int, ...]:
    """Bits ``sbe`` 0.4.3 encodes correctly: choices whose rank equals their bit."""
    assert f.bits is not None
    return tuple(b for rank, b in enumerate(sorted(f.bits.values())) if rank == b)


def sbe_decoded(f: _sbexml.Field, raw: Any) -> Any:
    """What ``sbe`` must return for a field holding ``raw``."""
    if f.kind == "chars":
        if f.name == "Reserved":
            assert raw == bytes(f.length)  # valid messages only: Reserved is zero
        text = raw.rstrip(b"\x00")
        assert b"\x00" not in text  # valid text: ASCII, zero padding on the right only
        return text.decode("ascii")  # sbe returns char arrays as str, cut at the first NUL
    value = _sbexml.to_semantic(f, raw)
    return {f.member: value} if f.member else value


def sbe_encodable(f: _sbexml.Field, raw: Any) -> Any:
    """The value to give ``sbe``'s encoder for a field that must hold ``raw``."""
    if f.kind == "chars":  # sbe packs a bytes array as is, a single char from a str
        return raw if f.length > 1 else raw.decode("latin-1")
    if f.member:  # sbe cannot encode None inside a composite: give the raw mantissa
        return {f.member: raw}
    return _sbexml.to_semantic(f, raw)  # None (null: sbe writes nullValue), name(s) or int


def _sbe_encode_limits(template_id: int) -> dict[str, tuple[int, ...]]:
    return {f.name: sbe_set_encodable_bits(f) for f in message_spec(template_id).fields if f.kind == "set"}


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
@EXAMPLES
@given(data=st.data())
def test_numpy_encoded_decodes_with_sbe(template_id: int, data: st.DataObject) -> None:
    t = schema.TEMPLATES[template_id]
    raw = data.draw(raw_values(template_id), label="fields")
    decoded = sbe_schema(t.schema_id).decode(numpy_encode(template_id, raw))
    assert decoded.message_name == t.name
    assert decoded.header == header_of(template_id)
    assert decoded.value == {f.name: sbe_decoded(f, raw[f.name]) for f in message_spec(template_id).fields}


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
@EXAMPLES
@given(data=st.data())
def test_sbe_encoded_decodes_with_numpy(template_id: int, data: st.DataObject) -> None:
    t = schema.TEMPLATES[template_id]
    raw = data.draw(raw_values(template_id, set_bits=_sbe_encode_limits(template_id)), label="fields")
    s = sbe_schema(t.schema_id)
    obj = {f.name: sbe_encodable(f, raw[f.name]) for f in message_spec(template_id).fields}
    buf = s.encode(s.messages[template_id], obj)
    assert len(buf) == 60
    assert numpy_decode(template_id, buf) == {**header_of(template_id), **raw}


def test_sbe_covers_every_template() -> None:
    assert sorted(sbe_schema(60).messages) + sorted(sbe_schema(61).messages) == TEMPLATE_IDS


def test_sbe_encode_limits_are_only_matcheventindicator() -> None:
    """The coverage table in the report relies on this: only MEI bits 5 and 7 are limited."""
    limited = {}
    for tid in TEMPLATE_IDS:
        for f in message_spec(tid).fields:
            if f.kind == "set" and f.bits is not None:
                missing = set(f.bits.values()) - set(sbe_set_encodable_bits(f))
                if missing:
                    limited[f.type_name] = missing
    assert limited == {"MatchEventIndicator": {5, 7}}


# --- WIRE.md §8 golden examples through sbe ---------------------------------------------

GOLDEN = [
    (
        "340001003c000000e9030000000000000000faed517286180075b61b1e3b0000fa0000002a000000"
        "07000000ffffffffffffffff313231010100ffff",
        "NewOrderSingle",
        {
            "ClOrdID": 1001,
            "TransactTime": 1_767_225_600_000_000_000,
            "Price": {"mantissa": 65_000_500_000_000},
            "OrderQty": 250,
            "SecurityID": 42,
            "Account": 7,
            "MinQty": None,
            "MaxFloor": None,
            "Side": "Buy",
            "OrdType": "Limit",
            "TimeInForce": "GoodTillCancel",
            "ExecInst": ["ParticipateDontInitiate"],
            "SelfMatchPreventionInstruction": "CancelAggressive",
            "Reserved": "",
            "ExpireDate": None,
        },
    ),
    (
        "34000a003c000000e903000000000000e204faed517286184154890000000000514b4c0000000000"
        "0075b61b1e3b0000640000009600000046310001",
        "ExecutionReport",
        {
            "ClOrdID": 1001,
            "TransactTime": 1_767_225_600_000_001_250,
            "OrderID": 9_000_001,
            "ExecID": 5_000_017,
            "LastPx": {"mantissa": 65_000_500_000_000},
            "LastQty": 100,
            "LeavesQty": 150,
            "ExecType": "Trade",
            "OrdStatus": "PartiallyFilled",
            "ExecReason": "None",
            "LastLiquidityInd": "AddedLiquidity",
        },
    ),
    (
        "34001f003d000000f401faed517286182a0000000700000041548900000000000075b61b1e3b0000"
        "fa00000030000000000000000000000000000080",
        "AddOrder",
        {
            "TransactTime": 1_767_225_600_000_000_500,
            "SecurityID": 42,
            "RptSeq": 7,
            "OrderID": 9_000_001,
            "MDEntryPx": {"mantissa": 65_000_500_000_000},
            "MDEntrySize": 250,
            "MDEntryType": "Bid",
            "Reserved": "",
            "MatchEventIndicator": ["EndOfEvent"],
        },
    ),
]


@pytest.mark.parametrize(("hex_", "name", "values"), GOLDEN, ids=[g[1] for g in GOLDEN])
def test_golden_examples_decode_with_sbe(hex_: str, name: str, values: dict[str, Any]) -> None:
    buf = bytes.fromhex(hex_)
    tid = schema.TEMPLATES_BY_NAME[name].template_id
    decoded = sbe_schema(schema.TEMPLATES[tid].schema_id).decode(buf)
    assert (decoded.message_name, decoded.header, decoded.value) == (name, header_of(tid), values)
    # and the NumPy side agrees with sbe on every field of the same bytes
    raw = numpy_decode(tid, buf)
    assert {f.name: sbe_decoded(f, raw[f.name]) for f in message_spec(tid).fields} == values


VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "wire"

#: the reference-data struct vectors (tests/vectors/wire/_generate.py EXAMPLES) as sbe sees them
REFERENCE_DATA = [
    (
        "struct-47-SecurityDefinition",
        {
            "TransactTime": 1_767_225_600_000_000_000,
            "SecurityID": 42,
            "RptSeq": 1,
            "MinPriceIncrement": {"mantissa": 10_000_000},
            "MaxTradeVol": 1_000_000,
            "RoundLot": 100,
            "Symbol": "BTC-USD",
            "TradingStatus": "Continuous",
            "Reserved": "",
            "MatchEventIndicator": ["EndOfEvent"],
        },
    ),
    (
        "struct-48-SecurityLimits",
        {
            "TransactTime": 1_767_225_600_000_000_000,
            "SecurityID": 42,
            "RptSeq": 1,
            "LowLimitPrice": {"mantissa": 60_000_000_000_000},
            "HighLimitPrice": {"mantissa": 70_000_000_000_000},
            "MaxNotional": 10**15,
            "Collar": 1_000,
            "Reserved": "",
            "MatchEventIndicator": ["EndOfEvent"],
        },
    ),
]


@pytest.mark.parametrize(("stem", "values"), REFERENCE_DATA, ids=[r[0] for r in REFERENCE_DATA])
def test_reference_data_vectors_decode_with_sbe(stem: str, values: dict[str, Any]) -> None:
    buf = bytes.fromhex((VECTORS / f"{stem}.hex").read_text(encoding="ascii").strip())
    tid = int(stem.split("-")[1])
    decoded = sbe_schema(61).decode(buf)
    assert (decoded.message_name, decoded.header, decoded.value) == (schema.TEMPLATES[tid].name, header_of(tid), values)
    raw = numpy_decode(tid, buf)
    assert {f.name: sbe_decoded(f, raw[f.name]) for f in message_spec(tid).fields} == values


# --- the sbe 0.4.3 limitations the coverage split relies on ------------------------------


def test_sbe_quirk_set_encode_uses_rank_not_bit() -> None:
    """If this fails, ``sbe`` encodes sets correctly: drop the MEI limit above."""
    mei = sbe_schema(61).types["MatchEventIndicator"]
    assert mei.encode(["EndOfEvent"]) == 0b100  # should be 0x80 (bit 7)
    assert mei.decode(0x80) == ["EndOfEvent"]  # decoding is right


def test_sbe_quirk_char_arrays_cut_at_nul() -> None:
    """``sbe`` cannot see Reserved bytes after a NUL: the generic decoder checks them."""
    tid = schema.TEMPLATES_BY_NAME["OrderDelete"].template_id
    raw = {f.name: 0 for f in message_spec(tid).fields}
    raw["Reserved"] = b"\x00" + b"\x01" * 26
    decoded = sbe_schema(61).decode(numpy_encode(tid, raw))
    assert decoded.value["Reserved"] == ""


def test_sbe_quirk_char_arrays_strip_whitespace() -> None:
    """``sbe`` strips spaces around text: a Symbol with an outer space reads back without it,
    so the strategies draw symbols without spaces and the generic decoder checks the bytes."""
    tid = schema.TEMPLATES_BY_NAME["SecurityDefinition"].template_id
    raw = {f.name: 0 for f in message_spec(tid).fields}
    raw.update({"Symbol": b" A B ".ljust(16, b"\x00"), "TradingStatus": 17, "Reserved": bytes(2)})
    decoded = sbe_schema(61).decode(numpy_encode(tid, raw))
    assert decoded.value["Symbol"] == "A B"


def test_sbe_quirk_primitive_typed_field_crashes(tmp_path: Path) -> None:
    """Why every field goes through a named type: ``type="uint64"`` breaks ``sbe`` decode."""
    xml = tmp_path / "primitive.xml"
    xml.write_text(
        '<sbe:messageSchema xmlns:sbe="http://fixprotocol.io/2016/sbe" id="9" version="0">'
        '<types><composite name="messageHeader">'
        '<type name="blockLength" primitiveType="uint16"/>'
        '<type name="templateId" primitiveType="uint16"/>'
        '<type name="schemaId" primitiveType="uint16"/>'
        '<type name="version" primitiveType="uint16"/></composite>'
        '<type name="u64" primitiveType="uint64"/></types>'
        '<sbe:message name="M" id="1" blockLength="16">'
        '<field name="A" id="1" type="u64"/><field name="B" id="2" type="uint64"/>'
        "</sbe:message></sbe:messageSchema>",
        encoding="utf-8",
    )
    s = sbe.Schema.parse(str(xml))
    buf = bytes.fromhex("1000010009000000") + bytes(16)
    with pytest.raises(AttributeError):
        s.decode(buf)
