"""The record path's sockets in compiled code: a pass reads its records from the ROUTER
socket, runs them (``_pass``) and sends the sealed reports, without Python in between.

Why: with the records opened, checked, matched and sealed in kernels (``_pass``), most
of a one-order batch's time was Python around them: the endpoint's reads (an object and
an event per frame, an exception for the empty read that ends them), the packing of the
kernel's tables per frame and session, the sends (docs/benchmarks.md, "The one-order
round trip"). :func:`serve_pass` takes the common case from the socket to the engine's
output sealed, :func:`send_sealed` puts the sealed records on the socket; everything
else is handed back to the endpoint, exactly as it came.

Reading (:func:`read_frames`). Each waiting message is taken whole: its routing id, its
frame, any further frames. A frame of a connection in ``slots`` (an established,
trading session: found by its routing id in a small hash table) is copied into
``frames`` for the pass. A handshake frame (it starts with the QZMQ magic) is copied
into ``hand``, with its transport's descriptor and peer address, for the endpoint's
handshake queues, and reading goes on (handshake frames wait behind records anyway). Any
other message (a connection not in ``slots``, more than one frame) is handed back and
ends the read, so that what follows it on the socket is not taken ahead of it. Reading
also ends when the socket is empty, at the pass's limits, or at a few handshake frames
after the first record (records go first; a flood that never pauses cannot hold them).
While the endpoint sheds strangers' hellos (their handshakes used up their share of the
loop), a CLIENT_HELLO from an IPv4 peer that is not one of the known nets it is given is
dropped here, counted, instead of being handed back only to be dropped in Python: a
flood frame then costs the loop a read in libzmq and no Python object (the endpoint's
own rule, decided once per pass rather than per frame). Such a frame's descriptor is not
noted either (``ServerEndpoint._note_fd``): were an old connection's disconnect event
lost and its descriptor reused by a flooder, the old session would end at its own next
event or timeout rather than at the flooder's frame.

The sessions of the pass come from the per-SessionID tables (``session.SessionTable``):
their marks and throttle buckets are read and written in place, refilled exactly as
``session._Bucket`` does, so the Python path and this one share one state.
"""

from __future__ import annotations

import errno
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt
import zmq

from qfix import native_zmq as nz
from qfix.qzmq import _record_row as lease_cols
from qfix.server import _pass

Array = npt.NDArray[Any]

#: the QZMQ magic's first byte: a handshake frame (QZMQ.md §3)
HANDSHAKE_BYTE: Final = 0x51
#: a handshake frame's version (byte 2) and message type (byte 3) of a CLIENT_HELLO; a
#: frame with any other version is taken as a hello too (``qzmq.adapter._is_hello``)
_HS_VERSION_AT: Final = 2
_HS_TYPE_AT: Final = 3
_QZMQ_VERSION: Final = 0x01
_CLIENT_HELLO: Final = 0x01
#: a frame's largest size (the socket's ZMQ_MAXMSGSIZE, ``qzmq.MAX_FRAME``): room kept free
#: before each read, so that no frame is ever cut
MAX_FRAME: Final = 65_536
MAX_ROUTING_ID: Final = 255  #: libzmq's longest routing id
MAX_PEER: Final = 64  #: room for a peer address (an IPv6 text form is at most 45 bytes)
#: routing ids this long at most have a key in the hash table (libzmq's own are 5 bytes)
KEY_BYTES: Final = 7

#: the columns of ``slots``, one row per connection the pass may take frames of
SLOT_CONN: Final = 0  #: the endpoint's connection number
SLOT_SESSION: Final = 1  #: its SessionID
SLOT_LEASE: Final = 2  #: its row of the QZMQ lease table (``_pass.FRAME_NOT_LEASED`` if none)
SLOT_COLUMNS: Final = 3
#: SLOT_SESSION of a session whose frames the path leaves to the endpoint (an operator's)
SESSION_OTHERS: Final = -1

