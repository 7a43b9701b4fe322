"""Hypothesis properties of the wire codec: struct equivalence, round trips, fuzzing."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qfix.wire import codec, codes, schema

_TEMPLATE_IDS = sorted(schema.TEMPLATES)
_DOCUMENTED_H = {
    0,
    codes.BRR_UNSUPPORTED_MESSAGE_TYPE,
    codes.BRR_WRONG_SCHEMA,
    codes.BRR_WRONG_VERSION,
    codes.BRR_BAD_BLOCK_LENGTH,
    codes.BRR_NONZERO_RESERVED,
    codes.BRR_WRONG_DIRECTION,
}


def _value(code: str) -> st.SearchStrategy[object]:
    if code.endswith("s"):
        return st.binary(min_size=int(code[:-1]), max_size=int(code[:-1]))
    if code == "c":
        return st.binary(min_size=1, max_size=1)
    bits = struct.calcsize("<" + code) * 8
    if code.islower():
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.integers(0, 2**bits - 1)


@st.composite
def template_values(draw: st.DrawFn) -> tuple[schema.Template, list[object]]:
    template = schema.TEMPLATES[draw(st.sampled_from(_TEMPLATE_IDS))]
    return template, [draw(_value(code)) for _, code in template.fields]


@given(template_values())
def test_dtype_layout_equals_struct_format(case: tuple[schema.Template, list[object]]) -> None:
    template, values = case
    packed = struct.pack(template.struct_format, *values)
    record = np.frombuffer(packed, dtype=template.dtype)[0]
    built = np.zeros(1, template.dtype)
    for (name, code), value in zip(template.fields, values, strict=True):
        if code == "c":
            assert record[name] == value[0]  # type: ignore[index]
            built[name] = value[0]  # type: ignore[index]
        elif code.endswith("s"):
            assert bytes(record[name]) == value
            built[name] = np.frombuffer(value, np.uint8)  # type: ignore[arg-type]
        else:
            assert int(record[name]) == value
            built[name] = value
    assert built.tobytes() == packed


@given(st.lists(st.binary(min_size=60, max_size=60), min_size=1, max_size=40))
def test_any_frame_of_whole_messages_decodes_and_reencodes(messages: list[bytes]) -> None:
    frame = b"".join(messages)
    decoded = codec.decode(frame)
    assert decoded.count == len(messages)
    assert codec.encode(decoded.raw) == frame


def _check_outcome(frame: bytes, direction: int) -> None:
    result = codec.validate(frame, 123, direction=direction)
    if not codec.check_frame_length(len(frame)):
        assert result.frame is None
        assert len(result.rejects) == 1
        assert result.rejects[0]["BusinessRejectReason"] == codes.BRR_BAD_FRAME_LENGTH
        assert result.rejects[0]["RefMsgIndex"] == codes.REF_MSG_INDEX_WHOLE_FRAME
        return
    assert result.frame is not None
    assert set(result.reasons.tolist()) <= _DOCUMENTED_H
    refused = np.flatnonzero(result.reasons)
    assert result.rejects["RefMsgIndex"].tolist() == refused.tolist()
    assert result.rejects["BusinessRejectReason"].tolist() == result.reasons[refused].tolist()
    raw = result.frame.raw
    for reject, index in zip(result.rejects, refused, strict=True):
        assert int(reject["BusinessRejectRefID"]) == int.from_bytes(raw[index, 8:16].tobytes(), "little")
    # Accepted messages satisfy every stage-H rule by construction.
    for index in np.flatnonzero(result.accepted):
        header = np.frombuffer(raw[index].tobytes(), schema.HEADER)[0]
        assert header["schemaId"] == 60 and header["version"] == 0 and header["blockLength"] == 52
        allowed = codes.CLIENT_TEMPLATES if direction == codec.CLIENT_TO_SERVER else codes.SERVER_TEMPLATES
        template = schema.TEMPLATES[int(header["templateId"])]
        assert template.template_id in allowed
        span = template.reserved_span
        if span:
            assert not raw[index, span[0] : span[0] + span[1]].any()


_VALID = [codec.new_records(t).tobytes() for t in sorted(codes.CLIENT_TEMPLATES | codes.SERVER_TEMPLATES)]


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    messages = draw(st.lists(st.sampled_from(_VALID), min_size=1, max_size=20))
    frame = bytearray(b"".join(messages))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(frame) - 1))
        frame[position] ^= 1 << draw(st.integers(0, 7))
    cut = draw(st.one_of(st.none(), st.integers(0, len(frame))))
    if cut is not None:
        frame = frame[:cut]
    if draw(st.booleans()):
        frame += draw(st.binary(max_size=70))
    return bytes(frame)


@settings(max_examples=300)
@given(mutated_frames(), st.sampled_from([codec.CLIENT_TO_SERVER, codec.SERVER_TO_CLIENT]))
def test_fuzzed_frames_only_produce_documented_outcomes(frame: bytes, direction: int) -> None:
    _check_outcome(frame, direction)


@settings(max_examples=200)
@given(st.binary(max_size=1200), st.sampled_from([codec.CLIENT_TO_SERVER, codec.SERVER_TO_CLIENT]))
def test_random_bytes_only_produce_documented_outcomes(frame: bytes, direction: int) -> None:
    _check_outcome(frame, direction)
    if not codec.check_frame_length(len(frame)):
        try:
            codec.decode(frame)
        except codec.FrameError as exc:
            assert exc.reason == codes.BRR_BAD_FRAME_LENGTH
        else:
            raise AssertionError("decode accepted a frame stage F refuses")
