"""Stages F and H (WIRE.md §5.1): one test per row and reason, plus codec basics."""

from __future__ import annotations

import numpy as np
import pytest

from qfix.wire import codec, codes, message, schema

NOW = 1_767_225_600_123_456_789


def _nos(cl_ord_id: int = 1) -> bytes:
    return message.new_order_single(cl_ord_id=cl_ord_id, security_id=42, side="buy", qty=10, price="100.25").tobytes()


def _frame(*messages: bytes) -> bytes:
    return b"".join(messages)


def _patch(msg: bytes, offset: int, data: bytes) -> bytes:
    return msg[:offset] + data + msg[offset + len(data) :]


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


@pytest.mark.parametrize("length", [0, 1, 59, 61, 119, 1091 * 60 + 1, 1092 * 60])
def test_stage_f_refuses_the_whole_frame(length: int) -> None:
    frame = (_nos() * 1100)[:length]
    result = codec.validate(frame, NOW)
    assert result.frame is None
    assert result.accepted.size == 0
    assert len(result.rejects) == 1
    reject = result.rejects[0]
    assert reject["BusinessRejectReason"] == codes.BRR_BAD_FRAME_LENGTH
    assert reject["RefMsgIndex"] == codes.REF_MSG_INDEX_WHOLE_FRAME
    assert reject["RefFrameLength"] == length
    assert reject["TransactTime"] == NOW
    head = (frame + bytes(16))[:16]
    assert reject["RefBlockLength"] == int.from_bytes(head[0:2], "little")
    assert reject["RefTemplateId"] == int.from_bytes(head[2:4], "little")
    assert reject["RefSchemaId"] == int.from_bytes(head[4:6], "little")
    assert reject["RefVersion"] == int.from_bytes(head[6:8], "little")
    assert reject["BusinessRejectRefID"] == int.from_bytes(head[8:16], "little")
    with pytest.raises(codec.FrameError):
        codec.decode(frame)


@pytest.mark.parametrize("count", [1, 2, 1091])
def test_stage_f_accepts_1_to_1091_messages(count: int) -> None:
    frame = b"".join(_nos(i + 1) for i in range(count))
    result = codec.validate(frame, NOW)
    assert result.all_accepted
    assert result.accepted.sum() == count
    assert result.frame is not None and result.frame.count == count


def _stage_h_cases() -> list[tuple[str, bytes, int]]:
    nos = _nos()
    cancel = message.order_cancel_request(cl_ord_id=2, security_id=42, side="buy", order_id=5).tobytes()
    mass = message.order_mass_cancel_request(cl_ord_id=3).tobytes()
    hb = message.heartbeat().tobytes()
    rr = message.retransmit_request(from_exec_id=1, count=5).tobytes()
    er = codec.new_records(codes.TEMPLATE_EXECUTION_REPORT).tobytes()
    return [
        ("schema 61", _patch(nos, 4, _u16(61)), codes.BRR_WRONG_SCHEMA),
        ("schema 0", _patch(nos, 4, _u16(0)), codes.BRR_WRONG_SCHEMA),
        ("version 1", _patch(nos, 6, _u16(1)), codes.BRR_WRONG_VERSION),
        ("unknown template 5", _patch(nos, 2, _u16(5)), codes.BRR_UNSUPPORTED_MESSAGE_TYPE),
        ("template 31 is schema 61", _patch(nos, 2, _u16(31)), codes.BRR_UNSUPPORTED_MESSAGE_TYPE),
        ("template 65535", _patch(nos, 2, _u16(65535)), codes.BRR_UNSUPPORTED_MESSAGE_TYPE),
        ("server template 10", er, codes.BRR_WRONG_DIRECTION),
        ("server template 22", _patch(hb, 2, _u16(22)), codes.BRR_WRONG_DIRECTION),
        ("block length 51", _patch(nos, 0, _u16(51)), codes.BRR_BAD_BLOCK_LENGTH),
        ("NOS reserved", _patch(nos, 57, b"\x01"), codes.BRR_NONZERO_RESERVED),
        ("cancel reserved", _patch(cancel, 59, b"\x80"), codes.BRR_NONZERO_RESERVED),
        ("mass cancel reserved", _patch(mass, 34, b"\x01"), codes.BRR_NONZERO_RESERVED),
        ("heartbeat reserved", _patch(hb, 45, b"\x01"), codes.BRR_NONZERO_RESERVED),
        ("retransmit reserved", _patch(rr, 28, b"\x01"), codes.BRR_NONZERO_RESERVED),
        # The first failing check decides: schema before version before template ...
        ("schema beats version", _patch(_patch(nos, 4, _u16(61)), 6, _u16(9)), codes.BRR_WRONG_SCHEMA),
        ("version beats template", _patch(_patch(nos, 6, _u16(9)), 2, _u16(99)), codes.BRR_WRONG_VERSION),
        ("direction beats block length", _patch(er, 0, _u16(1)), codes.BRR_WRONG_DIRECTION),
        ("template beats block length", _patch(_patch(nos, 2, _u16(7)), 0, _u16(3)), 3),
        ("block length beats reserved", _patch(_patch(nos, 0, _u16(0)), 57, b"\x01"), codes.BRR_BAD_BLOCK_LENGTH),
    ]