#: ``frames_table``'s extra column here: the slot the frame came on (``_pass`` reads the
#: first ``_pass.FRAME_COLUMNS``; FRAME_SESSION is the slot too, until ``session_rows``
#: makes it the session's row of the pass)
FRAME_SLOT: Final = _pass.FRAME_COLUMNS
FRAME_COLUMNS: Final = _pass.FRAME_COLUMNS + 1

#: the columns of ``hand_table``, one row per message handed back; ``*_AT`` are offsets
#: in ``hand``, ``*_LEN`` lengths
HAND_KIND: Final = 0
HAND_RID_AT: Final = 1
HAND_RID_LEN: Final = 2
HAND_FRAME_AT: Final = 3
HAND_FRAME_LEN: Final = 4
HAND_FD: Final = 5  #: the transport's file descriptor (-1 if unknown)
HAND_PEER_AT: Final = 6
HAND_PEER_LEN: Final = 7
HAND_COLUMNS: Final = 8
#: kinds of handed-back messages
KIND_HANDSHAKE: Final = 0  #: a handshake frame (reading went on)
KIND_FRAME: Final = 1  #: a single frame of a connection not in ``slots`` (reading stopped)
KIND_MULTIPART: Final = 2  #: a message of more than one frame, drained (reading stopped)
#: room ``hand`` must have left before each read
HAND_ROOM: Final = MAX_ROUTING_ID + MAX_FRAME + MAX_PEER

#: the columns of ``ranges``, one row per SessionID: its session account, and its
#: accounts (sorted) as ``accounts[start:end]``
RANGE_ACCOUNT: Final = 0
RANGE_START: Final = 1
RANGE_END: Final = 2
RANGE_COLUMNS: Final = 3


#: the entries of ``limits``
LIMIT_MESSAGES: Final = 0  #: stop once the frames read hold this many messages
LIMIT_HANDSHAKES: Final = 1  #: handshake frames read at most
LIMIT_AFTER_RECORD: Final = 2  #: handshake frames read after the first record, at most
LIMIT_SHED: Final = 3  #: 1: drop hellos of IPv4 peers outside ``known_nets`` (the endpoint sheds)
LIMIT_FIELDS: Final = 4

#: the entries of ``read``: what :func:`read_frames` did
READ_FRAMES: Final = 0  #: rows of ``frames_table``
READ_HANDED: Final = 1  #: rows of ``hand_table``
READ_BYTES: Final = 2  #: bytes of ``frames`` used
READ_STOP: Final = 3  #: why it stopped (STOP_*)
READ_ERRNO: Final = 4  #: zmq_errno of a failed read (STOP_ERROR)
READ_SESSIONS: Final = 5  #: sessions in the pass (rows of ``sessions``)
READ_MESSAGES: Final = 6  #: messages the frames taken hold, by their sizes
READ_SHED: Final = 7  #: strangers' hellos dropped (LIMIT_SHED)
READ_FIELDS: Final = 8
STOP_DRAINED: Final = 0  #: the socket had no message left
STOP_LIMIT: Final = 1  #: a limit or a buffer's room
STOP_HANDED: Final = 2  #: a message that is the endpoint's to take (the last hand row)
STOP_ERROR: Final = 3

_NO_KEY: Final = np.uint64(0)
_EAGAIN: Final = errno.EAGAIN
_EHOSTUNREACH: Final = int(zmq.EHOSTUNREACH)
_RECORD_OVERHEAD: Final = lease_cols.RECORD_OVERHEAD
_MSG: Final = 60


def routing_key(rid: bytes) -> int:
    """The hash table's key of routing id ``rid``; 0 if it has none (too long)."""
    if not 0 < len(rid) <= KEY_BYTES:
        return 0
    return len(rid) << 56 | int.from_bytes(rid, "little")


