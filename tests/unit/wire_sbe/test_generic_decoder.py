"""WIRE.md §7 test 2, second decoder: the generic XML-driven decoder of ``_sbexml``.

It reads offsets, primitive types, nulls and enum/set tables from the XML alone (no qfix
import) and checks what ``sbe`` 0.4.3 cannot: the exact bytes of every char array (Reserved,
and SecurityDefinition's Symbol past its zero padding) and every bit of MatchEventIndicator
in both directions. It runs over every field of all 30 templates, so it also double-checks
everything ``sbe`` covers. Char-array bytes are drawn arbitrarily here (a layout check: each
Reserved or Symbol span must land exactly where the XML puts it).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qfix.wire import schema

from . import _sbexml
from ._common import (
    TEMPLATE_IDS,
    header_of,
    message_spec,
    numpy_decode,
    numpy_encode,
    raw_values,
    spec,
)

EXAMPLES = settings(max_examples=25, deadline=None)


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
@EXAMPLES
@given(data=st.data())
def test_numpy_encoded_decodes_generically(template_id: int, data: st.DataObject) -> None:
    t = schema.TEMPLATES[template_id]
    raw = data.draw(raw_values(template_id, reserved="any"), label="fields")
    header, name, values = _sbexml.decode(spec(t.schema_id), numpy_encode(template_id, raw))
    assert (header, name) == (header_of(template_id), t.name)
    assert values == {f.name: _sbexml.to_semantic(f, raw[f.name]) for f in message_spec(template_id).fields}


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
@EXAMPLES
@given(data=st.data())
def test_generic_encoded_decodes_with_numpy(template_id: int, data: st.DataObject) -> None:
    t = schema.TEMPLATES[template_id]
    raw = data.draw(raw_values(template_id, reserved="any"), label="fields")
    values = {f.name: _sbexml.to_semantic(f, raw[f.name]) for f in message_spec(template_id).fields}
    buf = _sbexml.encode(spec(t.schema_id), template_id, values)
    assert numpy_decode(template_id, buf) == {**header_of(template_id), **raw}


def test_full_matcheventindicator_both_ways() -> None:
    """Every defined MEI combination, explicitly (bits 5 and 7 are beyond ``sbe`` encode)."""
    tid = schema.TEMPLATES_BY_NAME["ChannelHeartbeat"].template_id
    base = {f.name: 0 for f in message_spec(tid).fields}
    base["Reserved"] = bytes(26)
    for mask in range(256):
        if mask & ~0xA1:
            continue
        raw = {**base, "MatchEventIndicator": mask}
        buf = numpy_encode(tid, raw)
        assert buf[59] == mask
        values = _sbexml.decode(spec(61), buf)[2]
        assert _sbexml.encode(spec(61), tid, values) == buf


# --- the generic decoder itself refuses what it cannot read -----------------------------


def _nos() -> bytes:
    tid = 1
    raw = {f.name: f.null if f.null is not None else 0 for f in message_spec(tid).fields}
    raw.update(
        {"Side": 0x31, "OrdType": 0x32, "TimeInForce": 0x30, "SelfMatchPreventionInstruction": 255, "Reserved": b"\x00"}
    )
    return numpy_encode(tid, raw)


def test_generic_decoder_checks_header_and_codes() -> None:
    s = spec(60)
    good = _nos()
    assert _sbexml.decode(s, good)[1] == "NewOrderSingle"
    bad_schema = good[:4] + struct.pack("<H", 61) + good[6:]
    bad_block = struct.pack("<H", 51) + good[2:]
    bad_side = good[: 8 + 44] + b"\x33" + good[8 + 45 :]
    bad_set = good[: 8 + 47] + b"\x04" + good[8 + 48 :]
    for buf in (bad_schema, bad_block, bad_side, bad_set, good[:59]):
        with pytest.raises(ValueError):
            _sbexml.decode(s, buf)