@pytest.mark.parametrize(("label", "bad", "reason"), _stage_h_cases(), ids=[c[0] for c in _stage_h_cases()])
def test_stage_h_refuses_only_that_message(label: str, bad: bytes, reason: int) -> None:
    good_before, good_after = _nos(10), _nos(11)
    result = codec.validate(_frame(good_before, bad, good_after), NOW)
    assert result.accepted.tolist() == [True, False, True]
    assert result.reasons.tolist() == [0, reason, 0]
    assert len(result.rejects) == 1
    reject = result.rejects[0]
    assert reject["BusinessRejectReason"] == reason
    assert reject["RefMsgIndex"] == 1
    assert reject["RefFrameLength"] == 180
    assert reject["BusinessRejectRefID"] == int.from_bytes(bad[8:16], "little")
    assert reject["RefTemplateId"] == int.from_bytes(bad[2:4], "little")
    assert reject["RefBlockLength"] == int.from_bytes(bad[0:2], "little")
    assert reject["RefSchemaId"] == int.from_bytes(bad[4:6], "little")
    assert reject["RefVersion"] == int.from_bytes(bad[6:8], "little")
    assert reject["TransactTime"] == NOW
    assert (reject["blockLength"], reject["templateId"], reject["schemaId"], reject["version"]) == (52, 13, 60, 0)
    assert bytes(reject["Reserved"]) == bytes(21)
    # The reject itself is a valid server-to-client message.
    assert codec.validate(codec.encode(result.rejects), NOW, direction=codec.SERVER_TO_CLIENT).all_accepted


def test_frames_from_any_buffer_are_read_as_bytes() -> None:
    data = _frame(_nos(1), _nos(2), _nos(3))
    shaped = memoryview(bytearray(data)).cast("B", (3, 60))
    words = memoryview(bytearray(data)).cast("I")
    unaligned = memoryview(bytearray(b"x" + data))[1:]  # the kernel reads header words
    for frame in (shaped, words, unaligned, np.frombuffer(data, np.uint8), codec.decode(data)):
        result = codec.validate(frame, NOW)
        assert result.all_accepted and result.accepted.tolist() == [True, True, True]


def test_replace_has_no_reserved_bytes_and_passes() -> None:
    replace = message.order_cancel_replace_request(
        cl_ord_id=4, orig_cl_ord_id=1, security_id=42, side="buy", qty=5, price="1.5"
    ).tobytes()
    assert codec.validate(replace, NOW).all_accepted


