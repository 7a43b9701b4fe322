"""The 60-byte binary FIX wire format (WIRE.md): dtypes, codes, codec. No I/O."""

from qfix.wire import codes, message, schema
from qfix.wire.codec import (
    CLIENT_TO_SERVER,
    SERVER_TO_CLIENT,
    Frame,
    FrameError,
    Validation,
    business_message_rejects,
    check_frame_length,
    decode,
    encode,
    new_records,
    split_frames,
    to_inbound,
    validate,
)
from qfix.wire.message import describe, p9_to_price, price_to_p9
from qfix.wire.schema import INBOUND, INBOUND_BY_TEMPLATE, OUTPUT, TEMPLATES, TEMPLATES_BY_NAME, Template

__all__ = [
    "CLIENT_TO_SERVER",
    "INBOUND",
    "INBOUND_BY_TEMPLATE",
    "OUTPUT",
    "SERVER_TO_CLIENT",
    "TEMPLATES",
    "TEMPLATES_BY_NAME",
    "Frame",
    "FrameError",
    "Template",
    "Validation",
    "business_message_rejects",
    "check_frame_length",
    "codes",
    "decode",
    "describe",
    "encode",
    "message",
    "new_records",
    "p9_to_price",
    "price_to_p9",
    "schema",
    "split_frames",
    "to_inbound",
    "validate",
]
