"""Batch codec: frames of k x 60 bytes <-> typed arrays, and stages F and H (WIRE.md §5.1).

Theory of operation. A frame is decoded by reinterpreting its bytes (``np.frombuffer``)
as a (k, 60) byte matrix plus one structured view per template; nothing is copied until
the caller asks for the accepted messages as 80-byte inbound records. Stage F is a
length check on the whole frame. Stage H runs in one jitted pass over the byte matrix
(``stage_h``), table-driven by template id, so the same kernel checks client-to-server
frames on the server and server-to-client frames on the client. Refusals come back as
ready-to-send BusinessMessageReject records built vectorised from the refused bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from qfix.errors import QfixError
from qfix.wire import codes, schema

CLIENT_TO_SERVER: Final = 0  #: server-side check of what a client sent
SERVER_TO_CLIENT: Final = 1  #: client-side check of what the server sent


class FrameError(QfixError, ValueError):
    """A frame fails stage F; ``reason`` is its BusinessRejectReason (100)."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"frame of {length} bytes: a frame holds 1..{codes.MAX_MSGS_PER_FRAME} "
            f"messages of {codes.MESSAGE_SIZE} bytes"
        )
        self.length = length
        self.reason = codes.BRR_BAD_FRAME_LENGTH


def _tables(direction: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Per template id (0..65535 folded to 0..255 lookups): defined, allowed, reserved span."""
    defined = np.zeros(256, np.uint8)
    allowed = np.zeros(256, np.uint8)
    reserved = np.zeros((256, 2), np.uint8)  # (message offset, length)
    allowed_set = codes.CLIENT_TEMPLATES if direction == CLIENT_TO_SERVER else codes.SERVER_TEMPLATES
    for tid, template in schema.TEMPLATES.items():
        if template.schema_id != codes.SCHEMA_ORDER_ENTRY:
            continue
        defined[tid] = 1
        allowed[tid] = tid in allowed_set
        span = template.reserved_span
        if span is not None:
            reserved[tid] = span
    return defined, allowed, reserved


#: stage H's tables (defined, allowed, reserved span) per direction, for ``stage_h``
STAGE_H_TABLES: Final = {d: _tables(d) for d in (CLIENT_TO_SERVER, SERVER_TO_CLIENT)}


#: header words of an acceptable schema-60 message: (blockLength | templateId << 16, schemaId | version << 16)
_GOOD_BLOCK_LENGTH: Final = codes.BLOCK_LENGTH
_GOOD_SCHEMA_VERSION: Final = codes.SCHEMA_ORDER_ENTRY | (codes.SCHEMA_VERSION << 16)


@numba.njit(cache=True, nogil=True)
def stage_h(
    words: npt.NDArray[np.uint32],
    raw: npt.NDArray[np.uint8],
    defined: npt.NDArray[np.uint8],
    allowed: npt.NDArray[np.uint8],
    reserved: npt.NDArray[np.uint8],
    reasons: npt.NDArray[np.uint8],
) -> int:
    """Stage H over k messages: reasons[i] = 0 (accepted) or the first failing
    BusinessRejectReason in WIRE.md §5.1 order. Returns the number refused.

    ``words`` is the (k, 15) uint32 view and ``raw`` the (k, 60) byte view of one frame.
    A good header is two word compares; only a bad one walks the ordered checks.
    """
    refused = 0
    for i in range(words.shape[0]):
        low = words[i, 0]
        high = words[i, 1]
        template_id = low >> 16
        reason = 0
        if (
            high == _GOOD_SCHEMA_VERSION
            and (low & 0xFFFF) == _GOOD_BLOCK_LENGTH
            and template_id < 256
            and allowed[template_id] != 0
        ):
            length = reserved[template_id, 1]
            if length != 0:
                start = reserved[template_id, 0]
                acc = 0
                for j in range(start, start + length):
                    acc |= raw[i, j]
                if acc != 0:
                    reason = codes.BRR_NONZERO_RESERVED
        elif (high & 0xFFFF) != codes.SCHEMA_ORDER_ENTRY:
            reason = codes.BRR_WRONG_SCHEMA
        elif (high >> 16) > codes.SCHEMA_VERSION:
            reason = codes.BRR_WRONG_VERSION
        elif template_id > 255 or defined[template_id] == 0:
            reason = codes.BRR_UNSUPPORTED_MESSAGE_TYPE
        elif allowed[template_id] == 0:
            reason = codes.BRR_WRONG_DIRECTION
        else:
            reason = codes.BRR_BAD_BLOCK_LENGTH
        reasons[i] = reason
        if reason != 0:
            refused += 1
    return refused


def check_frame_length(length: int) -> bool:
    """Stage F: a frame is 1..MAX_MSGS_PER_FRAME whole messages."""
    return (
        length % codes.MESSAGE_SIZE == 0
        and codes.MESSAGE_SIZE <= length <= codes.MAX_MSGS_PER_FRAME * codes.MESSAGE_SIZE
    )


def as_bytes_matrix(frame: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The frame as a (k, 60) uint8 view, without copying. Raises FrameError (stage F)."""
    raw = np.frombuffer(frame, dtype=np.uint8)
    if not check_frame_length(raw.size):
        raise FrameError(raw.size)
    return raw.reshape(-1, codes.MESSAGE_SIZE)


@dataclass(slots=True)
class Frame:
    """A decoded frame: zero-copy views of its k messages."""

    raw: npt.NDArray[np.uint8]  # (k, 60)

    @property
    def count(self) -> int:
        return int(self.raw.shape[0])

    @property
    def header(self) -> npt.NDArray[np.void]:
        """The k headers (dtype ``schema.HEADER``, itemsize 60)."""
        return self.raw.reshape(-1).view(schema.HEADER)

    @property
    def template_ids(self) -> npt.NDArray[np.uint16]:
        return self.header["templateId"]

    def view(self, template_id: int) -> npt.NDArray[np.void]:
        """All k messages seen through one template's dtype (meaningful where templateId matches)."""
        return self.raw.reshape(-1).view(schema.TEMPLATES[template_id].dtype)

    def messages(self, template_id: int) -> npt.NDArray[np.void]:
        """Copies of the messages whose templateId is ``template_id``, in frame order."""
        selected: npt.NDArray[np.void] = self.view(template_id)[self.template_ids == template_id]
        return selected


def decode(frame: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Frame:
    """Decode a frame of k x 60 bytes without copying. Raises FrameError (stage F)."""
    return Frame(as_bytes_matrix(frame))


# Read-only all-accepted masks, sliced per frame: the common case allocates nothing.
_ALL_ACCEPTED: Final = np.ones(codes.MAX_MSGS_PER_FRAME, np.bool_)
_ALL_ACCEPTED.flags.writeable = False


@dataclass(slots=True)
class Validation:
    """Outcome of stages F and H for one frame.

    accepted: bool per message; empty when the frame itself was refused, a shared
        read-only array when every message was accepted.
    reasons: BusinessRejectReason per message, 0 where accepted.
    rejects: the BusinessMessageReject records to send, in frame order (one for a
        refused frame, else one per refused message).
    frame: the decoded frame, or None when stage F refused it.
    """

    accepted: npt.NDArray[np.bool_]
    reasons: npt.NDArray[np.uint8]
    rejects: npt.NDArray[np.void]
    frame: Frame | None

    @property
    def all_accepted(self) -> bool:
        return self.frame is not None and len(self.rejects) == 0


def _first16(frame: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    data = np.frombuffer(frame, dtype=np.uint8)[:16]
    out = np.zeros(16, np.uint8)
    out[: data.size] = data
    return out


def business_message_rejects(
    refused: npt.NDArray[np.uint8],
    indices: npt.NDArray[np.intp] | npt.NDArray[np.uint16],
    reasons: npt.NDArray[np.uint8],
    frame_length: int,
    transact_time: int,
) -> npt.NDArray[np.void]:
    """BusinessMessageReject records for refused messages.

    ``refused`` is (n, >=16) bytes of the refused messages (only bytes 0..15 are read),
    ``indices`` their RefMsgIndex, ``reasons`` their BusinessRejectReason.
    """
    n = len(reasons)
    out = np.zeros(n, schema.BUSINESS_MESSAGE_REJECT)
    out["blockLength"] = codes.BLOCK_LENGTH
    out["templateId"] = codes.TEMPLATE_BUSINESS_MESSAGE_REJECT
    out["schemaId"] = codes.SCHEMA_ORDER_ENTRY
    out["version"] = codes.SCHEMA_VERSION
    head = np.ascontiguousarray(refused[:, :16])
    words = head.view("<u2")
    out["RefBlockLength"] = words[:, 0]
    out["RefTemplateId"] = words[:, 1]
    out["RefSchemaId"] = words[:, 2]
    out["RefVersion"] = words[:, 3]
    out["BusinessRejectRefID"] = head[:, 8:16].copy().view("<u8")[:, 0]
    out["TransactTime"] = transact_time
    out["RefFrameLength"] = min(frame_length, 2**32 - 1)
    out["RefMsgIndex"] = indices
    out["BusinessRejectReason"] = reasons
    return out


def validate(
    frame: bytes | bytearray | memoryview | npt.NDArray[np.uint8] | Frame,
    transact_time: int,
    direction: int = CLIENT_TO_SERVER,
) -> Validation:
    """Stages F and H of WIRE.md §5.1 over a whole frame, vectorised.

    ``frame`` is the received bytes (any buffer, read as bytes) or a decoded Frame.
    ``transact_time`` stamps the BusinessMessageRejects: the time of refusal, from the
    caller's clock. ``direction`` selects which templates may arrive (CLIENT_TO_SERVER
    on the server, SERVER_TO_CLIENT on the client).
    """
    flat = frame.raw.reshape(-1) if isinstance(frame, Frame) else np.frombuffer(frame, dtype=np.uint8)
    length = flat.size
    if not check_frame_length(length):
        head = _first16(flat)[None, :]
        rejects = business_message_rejects(
            head,
            np.array([codes.REF_MSG_INDEX_WHOLE_FRAME], np.uint16),
            np.array([codes.BRR_BAD_FRAME_LENGTH], np.uint8),
            length,
            transact_time,
        )
        k = 0
        return Validation(np.zeros(k, np.bool_), np.zeros(k, np.uint8), rejects, None)
    raw = flat.reshape(-1, codes.MESSAGE_SIZE)
    decoded = frame if isinstance(frame, Frame) else Frame(raw)
    reasons, refused = _stage_h_reasons(raw, direction)
    if refused == 0:
        return Validation(_ALL_ACCEPTED[: raw.shape[0]], reasons, _NO_REJECTS, decoded)
    accepted = reasons == 0
    bad = np.flatnonzero(~accepted)
    rejects = business_message_rejects(decoded.raw[bad], bad, reasons[bad], length, transact_time)
    return Validation(accepted, reasons, rejects, decoded)


_NO_REJECTS: Final = np.zeros(0, schema.BUSINESS_MESSAGE_REJECT)
_NO_REJECTS.flags.writeable = False


def accept_frame(
    frame: bytes | bytearray | memoryview, direction: int = SERVER_TO_CLIENT
) -> npt.NDArray[np.uint8] | None:
    """The frame as (k, 60) bytes, without copying, if stages F and H accept every message
    of it; else None. The per-frame path of a receiver that refuses a frame as a whole
    (a client, WIRE.md §5.4): no rejects are built, nothing else is allocated."""
    flat = np.frombuffer(frame, dtype=np.uint8)
    if not check_frame_length(flat.size):
        return None
    raw = flat.reshape(-1, codes.MESSAGE_SIZE)
    return None if _stage_h_reasons(raw, direction)[1] else raw


def _stage_h_reasons(raw: npt.NDArray[np.uint8], direction: int) -> tuple[npt.NDArray[np.uint8], int]:
    """Stage H over (k, 60) bytes: each message's reason (0 = accepted) and how many were refused."""
    defined, allowed, reserved = STAGE_H_TABLES[direction]
    reasons = np.empty(raw.shape[0], np.uint8)
    return reasons, stage_h(raw.view(np.uint32), raw, defined, allowed, reserved, reasons)


def template_ids(raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    """The templateId of each message of (k, 60) bytes (a view: header bytes 2-3)."""
    ids: npt.NDArray[np.uint16] = raw.view("<u2")[:, _TEMPLATE_ID_U16]
    return ids


#: templateId is the second little-endian u16 of the header
_TEMPLATE_ID_U16: Final = 1


def to_inbound(
    raw: npt.NDArray[np.uint8],
    session_id: int,
    session_account: int,
    recv_time: int,
    out: npt.NDArray[np.void] | None = None,
) -> npt.NDArray[np.void]:
    """80-byte inbound records (WIRE.md §6.1) for accepted messages ``raw`` (n, 60)."""
    n = raw.shape[0]
    records = np.zeros(n, schema.INBOUND) if out is None else out[:n]
    records["message"] = raw
    records["SessionID"] = session_id
    records["SessionAccount"] = session_account
    records["InboundReserved"] = 0
    records["RecvTime"] = recv_time
    return records


def new_records(template_id: int, count: int = 1) -> npt.NDArray[np.void]:
    """Zeroed records of a template with the header set (reserved bytes stay zero)."""
    template = schema.TEMPLATES[template_id]
    out = np.zeros(count, template.dtype)
    out["blockLength"] = codes.BLOCK_LENGTH
    out["templateId"] = template_id
    out["schemaId"] = template.schema_id
    out["version"] = codes.SCHEMA_VERSION
    return out


def encode(*records: npt.NDArray[np.void] | npt.NDArray[np.uint8]) -> bytes:
    """One frame from arrays of 60-byte records (any template dtypes, or (n, 60) bytes),
    in argument order. Raises ValueError if the result is not a valid frame length."""
    if not records:
        raise FrameError(0)
    parts = []
    for array in records:
        if array.dtype.itemsize == codes.MESSAGE_SIZE or (
            array.dtype == np.uint8 and array.ndim == 2 and array.shape[1] == codes.MESSAGE_SIZE
        ):
            parts.append(np.ascontiguousarray(array).view(np.uint8).reshape(-1))
        elif array.dtype == schema.OUTPUT:
            parts.append(np.ascontiguousarray(array["message"]).reshape(-1))  # type: ignore[call-overload]
        else:
            raise ValueError(f"cannot encode records of dtype {array.dtype} (itemsize {array.dtype.itemsize})")
    data = parts[0].tobytes() if len(parts) == 1 else np.concatenate(parts).tobytes()
    if not check_frame_length(len(data)):
        raise FrameError(len(data))
    return data


def split_frames(raw: npt.NDArray[np.uint8]) -> list[bytes]:
    """Pack a (n, 60) message matrix into frames of at most MAX_MSGS_PER_FRAME, in order."""
    step = codes.MAX_MSGS_PER_FRAME
    return [raw[i : i + step].tobytes() for i in range(0, raw.shape[0], step)]