def test_client_checks_server_frames() -> None:
    nos = _nos()
    result = codec.validate(nos, NOW, direction=codec.SERVER_TO_CLIENT)
    assert result.reasons.tolist() == [codes.BRR_WRONG_DIRECTION]
    bmr = codec.new_records(codes.TEMPLATE_BUSINESS_MESSAGE_REJECT)
    bmr["Reserved"][0, 20] = 1
    assert codec.validate(bmr.tobytes(), NOW, direction=codec.SERVER_TO_CLIENT).reasons.tolist() == [
        codes.BRR_NONZERO_RESERVED
    ]


def test_decode_is_zero_copy_and_typed() -> None:
    frame = bytearray(_frame(_nos(1), _nos(2)))
    decoded = codec.decode(frame)
    assert decoded.template_ids.tolist() == [1, 1]
    view = decoded.view(codes.TEMPLATE_NEW_ORDER_SINGLE)
    assert view["ClOrdID"].tolist() == [1, 2]
    frame[8] = 99  # ClOrdID of message 0, low byte
    assert view["ClOrdID"][0] == 99
    assert decoded.messages(codes.TEMPLATE_ORDER_CANCEL_REQUEST).size == 0


def test_to_inbound_appends_server_columns() -> None:
    frame = _frame(_nos(1), _nos(2))
    decoded = codec.decode(frame)
    inbound = codec.to_inbound(decoded.raw, session_id=3, session_account=77, recv_time=NOW)
    assert inbound.dtype == schema.INBOUND and inbound.dtype.itemsize == 80
    assert inbound.tobytes()[:60] == frame[:60]
    typed = inbound.view(schema.INBOUND_NEW_ORDER_SINGLE)
    assert typed["ClOrdID"].tolist() == [1, 2]
    assert typed["SessionID"].tolist() == [3, 3]
    assert typed["SessionAccount"].tolist() == [77, 77]
    assert typed["RecvTime"].tolist() == [NOW, NOW]
    assert bytes(inbound.tobytes()[68:72]) == bytes(4)


def test_encode_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError):
        codec.encode(np.zeros(3, np.uint32))
    with pytest.raises(ValueError):
        codec.encode(np.zeros((60, 59), np.uint8))
    with pytest.raises(codec.FrameError):
        codec.encode()
    with pytest.raises(codec.FrameError):
        codec.encode(codec.new_records(1, 1092))


def test_encode_concatenates_in_order_and_outputs() -> None:
    a = codec.new_records(codes.TEMPLATE_EXECUTION_REPORT, 2)
    b = codec.new_records(codes.TEMPLATE_HEARTBEAT, 1)
    out = np.zeros(1, schema.OUTPUT)
    out["message"][0] = np.frombuffer(b.tobytes(), np.uint8)
    frame = codec.encode(a, b, out)
    assert codec.decode(frame).template_ids.tolist() == [10, 10, 20, 20]