def hash_table(keys: list[int]) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """An open-addressing table of ``keys`` (non-zero, distinct): (keys, slots), where
    ``slots[i]`` is the index of ``keys[i]`` in the list (-1 for an empty place)."""
    size = 16
    while size < 4 * len(keys):
        size *= 2
    table = np.zeros(size, np.uint64)
    slots = np.full(size, -1, np.int64)
    for i, key in enumerate(keys):
        at = _spot(np.uint64(key), size)
        while table[at] != _NO_KEY:
            at = (at + 1) & (size - 1)
        table[at] = key
        slots[at] = i
    return table, slots


@numba.njit(cache=True, nogil=True, inline="always")
def _spot(key: np.uint64, size: int) -> int:
    # Fibonacci hashing: libzmq's ids count up, so their low bits alone would cluster
    return int((key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & (size - 1)


@numba.njit(cache=True, nogil=True)
def _find(keys: Array, slots: Array, rid: Array, n: int) -> int:
    if n > KEY_BYTES:
        return -1
    key = np.uint64(n) << np.uint64(56)
    for i in range(n):
        key |= np.uint64(rid[i]) << np.uint64(8 * i)
    size = keys.size
    at = _spot(key, size)
    while keys[at] != _NO_KEY:
        if keys[at] == key:
            return int(slots[at])
        at = (at + 1) & (size - 1)
    return -1


@numba.njit(cache=True, nogil=True)
def _hand(
    kind: int,
    rid: Array,
    rid_len: int,
    data: Array,
    msg: int,
    peer_key: Array,
    hand: Array,
    hand_at: int,
    hand_table: Array,
    row: int,
) -> int:
    """Copy a handed-back message into ``hand`` at ``hand_at``; returns the new offset."""
    hand_table[row, HAND_KIND] = kind
    hand_table[row, HAND_RID_AT] = hand_at
    hand_table[row, HAND_RID_LEN] = rid_len
    hand[hand_at : hand_at + rid_len] = rid[:rid_len]
    hand_at += rid_len
    hand_table[row, HAND_FRAME_AT] = hand_at
    hand_table[row, HAND_FRAME_LEN] = data.size
    hand[hand_at : hand_at + data.size] = data
    hand_at += data.size
    hand_table[row, HAND_FD] = -1
    hand_table[row, HAND_PEER_AT] = hand_at
    hand_table[row, HAND_PEER_LEN] = 0
    if kind == KIND_HANDSHAKE:
        hand_table[row, HAND_FD] = nz.zmq_msg_get(msg, nz.SRCFD)
        address = nz.zmq_msg_gets(msg, peer_key.ctypes.data)
        if address != 0:  # NULL: a transport without addresses (inproc)
            text = nz.bytes_at(address, MAX_PEER)
            k = 0
            while k < MAX_PEER and text[k] != 0:
                k += 1
            hand[hand_at : hand_at + k] = text[:k]
            hand_table[row, HAND_PEER_LEN] = k
            hand_at += k
    return hand_at


@numba.njit(cache=True, nogil=True)
def _ipv4_at(address: int) -> int:
    """The IPv4 address in dotted-quad text (as libzmq writes a peer's: no leading zeros)
    of the NUL-terminated string at ``address``, as an integer; -1 for anything else
    (an IPv6 address, inproc's NULL)."""
    if address == 0:
        return -1
    text = nz.bytes_at(address, MAX_PEER)
    value = 0
    part = 0
    digits = 0
    dots = 0
    for k in range(MAX_PEER):
        c = text[k]
        if c == 0:
            if dots != 3 or digits == 0:
                return -1
            return (value << 8) | part
        if c == 0x2E:  # '.'
            if digits == 0 or dots == 3:
                return -1
            value = (value << 8) | part
            part = 0
            digits = 0
            dots += 1
        elif 0x30 <= c <= 0x39:
            if digits == 1 and part == 0:
                return -1  # a leading zero: not the canonical form ipaddress reads
            part = part * 10 + (c - 0x30)
            digits += 1
            if part > 255:
                return -1
        else:
            return -1
    return -1


@numba.njit(cache=True, nogil=True)
def _stranger_hello(data: Array, msg: int, peer_key: Array, known_nets: Array) -> bool:
    """Whether handshake frame ``data`` is a CLIENT_HELLO from an IPv4 peer whose net
    (its address) is not in ``known_nets`` (sorted)."""
    if data.size >= _HS_TYPE_AT + 1 and data[_HS_TYPE_AT] != _CLIENT_HELLO and data[_HS_VERSION_AT] == _QZMQ_VERSION:
        return False
    net = _ipv4_at(nz.zmq_msg_gets(msg, peer_key.ctypes.data))
    if net < 0:
        return False
    at = np.searchsorted(known_nets, net)
    return not (at < known_nets.size and known_nets[at] == net)


@numba.njit(cache=True, nogil=True)
def read_frames(
    sock: int,
    msg: Array,
    rid: Array,
    peer_key: Array,
    keys: Array,
    key_slots: Array,
    slots: Array,
    limits: Array,
    known_nets: Array,
    recv_time: int,
    frames: Array,
    frames_table: Array,
    hand: Array,
    hand_table: Array,
    read: Array,
) -> None:
    """Read the messages waiting on ``sock`` (see the module's docstring). Each frame
    taken gets a row of ``frames_table`` (``_pass.FRAME_*``; its FRAME_SESSION is the
    row of ``slots``); each message handed back a row of ``hand_table``. ``msg`` is a
    zmq_msg_t's room (nz.MSG_BYTES), ``rid`` MAX_ROUTING_ID bytes of scratch,
    ``peer_key`` the NUL-terminated ``b"Peer-Address"``, ``known_nets`` the sorted IPv4
    nets whose hellos are never dropped here (LIMIT_SHED). Writes ``read``'s entries."""
    m = msg.ctypes.data
    rows = frames_table.shape[0]
    hand_rows = hand_table.shape[0]
    n = 0
    handed = 0
    handshakes = 0
    shed = 0
    after_record = -1
    at = 0
    hand_at = 0
    messages = 0
    stop = STOP_DRAINED
    read[READ_ERRNO] = 0
    while True:
        if (
            n >= rows
            or messages >= limits[LIMIT_MESSAGES]
            or frames.size - at < MAX_FRAME
            or handed >= hand_rows
            or hand.size - hand_at < HAND_ROOM
            or handshakes >= limits[LIMIT_HANDSHAKES]
            or after_record >= limits[LIMIT_AFTER_RECORD]
        ):
            stop = STOP_LIMIT
            break
        rid_len: int = nz.recv_frame(sock, rid.ctypes.data, MAX_ROUTING_ID)
        if rid_len < 0:
            code = nz.zmq_errno()
            if code != _EAGAIN:
                stop = STOP_ERROR
                read[READ_ERRNO] = code
            break
        rid_len = min(rid_len, MAX_ROUTING_ID)  # libzmq's ids are never longer
        nz.zmq_msg_init(m)
        if nz.msg_recv(m, sock) < 0:
            # a ROUTER message arrives whole: a routing id alone is a malformed message
            nz.zmq_msg_close(m)
            hand_at = _hand(KIND_MULTIPART, rid, rid_len, frames[:0], m, peer_key, hand, hand_at, hand_table, handed)
            handed += 1
            stop = STOP_HANDED
            break
        data = nz.bytes_at(nz.zmq_msg_data(m), nz.zmq_msg_size(m))
        if nz.zmq_msg_more(m) or data.size > MAX_FRAME:
            # not [routing id, frame] (or a frame past ZMQ_MAXMSGSIZE, which libzmq does not
            # enforce on every transport): drained and handed back as malformed
            more = nz.zmq_msg_more(m)
            nz.zmq_msg_close(m)
            while more:
                nz.zmq_msg_init(m)
                more = 0 if nz.msg_recv(m, sock) < 0 else nz.zmq_msg_more(m)
                nz.zmq_msg_close(m)
            hand_at = _hand(KIND_MULTIPART, rid, rid_len, frames[:0], m, peer_key, hand, hand_at, hand_table, handed)
            handed += 1
            stop = STOP_HANDED
            break
        if data.size and data[0] == HANDSHAKE_BYTE:
            handshakes += 1
            if after_record >= 0:
                after_record += 1
            if limits[LIMIT_SHED] and _stranger_hello(data, m, peer_key, known_nets):
                nz.zmq_msg_close(m)
                shed += 1
                continue
            hand_at = _hand(KIND_HANDSHAKE, rid, rid_len, data, m, peer_key, hand, hand_at, hand_table, handed)
            nz.zmq_msg_close(m)
            handed += 1
            continue
        slot = _find(keys, key_slots, rid, rid_len)
        if slot < 0 or slots[slot, SLOT_SESSION] == SESSION_OTHERS:
            hand_at = _hand(KIND_FRAME, rid, rid_len, data, m, peer_key, hand, hand_at, hand_table, handed)
            nz.zmq_msg_close(m)
            handed += 1
            if slot >= 0 or rid_len > KEY_BYTES:
                # a session the path does not serve (an operator's, whose commands take
                # effect in sequence), or one it cannot tell: nothing after it is taken
                stop = STOP_HANDED
                break
            continue  # no session's at all: nothing waits on its order
        size = data.size
        frames[at : at + size] = data
        nz.zmq_msg_close(m)
        frames_table[n, _pass.FRAME_START] = at
        frames_table[n, _pass.FRAME_BYTES] = size
        frames_table[n, _pass.FRAME_SESSION] = slot
        frames_table[n, _pass.FRAME_RECV_TIME] = recv_time
        frames_table[n, _pass.FRAME_LEASE] = slots[slot, SLOT_LEASE]
        frames_table[n, FRAME_SLOT] = slot
        n += 1
        at += size
        messages += max(0, size - _RECORD_OVERHEAD) // _MSG
        after_record = max(after_record, 0)
    read[READ_FRAMES] = n
    read[READ_HANDED] = handed
    read[READ_BYTES] = at
    read[READ_STOP] = stop
    read[READ_MESSAGES] = messages
    read[READ_SHED] = shed


@numba.njit(cache=True, nogil=True)
def _refill(table_tokens: Array, refilled: Array, sid: int, now: float, rate: float, burst: float) -> int:
    """``session._Bucket.available``, the same arithmetic in the same order."""
    tokens = min(burst, table_tokens[sid] + (now - refilled[sid]) * rate)
    table_tokens[sid] = tokens
    refilled[sid] = now
    return max(0, int(tokens))


@numba.njit(cache=True, nogil=True)
def session_rows(
    frames_table: Array,
    count: int,
    slots: Array,
    marks: Array,
    tokens: Array,
    refilled: Array,
    throttle: Array,
    now: float,
    accepting: int,
    ranges: Array,
    row_of: Array,
    sessions: Array,
) -> int:
    """Stage S's table (``_pass.SESSION_*``) for the sessions of the first ``count``
    frames, in order of first appearance, each frame's FRAME_SESSION turned from its
    slot into its session's row; their buckets are refilled (while ``accepting``, as
    the Python path does). ``ranges`` holds each SessionID's session account and its
    accounts' place (``RANGE_*``); ``row_of`` is scratch, -1 for every SessionID, as it
    is left. Returns the rows written."""
    k = 0
    for f in range(count):
        sid = slots[frames_table[f, FRAME_SLOT], SLOT_SESSION]
        row = row_of[sid]
        if row < 0:
            row = row_of[sid] = k
            allowance = _refill(tokens, refilled, sid, now, throttle[0], throttle[1]) if accepting else 0
            sessions[k, _pass.SESSION_ID] = sid
            sessions[k, _pass.SESSION_MARK] = marks[sid]
            sessions[k, _pass.SESSION_ALLOWANCE] = allowance
            sessions[k, _pass.SESSION_ACCEPTING] = accepting
            sessions[k, _pass.SESSION_ACCOUNT] = ranges[sid, RANGE_ACCOUNT]
            sessions[k, _pass.SESSION_ACCOUNTS_START] = ranges[sid, RANGE_START]
            sessions[k, _pass.SESSION_ACCOUNTS_END] = ranges[sid, RANGE_END]
            sessions[k, _pass.SESSION_ORDERS] = 0
            k += 1
        frames_table[f, _pass.FRAME_SESSION] = row
    for r in range(k):
        row_of[sessions[r, _pass.SESSION_ID]] = -1
    return k


@numba.njit(cache=True, nogil=True)
def commit_sessions(sessions: Array, count: int, marks: Array, tokens: Array) -> None:
    """What stage S changed, into the per-SessionID tables: the marks, the orders charged."""
    for r in range(count):
        sid = sessions[r, _pass.SESSION_ID]
        marks[sid] = sessions[r, _pass.SESSION_MARK]
        tokens[sid] -= sessions[r, _pass.SESSION_ORDERS]


#: the entries of ``sent``: what :func:`send_sealed` did
SENT_COUNT: Final = 0  #: rows of ``sealed`` sent
SENT_ERRNO: Final = 1  #: zmq_errno of a send that failed otherwise than a refusal (0: none)
SENT_BYTES: Final = 2  #: the records' bytes sent
SENT_MESSAGES: Final = 3  #: the messages they hold
SENT_HELD: Final = 4  #: rows of ``held``: records not sent, for the caller's queue
#: 1 when :func:`serve_pass` sent the pass's records itself (0: they wait in the arena)
SENT_BY_PASS: Final = 5
SENT_FIELDS: Final = 6


@numba.njit(cache=True, nogil=True)
def send_sealed(
    sock: int,
    sealed: Array,
    count: int,
    arena: Array,
    rid_at: Array,
    rids: Array,
    blocked: Array,
    held: Array,
    sent: Array,
) -> None:
    """Send the first ``count`` rows of ``sealed`` (``_pass.SEALED_*``: a record of
    ``arena`` for a receiving connection c), each as [routing id, record], the routing
    id being ``rids[rid_at[c, 0]:][:rid_at[c, 1]]``. A connection with ``blocked[c]``
    set (something already waits to go to it) gets nothing here, nor does one the
    socket refuses a record for (its pipe is full, or its peer gone: ROUTER_MANDATORY)
    from that record on: each such row goes to ``held`` in order, for the caller to
    queue behind what waits. Any other failure stops the sends (SENT_ERRNO)."""
    base = arena.ctypes.data
    ids = rids.ctypes.data
    sent[:] = 0
    n_held = 0
    for i in range(count):
        c = sealed[i, _pass.SEALED_CONN]
        if not blocked[c]:
            if nz.send_frame(sock, ids + rid_at[c, 0], rid_at[c, 1], nz.SNDMORE | nz.DONTWAIT) >= 0:
                # the routing id chose the pipe and found room: the record goes with it
                at, size = sealed[i, _pass.SEALED_START], sealed[i, _pass.SEALED_BYTES]
                if nz.send_frame(sock, base + at, size, nz.DONTWAIT) < 0:
                    sent[SENT_ERRNO] = -nz.zmq_errno()  # negative: a message cut in two (a bug)
                    break
                sent[SENT_COUNT] += 1
                sent[SENT_BYTES] += size
                sent[SENT_MESSAGES] += sealed[i, _pass.SEALED_MSGS]
                continue
            code = nz.zmq_errno()
            if code != _EAGAIN and code != _EHOSTUNREACH:
                sent[SENT_ERRNO] = code
                break
            blocked[c] = 1
        held[n_held] = i
        n_held += 1
    sent[SENT_HELD] = n_held


@numba.njit(cache=True, nogil=True)
def serve_pass(
    sock: int,
    msg: Array,
    rid: Array,
    peer_key: Array,
    keys: Array,
    key_slots: Array,
    slots: Array,
    limits: Array,
    known_nets: Array,
    recv_time: int,
    frames: Array,
    frames_table: Array,
    hand: Array,
    hand_table: Array,
    read: Array,
    marks: Array,
    tokens: Array,
    refilled: Array,
    throttle: Array,
    now: float,
    accepting: int,
    ranges: Array,
    row_of: Array,
    sessions: Array,
    accounts: Array,
    blocked: Array,
    plain: Array,
    inbound: Array,
    inbound_words: Array,
    engine_state: Any,
    out: Array,
    out_words: Array,
    journaled_marks: Array,
    last_exec_ids: Array,
    order: Array,
    kept_rows: Array,
    kept_ids: Array,
    groups: Array,
    out_bytes: Array,
    dest_conns: Array,
    conn_rows: Array,
    leases: Array,
    arena: Array,
    sealed: Array,
    handed: Array,
    nonce: Array,
    cell: Array,
    result: Array,
    match: bool,
    send: bool,
    rid_at: Array,
    rids: Array,
    send_blocked: Array,
    held: Array,
    sent: Array,
) -> None:
    """:func:`read_frames`, then the pass over the frames taken: stage S's table
    (:func:`session_rows`), ``_pass.stage_frames``, what it changed committed to the
    per-SessionID tables (:func:`commit_sessions`), and with ``match``
    ``_pass.match_records`` over the records it passed (a server without a journal:
    nothing happens in between; with one, the caller journals them and matches).
    ``sessions`` has a row per slot at least; ``frames_table`` has FRAME_COLUMNS.

    With ``send`` as well, a pass that one engine call ran whole and sealed whole
    puts its records on the socket itself (:func:`send_sealed`, ``send_blocked`` its
    ``blocked``; SENT_BY_PASS set): the reports leave before the pass's bookkeeping in
    Python rather than after it. Otherwise they stay in the arena for the caller."""
    sent[:] = 0
    read_frames(
        sock, msg, rid, peer_key, keys, key_slots, slots, limits, known_nets, recv_time, frames, frames_table,
        hand, hand_table, read,
    )  # fmt: skip
    result[:] = 0
    count = read[READ_FRAMES]
    read[READ_SESSIONS] = 0
    if count == 0:
        return
    k = session_rows(
        frames_table, count, slots, marks, tokens, refilled, throttle, now, accepting, ranges, row_of, sessions
    )
    read[READ_SESSIONS] = k
    _pass.stage_frames(
        frames, frames_table[:count], plain, leases, nonce, cell, sessions[:k], accounts, blocked, inbound_words,
        result,
    )  # fmt: skip
    commit_sessions(sessions, k, marks, tokens)
    written = result[_pass.RESULT_INBOUND]
    if written and match:
        _pass.match_records(
            inbound, inbound_words, 0, written, engine_state, out, out_words, journaled_marks, last_exec_ids,
            order, kept_rows, kept_ids, groups, out_bytes, dest_conns, conn_rows, leases, arena, sealed,
            handed, nonce, cell, result,
        )  # fmt: skip
        whole = result[_pass.RESULT_CONSUMED] == written and result[_pass.RESULT_ARENA_NEEDED] == 0
        if send and whole:
            send_sealed(sock, sealed, result[_pass.RESULT_SEALED], arena, rid_at, rids, send_blocked, held, sent)
            sent[SENT_BY_PASS] = 1
