"""Shared helpers: the two XML files, Hypothesis strategies and the NumPy codec side."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

from qfix.wire import schema
from qfix.wire.sbe_files import market_data_xml_path, order_entry_xml_path

from . import _sbexml

XML_PATHS = {60: order_entry_xml_path(), 61: market_data_xml_path()}
TEMPLATE_IDS = sorted(schema.TEMPLATES)
HEADER_NAMES = ("blockLength", "templateId", "schemaId", "version")

_BOUNDS = {
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


@cache
def spec(schema_id: int) -> _sbexml.Schema:
    return _sbexml.load(XML_PATHS[schema_id])


def message_spec(template_id: int) -> _sbexml.Message:
    return spec(schema.TEMPLATES[template_id].schema_id).messages[template_id]


def raw_strategy(
    f: _sbexml.Field, *, reserved: str = "zero", set_bits: tuple[int, ...] | None = None
) -> st.SearchStrategy[Any]:
    """Raw values of one field: ints as the dtype holds them, bytes for char arrays.

    Valid values only (an enum's codes, a set's defined bits, Reserved zero, text such as
    Symbol as 1..length visible ASCII characters right-padded with zeros), except
    ``reserved="any"``, which draws arbitrary bytes for every char array (Reserved and
    text alike) for pure layout checks.
    """
    if f.kind == "chars":
        if reserved == "any":
            return st.binary(min_size=f.length, max_size=f.length)
        if f.name == "Reserved":
            return st.just(bytes(f.length))
        visible = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
        text = st.text(visible, min_size=1, max_size=f.length)
        return text.map(lambda t: t.encode("ascii").ljust(f.length, b"\x00"))
    if f.kind == "enum":
        assert f.codes is not None
        return st.sampled_from(sorted(f.codes.values()))
    if f.kind == "set":
        assert f.bits is not None
        bits = sorted(f.bits.values()) if set_bits is None else list(set_bits)
        return st.sets(st.sampled_from(bits)).map(lambda s: sum(1 << b for b in s))
    lo, hi = _BOUNDS[f.primitive]
    values = st.integers(lo, hi)
    return values if f.null is None else st.one_of(st.just(f.null), values)


def raw_values(
    template_id: int, *, reserved: str = "zero", set_bits: dict[str, tuple[int, ...]] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """{field: raw value} for every block field of ``template_id``."""
    limits = set_bits or {}
    return st.fixed_dictionaries(
        {
            f.name: raw_strategy(f, reserved=reserved, set_bits=limits.get(f.name))
            for f in message_spec(template_id).fields
        }
    )


def header_of(template_id: int) -> dict[str, int]:
    t = schema.TEMPLATES[template_id]
    return {"blockLength": 52, "templateId": template_id, "schemaId": t.schema_id, "version": 0}


def numpy_encode(template_id: int, raw: dict[str, Any]) -> bytes:
    """The codec side: a record of the template's dtype, filled field by field."""
    t = schema.TEMPLATES[template_id]
    rec = np.zeros(1, dtype=t.dtype)
    for name, value in {**header_of(template_id), **raw}.items():
        rec[name] = np.frombuffer(value, dtype=np.uint8) if isinstance(value, bytes) else value
    out = rec.tobytes()
    assert len(out) == 60
    return out


def numpy_decode(template_id: int, buf: bytes) -> dict[str, Any]:
    """The codec side: ``np.frombuffer`` with the template's dtype, as raw values."""
    rec = np.frombuffer(buf, dtype=schema.TEMPLATES[template_id].dtype)
    assert rec.shape == (1,)
    out: dict[str, Any] = {}
    for name in rec.dtype.names or ():
        value = rec[name][0]
        out[name] = value.tobytes() if isinstance(value, np.ndarray) else int(value)
    return out