def test_split_frames_respects_the_maximum() -> None:
    raw = np.zeros((2500, 60), np.uint8)
    frames = codec.split_frames(raw)
    assert [len(f) // 60 for f in frames] == [1091, 1091, 318]


def test_price_conversion_is_exact() -> None:
    assert message.price_to_p9("65000.50") == 65_000_500_000_000
    assert message.price_to_p9(None) == codes.NULL_PRICE
    assert message.p9_to_price(codes.NULL_PRICE) is None
    assert str(message.p9_to_price(-1)) == "-1E-9"
    with pytest.raises(ValueError, match="9 decimal"):
        message.price_to_p9("0.0000000001")
    with pytest.raises(ValueError, match="PRICE9"):
        message.price_to_p9("9223372036.854775807")


def test_builders_refuse_unknown_names() -> None:
    with pytest.raises(ValueError, match="side"):
        message.new_order_single(cl_ord_id=1, security_id=1, side="up", qty=1)
    with pytest.raises(ValueError, match="time in force"):
        message.new_order_single(cl_ord_id=1, security_id=1, side="buy", qty=1, tif="forever")


def test_describe_every_template() -> None:
    for template_id, template in schema.TEMPLATES.items():
        shown = message.describe(codec.new_records(template_id).tobytes())
        assert shown["template"] == template.name
        assert shown["templateId"] == template_id
        assert "Reserved" not in shown
    with pytest.raises(ValueError):
        message.describe(b"short")


def test_describe_labels_enums_sets_and_nulls() -> None:
    report = codec.new_records(codes.TEMPLATE_ORDER_MASS_CANCEL_REPORT)
    report["SecurityID"] = codes.NULL_U32
    report["MassCancelRejectReason"] = codes.MASS_CANCEL_REJECT_NONE
    report["Side"] = codes.MASS_CANCEL_SIDE_BOTH
    shown = message.describe(report[0])
    assert shown["SecurityID"] is None
    assert shown["MassCancelRejectReason"] == "255 None"
    assert shown["Side"] == "0 Both"
    status = codec.new_records(codes.TEMPLATE_SECURITY_STATUS)
    status["HaltReason"] = codes.HALT_REASON_OPERATOR
    status["MatchEventIndicator"] = codes.MEI_END_OF_EVENT | codes.MEI_LAST_TRADE_MSG
    shown = message.describe(status[0])
    assert shown["HaltReason"] == "1 Operator"
    assert shown["MatchEventIndicator"] == "LastTradeMsg|EndOfEvent"
    nos = message.new_order_single(
        cl_ord_id=9, security_id=1, side="sell", qty=10, price="100", min_qty=3, max_floor=4, tif="ioc"
    )
    shown = message.describe(nos)
    assert (shown["MinQty"], shown["MaxFloor"], shown["TimeInForce"]) == (3, 4, "3 ImmediateOrCancel")
    assert shown["Price"] == 100 and str(shown["Price"]) == "100"


def test_non_finite_prices_are_refused() -> None:
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError, match="finite"):
            message.price_to_p9(bad)


@pytest.mark.parametrize(("label", "bad", "reason"), _stage_h_cases(), ids=[c[0] for c in _stage_h_cases()])
def test_accept_frame_refuses_a_frame_with_any_refused_message(label: str, bad: bytes, reason: int) -> None:
    frame = _frame(_nos(10), bad, _nos(11))
    assert codec.accept_frame(frame, codec.CLIENT_TO_SERVER) is None
    assert not codec.validate(frame, NOW).all_accepted  # the same verdict as the full check


@pytest.mark.parametrize("length", [0, 59, 61, 1092 * 60])
def test_accept_frame_refuses_a_bad_length(length: int) -> None:
    assert codec.accept_frame(bytes(length), codec.CLIENT_TO_SERVER) is None


def test_accept_frame_is_a_view_of_an_accepted_frame_and_reads_its_templates() -> None:
    hb = message.heartbeat().tobytes()
    frame = _frame(_nos(1), hb, _nos(2))
    raw = codec.accept_frame(frame, codec.CLIENT_TO_SERVER)
    assert raw is not None and raw.shape == (3, 60) and raw.tobytes() == frame
    expected = [1, codes.TEMPLATE_HEARTBEAT, 1]
    assert codec.template_ids(raw).tolist() == codec.decode(frame).template_ids.tolist() == expected
    # a server's report is refused in the other direction only
    er = codec.new_records(codes.TEMPLATE_EXECUTION_REPORT).tobytes()
    assert codec.accept_frame(er, codec.SERVER_TO_CLIENT) is not None
    assert codec.accept_frame(er, codec.CLIENT_TO_SERVER) is None


def test_word_offsets_of_fields_and_records() -> None:
    assert schema.word_offset(schema.NEW_ORDER_SINGLE, "ClOrdID") == 2  # after the 8-byte header
    assert schema.word_offset(schema.INBOUND, "RecvTime") == 18
    assert schema.word_offset(schema.OUTPUT) == 16
    with pytest.raises(ValueError, match="OrdType at byte 53"):
        schema.word_offset(schema.NEW_ORDER_SINGLE, "OrdType")
