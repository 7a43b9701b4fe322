"""The jitted in-order path (``_live.walk``) against the pure-Python one it stands in for.

Two ``SubscriberCore``s get the same feed messages and the same replies: one as shipped,
one whose jitted walk hands every packet straight to Python (``FeedState.packet``, the
reference behaviour). After every delivery their numbering, recovery state, requests and
updates must be equal, and every few deliveries their books too, whatever the stream:
lossless, lossy, duplicated, reordered, with late or lost replies, with malformed or
foreign packets, with records that do not fit the book partway through a packet.
"""

from __future__ import annotations

import dataclasses
import struct
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_feed_recovery import ALL, Exchange

from qfix.marketdata import _live, _recv, feeds
from qfix.marketdata import subscriber as subscriber_module
from qfix.marketdata.subscriber import SubscriberCore
from qfix.testing.marketdata import book_differences, feed_messages, subscriber_digests
from qfix.wire import codes, schema
from qfix.wire.codec import new_records

Message = list[bytes]
_MSG = codes.MESSAGE_SIZE
_HEAVY_EVERY = 20  #: deliveries between comparisons of whole books
_I64_MAX = (1 << 63) - 1
_FRAME_COLUMNS = (
    (_recv.TOPIC_AT, _recv.TOPIC_LEN),
    (_recv.HEADER_AT, _recv.HEADER_LEN),
    (_recv.BODY_AT, _recv.BODY_LEN),
)


def _field(dtype: np.dtype[Any], name: str) -> int:
    return int(dtype.fields[name][1])  # type: ignore[index]


_BLOCK_AT = _field(schema.ADD_ORDER, "blockLength")
_SCHEMA_AT = _field(schema.ADD_ORDER, "schemaId")
_VERSION_AT = _field(schema.ADD_ORDER, "version")
_TEMPLATE_AT = _field(schema.ADD_ORDER, "templateId")


def _table(msgs: list[Message]) -> tuple[np.ndarray, np.ndarray]:
    """Messages as one packet table (``_recv``'s layout), as ``feed_message`` packs one."""
    table = np.zeros((len(msgs), _recv.COLUMNS), np.int64)
    parts: list[bytes] = []
    at = 0
    for row, frames in enumerate(msgs):
        for k, (at_col, len_col) in enumerate(_FRAME_COLUMNS):
            table[row, at_col] = at
            if k < len(frames):
                table[row, len_col] = len(frames[k])
                parts.append(frames[k])
                at += len(frames[k])
            else:
                table[row, len_col] = _recv.MISSING
        table[row, _recv.FRAMES] = len(frames)
    # read-only, as feed_message's arena: the same compiled kernel
    return np.frombuffer(b"".join(parts), np.uint8), table


class Twins:
    """Two subscribers of every feed: ``fast`` walks packets in jitted code, ``slow`` takes
    the Python path for every packet. Each delivery goes to both, then they are compared."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        *,
        fast_walk: Callable[..., None] | None = None,
    ) -> None:
        self.fast = SubscriberCore(ALL)
        self.slow = SubscriberCore(ALL)
        #: why the fast core's walks stopped (``_live.DONE`` ... ``OUT_OF_STEP``)
        self.stops: Counter[int] = Counter()
        self.delivered = 0  #: feed messages delivered
        self.applied = 0  #: of them, applied by the fast core's jitted walk
        self.deliveries = 0
        real = _live.walk if fast_walk is None else fast_walk
        slow_store = self.slow.store
        fast_store = self.fast.store

        def walk(
            arena: Any,
            table: Any,
            start: int,
            stop_at: int,
            store: Any,
            applied: Any,
            asides: Any,
            updates: Any,
            stop: Any,
        ) -> None:
            if store is slow_store:  # nothing applied: the packet at ``start`` goes to Python
                stop[_live.STOP_ROW] = start
                stop[_live.STOP_WHY] = _live.SLOW
                stop[_live.STOP_ASIDES] = 0
                stop[_live.STOP_UPDATES] = 0
                return
            assert store is fast_store
            real(arena, table, start, stop_at, store, applied, asides, updates, stop)
            self.stops[int(stop[_live.STOP_WHY])] += 1

        monkeypatch.setattr(subscriber_module._live, "walk", walk)

    # --- deliveries ---------------------------------------------------------------------

    def feed(self, msgs: list[Message], *, batch: bool = False) -> None:
        """Feed messages, one at a time (``feed_message``) or as one packet table."""
        if batch:
            if msgs:
                self._feed_table(msgs)
            return
        for msg in msgs:
            fast = self.fast.feed_message(msg)
            self.delivered += 1
            self.applied += int(self.fast.applied[:1].sum())
            slow = self.slow.feed_message(msg)
            assert int(self.slow.applied[:1].sum()) == 0
            assert fast == slow, self._where("updates", msg)
            self.check(msg)

    def _feed_table(self, msgs: list[Message]) -> None:
        arena, table = _table(msgs)
        fast: set[tuple[int, int]] = set()
        slow: set[tuple[int, int]] = set()
        self.fast.feed_packets(arena, table, len(msgs), fast)
        self.delivered += len(msgs)
        self.applied += int(self.fast.applied[: len(msgs)].sum())
        self.slow.feed_packets(arena, table, len(msgs), slow)
        assert fast == slow, self._where("updates", msgs[-1])
        self.check(msgs[-1])

    def reply(self, msg: Message) -> None:
        fast = self.fast.reply_message(msg)
        slow = self.slow.reply_message(msg)
        assert fast == slow, self._where("reply updates", msg)
        self.check(msg)

    def request(self, now: float) -> tuple[bytes | None, bool]:
        """The next request: both must ask the same (bytes include the RequestID)."""
        fast = self.fast.next_request(now, 0)
        slow = self.slow.next_request(now, 0)
        assert fast == slow, self._where("requests", None)
        assert self.fast.timeouts == self.slow.timeouts
        return fast

    # --- comparison ---------------------------------------------------------------------

    def _where(self, what: str, msg: Message | None) -> str:
        shown = None if msg is None else [f[:20] for f in msg[:2]]
        return f"{what} differ after delivery {self.deliveries} ({shown})"

    def check(self, msg: Message | None = None, *, heavy: bool = False) -> None:
        self.deliveries += 1
        where = self._where("", msg)
        fast, slow = self.fast, self.slow
        assert sorted(fast.books) == sorted(slow.books), where
        assert sorted(fast.store.slots) == sorted(slow.store.slots), where
        for f in ALL:
            a, b = fast.feeds[f], slow.feeds[f]
            assert a.stats == b.stats, f"stats of feed {f}{where}: {dataclasses.asdict(a.stats)} != {b.stats}"
            assert a.wants == b.wants, f"wants of feed {f}{where}"
            assert a.next_channel_seq == b.next_channel_seq, f"next ChannelSeqNum of feed {f}{where}"
            assert a.epoch == b.epoch, f"epoch of feed {f}{where}"
            assert fast.store.channels[f].tolist() == slow.store.channels[f].tolist(), f"channels of feed {f}{where}"
            assert sorted(a._inst) == sorted(b._inst), f"instruments of feed {f}{where}"
            for k, inst in a._inst.items():
                other = b._inst[k]
                assert (inst.last, inst.last_cseq, inst.recovering) == (
                    other.last,
                    other.last_cseq,
                    other.recovering,
                ), f"numbering of {k} on feed {f}{where}"
                assert inst.pending == other.pending, f"pending records of {k} on feed {f}{where}"
            for k in fast.books:
                assert a.synced(k) == b.synced(k), f"synced({k}) on feed {f}{where}"
        for k in fast.books:
            marks_a = fast.store.marks[fast.store.slots[k]].tolist()
            marks_b = slow.store.marks[slow.store.slots[k]].tolist()
            assert marks_a == marks_b, f"marks of {k}{where}"
            x, y = fast.books[k], slow.books[k]
            assert (x.bbo, x.time, x.status, x.trade_count, x.volume) == (
                y.bbo,
                y.time,
                y.status,
                y.trade_count,
                y.volume,
            ), f"book {k}{where}"
        assert list(fast._queue) == list(slow._queue), where
        assert fast._outstanding == slow._outstanding, where
        assert fast.open_gaps() == slow.open_gaps(), where
        assert fast.idle() == slow.idle(), where  # (moves wants to the queue, in both)
        if heavy or self.deliveries % _HEAVY_EVERY == 0:
            self.check_books(where)

    def check_books(self, where: str = " at the end") -> None:
        fast, slow = self.fast, self.slow
        assert subscriber_digests(fast.books) == subscriber_digests(slow.books), f"books{where}"
        for k, x in fast.books.items():
            y = slow.books[k]
            assert list(x.trades) == list(y.trades), f"trades of {k}{where}"
            assert (x.trade_count, x.volume, x.status, x.definition, x.indicative) == (
                y.trade_count,
                y.volume,
                y.status,
                y.definition,
                y.indicative,
            ), f"book {k}{where}"
            assert x.orders == y.orders and x.levels == y.levels, f"book {k}{where}"


# --- driving an exchange ------------------------------------------------------------------


@dataclasses.dataclass
class Plan:
    """How the messages and replies of one run travel."""

    alter: Callable[[list[Message], np.random.Generator], list[Message]] = lambda msgs, rng: msgs
    batch: bool = False  #: each engine call's messages as one packet table
    reply_every: int = 3  #: engine calls between serving the subscribers' requests
    delay: int = 0  #: engine calls a reply waits before it is delivered
    lose_reply: float = 0.0  #: chance that a reply message is lost (then the request times out)
    busy: float = 0.0  #: chance that the service answers Busy
    records: int = 800  #: engine records of the run
    #: the least share of feed messages the jitted walk must apply (whole-feed gaps and
    #: resets send every packet after them through Python until recovered)
    share: float = 0.2


def _drive(tw: Twins, ex: Exchange, rng: np.random.Generator, plan: Plan) -> None:
    held: deque[tuple[int, list[Message]]] = deque()
    clock = 0.0
    calls = 0

    def deliver_replies(force: bool) -> None:
        while held and (force or held[0][0] <= calls):
            for msg in held.popleft()[1]:
                tw.reply(msg)

    def serve(rounds: int, force: bool = False) -> None:
        nonlocal clock
        for _ in range(rounds):
            deliver_replies(force)
            if plan.lose_reply or plan.busy:
                clock += 1.0  # past any backoff; a lost reply times out
            request, timed_out = tw.request(clock)
            if timed_out:
                held.clear()  # the caller replaced its DEALER: a late reply is dropped
            if request is None:
                if not held:
                    return
                continue
            if plan.busy and rng.random() < plan.busy:
                reply = ex.service.busy(request, ex.now)
            else:
                reply = ex.service.handle(request, ex.now)
            msgs = [m for m in feed_messages(list(reply.packets)) if not rng.random() < plan.lose_reply]
            held.append((calls + (0 if force else plan.delay), msgs))
        deliver_replies(force)

    tw.feed(plan.alter(ex.start(), rng), batch=plan.batch)
    while not ex.done:
        msgs = ex.step(rng)
        calls += 1
        tw.feed(plan.alter(msgs, rng), batch=plan.batch)
        if calls % plan.reply_every == 0:
            serve(1)
    tw.feed(ex.heartbeats(), batch=plan.batch)
    serve(3000, force=True)
    tw.check(heavy=True)


def _lossy(p: float) -> Callable[[list[Message], np.random.Generator], list[Message]]:
    return lambda msgs, rng: [m for m in msgs if rng.random() >= p]


def _duplicated(msgs: list[Message], rng: np.random.Generator) -> list[Message]:
    out: list[Message] = []
    for m in msgs:
        out.append(m)
        if rng.random() < 0.05:
            out.append(m)
    return out


class _Stale:
    """Duplicates delivered some engine calls late (after what followed them)."""

    def __init__(self) -> None:
        self.old: list[Message] = []

    def __call__(self, msgs: list[Message], rng: np.random.Generator) -> list[Message]:
        out = list(msgs)
        if self.old and rng.random() < 0.3:
            out.insert(int(rng.integers(0, len(out) + 1)), self.old.pop(int(rng.integers(0, len(self.old)))))
        self.old = (self.old + [m for m in msgs if rng.random() < 0.05])[-50:]
        return out


def _swapping(p: float) -> Callable[[list[Message], np.random.Generator], list[Message]]:
    def alter(msgs: list[Message], rng: np.random.Generator) -> list[Message]:
        out = list(msgs)
        for i in range(len(out) - 1):
            if rng.random() < p:
                out[i], out[i + 1] = out[i + 1], out[i]
        return out

    return alter


def _mixed(msgs: list[Message], rng: np.random.Generator) -> list[Message]:
    return _swapping(0.01)(_duplicated(_lossy(0.03)(msgs, rng), rng), rng)


PLANS: dict[str, Callable[[], Plan]] = {
    "lossless": lambda: Plan(records=1500, share=0.6),
    "lossless-batched": lambda: Plan(records=1500, batch=True, share=0.6),
    "drop-5%": lambda: Plan(alter=_lossy(0.05)),
    "drop-30%": lambda: Plan(alter=_lossy(0.3), share=0.03),
    "duplicates": lambda: Plan(alter=_duplicated),
    "stale-duplicates": lambda: Plan(alter=_Stale()),
    "swapped": lambda: Plan(alter=_swapping(0.1)),
    "delayed-replies": lambda: Plan(alter=_lossy(0.05), delay=4, reply_every=1),
    "lost-replies-busy": lambda: Plan(alter=_lossy(0.05), lose_reply=0.05, busy=0.2, reply_every=1),
    "mixed-batched": lambda: Plan(alter=_mixed, batch=True, delay=2, share=0.1),
}
#: the plans also run with a second seed
TWICE = ("lossless", "drop-5%", "mixed-batched")


def _assert_took_the_jitted_path(tw: Twins, share: float) -> None:
    assert tw.delivered > 0
    assert tw.applied >= share * tw.delivered, f"jitted walk applied {tw.applied} of {tw.delivered} messages"


@pytest.mark.parametrize(("plan", "seed"), [(p, 1) for p in sorted(PLANS)] + [(p, 2) for p in TWICE])
def test_both_paths_agree_on_a_feed(monkeypatch: pytest.MonkeyPatch, plan: str, seed: int) -> None:
    how = PLANS[plan]()
    ex = Exchange(seed, n=how.records)
    tw = Twins(monkeypatch)
    _drive(tw, ex, np.random.default_rng(seed), how)
    _assert_took_the_jitted_path(tw, how.share)
    if not how.lose_reply:  # (a lost reply may leave an instrument without its tape)
        assert book_differences(tw.fast.books, ex.engine) == []
    if plan.startswith("lossless"):
        assert all(s.stats.gaps == 0 and s.stats.bad_packets == 0 for s in tw.fast.feeds.values())


# --- malformed and foreign packets ------------------------------------------------------


def _put(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def _record(msg: Message, rng: np.random.Generator) -> int:
    return int(rng.integers(0, max(1, len(msg[2]) // _MSG))) * _MSG


def _with_seq(msg: Message, seq: int) -> Message:
    return [msg[0], _put(msg[1], 0, "<Q", seq), msg[2]]


def _seq(msg: Message) -> int:
    return int(struct.unpack_from("<Q", msg[1])[0])


def _renamed(msg: Message, digits: bytes) -> Message:
    name = msg[0].partition(b".")[0]
    return [name + b"." + digits, *msg[1:]]


#: each turns a real feed message into a bad one (the result may be delivered instead of
#: the original, or beside it)
CORRUPTIONS: dict[str, Callable[[Message, np.random.Generator], Message]] = {
    "header-15": lambda m, rng: [m[0], m[1][:15], m[2]],
    "header-17": lambda m, rng: [m[0], m[1] + b"\0", m[2]],
    "body-ragged": lambda m, rng: [m[0], m[1], m[2] + bytes(int(rng.integers(1, _MSG)))],
    "body-short": lambda m, rng: [m[0], m[1], m[2][: -int(rng.integers(1, _MSG))]],
    "body-empty": lambda m, rng: [m[0], m[1], b""],
    "schema-62": lambda m, rng: [m[0], m[1], _put(m[2], _record(m, rng) + _SCHEMA_AT, "<H", 62)],
    "block-51": lambda m, rng: [m[0], m[1], _put(m[2], _record(m, rng) + _BLOCK_AT, "<H", 51)],
    "block-53": lambda m, rng: [m[0], m[1], _put(m[2], _record(m, rng) + _BLOCK_AT, "<H", 53)],
    "version-1": lambda m, rng: [m[0], m[1], _put(m[2], _record(m, rng) + _VERSION_AT, "<H", 1)],
    "template-unknown": lambda m, rng: [m[0], m[1], _put(m[2], _record(m, rng) + _TEMPLATE_AT, "<H", 99)],
    "one-frame": lambda m, rng: [m[0]],
    "two-frames": lambda m, rng: [m[0], m[1]],
    "four-frames": lambda m, rng: [*m, b"extra"],
    "no-frames": lambda m, rng: [],
    "topic-XX": lambda m, rng: [b"XX.0000000001", *m[1:]],
    "topic-short": lambda m, rng: [b"L3.12345", *m[1:]],
    "topic-hex": lambda m, rng: [b"L3.000000000a", *m[1:]],
    "topic-lowercase": lambda m, rng: [m[0].lower(), *m[1:]],  # parse_topic takes any case
    "topic-id-0": lambda m, rng: _renamed(m, b"0000000000"),
    "topic-id-huge": lambda m, rng: _renamed(m, b"9999999999"),
    "topic-id-2^32": lambda m, rng: _renamed(m, b"4294967296"),
    "topic-id-other": lambda m, rng: _renamed(m, b"%010d" % int(rng.integers(1, 9))),
    "unsequenced": lambda m, rng: _with_seq(m, 0),
    "seq-jump": lambda m, rng: _with_seq(m, _seq(m) + int(rng.integers(1, 20))),
    "seq-lower": lambda m, rng: _with_seq(m, max(1, _seq(m) - int(rng.integers(1, 20)))),
    "sent-0": lambda m, rng: [m[0], _put(m[1], 8, "<Q", 0), m[2]],
    "sent-huge": lambda m, rng: [m[0], _put(m[1], 8, "<Q", (1 << 64) - 1), m[2]],
    "seq-2^63": lambda m, rng: _with_seq(m, (1 << 63) + int(rng.integers(0, 5))),
    "seq-2^64-1": lambda m, rng: _with_seq(m, (1 << 64) - 1),
}


#: the kinds of bad packet, in groups of one run each
GROUPS: dict[str, tuple[str, ...]] = {
    "frames": ("header-15", "header-17", "one-frame", "two-frames", "four-frames", "no-frames"),
    "bodies": ("body-ragged", "body-short", "body-empty", "schema-62", "block-51", "block-53"),
    "records": ("version-1", "template-unknown"),
    "topics": (
        "topic-XX",
        "topic-short",
        "topic-hex",
        "topic-lowercase",
        "topic-id-0",
        "topic-id-huge",
        "topic-id-2^32",
        "topic-id-other",
    ),
    "numbering": ("unsequenced", "seq-jump", "seq-lower", "sent-0", "sent-huge", "seq-2^63", "seq-2^64-1"),
}


def test_every_kind_of_bad_packet_is_in_a_group() -> None:
    assert sorted(k for kinds in GROUPS.values() for k in kinds) == sorted(CORRUPTIONS)


def _corrupting(kinds: tuple[str, ...], p: float) -> Callable[[list[Message], np.random.Generator], list[Message]]:
    def alter(msgs: list[Message], rng: np.random.Generator) -> list[Message]:
        out: list[Message] = []
        for m in msgs:
            if len(m) != 3 or _seq(m) == 0 or rng.random() >= p:
                out.append(m)
                continue
            bad = CORRUPTIONS[kinds[int(rng.integers(0, len(kinds)))]](m, rng)
            where = int(rng.integers(0, 3))  # instead of the original, before it, after it
            out += [bad] if where == 0 else [bad, m] if where == 1 else [m, bad]
        return out

    return alter


@pytest.mark.parametrize(("group", "seed"), [(g, 11) for g in sorted(GROUPS)] + [("numbering", 12)])
def test_both_paths_agree_on_bad_packets(monkeypatch: pytest.MonkeyPatch, group: str, seed: int) -> None:
    ex = Exchange(seed, n=600)
    tw = Twins(monkeypatch)
    _drive(tw, ex, np.random.default_rng(seed), Plan(alter=_corrupting(GROUPS[group], 0.05), records=600))
    _assert_took_the_jitted_path(tw, 0.1)


# --- records that do not fit the book ---------------------------------------------------


def _respelt(msg: Message, i: int, dtype: np.dtype[Any], template_id: int, **values: int) -> Message:
    records = np.frombuffer(msg[2], np.uint8).reshape(-1, _MSG).copy()
    rec = records[i : i + 1].view(dtype)
    rec["templateId"] = template_id
    for name, value in values.items():
        rec[name] = value
    return [msg[0], msg[1], records.tobytes()]


class _Misfits:
    """Turns a record partway through some L3 and L2 packets into one the book cannot take
    (kept in its place: same RptSeq, instrument and event marks)."""

    def __init__(self, tw: Twins, kind: str, p: float = 0.05) -> None:
        self.tw = tw
        self.kind = kind
        self.p = p
        self.spoilt = 0

    def __call__(self, msgs: list[Message], rng: np.random.Generator) -> list[Message]:
        return [self._one(m, rng) for m in msgs]

    def _one(self, msg: Message, rng: np.random.Generator) -> Message:
        n = len(msg[2]) // _MSG
        want = b"L2." if self.kind == "level-unknown" else b"L3."
        if not msg[0].startswith(want) or n < 1 or _seq(msg) == 0 or rng.random() >= self.p:
            return msg
        i = int(rng.integers(1, n)) if n > 1 and rng.random() < 0.8 else 0
        k = int(msg[0][3:])
        if self.kind == "delete-unknown":
            out = _respelt(msg, i, schema.ORDER_DELETE, codes.TEMPLATE_ORDER_DELETE, OrderID=2**63)
        elif self.kind == "executed-unknown":
            out = _respelt(msg, i, schema.ORDER_EXECUTED, codes.TEMPLATE_ORDER_EXECUTED, OrderID=2**62, LeavesQty=1)
        elif self.kind == "replace-unknown":
            out = _respelt(msg, i, schema.ORDER_REPLACE, codes.TEMPLATE_ORDER_REPLACE, OrigOrderID=2**61, OrderID=7)
        elif self.kind == "add-resting":
            book = self.tw.fast.books.get(k)
            resting = sorted(book.orders) if book is not None else []
            if not resting:
                return msg
            out = _respelt(msg, i, schema.ADD_ORDER, codes.TEMPLATE_ADD_ORDER, OrderID=resting[0])
        else:  # a change of a level the book does not hold
            out = _respelt(
                msg,
                i,
                schema.BOOK_LEVEL,
                codes.TEMPLATE_BOOK_LEVEL,
                MDEntryPx=2**62 + 1,
                MDUpdateAction=codes.MD_UPDATE_CHANGE,
            )
        self.spoilt += 1
        return out


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize(
    "kind", ["delete-unknown", "executed-unknown", "replace-unknown", "add-resting", "level-unknown"]
)
def test_both_paths_agree_on_records_that_do_not_fit(monkeypatch: pytest.MonkeyPatch, kind: str, batch: bool) -> None:
    ex = Exchange(12, n=1000)
    tw = Twins(monkeypatch)
    misfits = _Misfits(tw, kind)
    _drive(tw, ex, np.random.default_rng(12), Plan(alter=misfits, batch=batch, records=1000))
    _assert_took_the_jitted_path(tw, 0.2)
    feed = codes.MD_FEED_L2 if kind == "level-unknown" else codes.MD_FEED_L3
    assert misfits.spoilt > 0
    assert tw.fast.feeds[feed].stats.out_of_step > 0
    assert tw.stops[_live.OUT_OF_STEP] > 0, "the jitted walk never stopped at a record that did not fit"
    # after recovery the books are exact again
    assert tw.fast.idle()
    assert book_differences(tw.fast.books, ex.engine) == []


# --- ChannelSeqNums near 2^63 ---------------------------------------------------------------


def test_channel_seq_nums_near_the_clamp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two packets of one instrument renumbered to end just past 2^63 - 1: the first jumps
    (Python path, which clamps what it stores to 2^63 - 1), the second continues it exactly
    but its numbers would pass int64 in the kernel, so it too takes the Python path (the
    first version of the kernel took it and wrapped around: found by this test). The
    feed goes on afterwards without an exception (a wrapped number once made a replay
    request that could not be encoded)."""
    ex = Exchange(13, n=400)
    tw = Twins(monkeypatch)
    rng = np.random.default_rng(13)
    tw.feed(ex.start())
    for _ in range(100):
        request, _ = tw.request(0.0)
        if request is None:
            break
        for msg in feed_messages(list(ex.service.handle(request, ex.now).packets)):
            tw.reply(msg)
    assert tw.fast.idle()
    # an L3 packet, and the next packet of its instrument (L3 packets of other instruments
    # between them are lost: they would number below the renumbered pair)
    first: Message | None = None
    second: Message | None = None
    while second is None:
        assert not ex.done, "no second packet of the instrument"
        for m in ex.step(rng):
            if first is None and m[0].startswith(b"L3.") and _seq(m):
                first = m
            elif first is not None and m[0] == first[0]:
                second = m
                break
            elif first is None or not m[0].startswith(b"L3."):
                tw.feed([m])
    n1 = len(first[2]) // _MSG
    pair = [_with_seq(first, _I64_MAX - n1), _with_seq(second, _I64_MAX)]
    before = tw.applied
    tw.feed(pair)
    assert tw.applied == before  # both through the Python path
    assert tw.fast.feeds[codes.MD_FEED_L3].next_channel_seq == _I64_MAX
    for _ in range(5):  # normal numbering again: a reset, then a snapshot
        tw.feed(ex.step(rng))
        request, _ = tw.request(0.0)
        if request is not None:
            for msg in feed_messages(list(ex.service.handle(request, ex.now).packets)):
                tw.reply(msg)


# --- packets the tables have no room for ---------------------------------------------------


def _giant(tw: Twins, ex: Exchange, feed: int, security_id: int, count: int, **extra: int) -> Message:
    """A packet of ``count`` new orders (L3) or levels (L2) that continues the instrument's
    book exactly: more rows than the subscriber's tables start with."""
    state = tw.fast.feeds[feed]
    last = state._inst[security_id].last
    assert last is not None
    if feed == codes.MD_FEED_L3:
        recs = new_records(codes.TEMPLATE_ADD_ORDER, count)
        recs["OrderID"] = (1 << 40) + security_id * count + np.arange(count)
    else:
        recs = new_records(codes.TEMPLATE_BOOK_LEVEL, count)
        recs["MDUpdateAction"] = codes.MD_UPDATE_NEW
        recs["NumberOfOrders"] = 1
    recs["MDEntryPx"] = (1 << 40) + np.arange(count)
    recs["MDEntrySize"] = 5
    recs["MDEntryType"] = codes.MD_ENTRY_OFFER
    recs["TransactTime"] = ex.now
    recs["SecurityID"] = security_id
    recs["RptSeq"] = last + 1 + np.arange(count)
    recs["MatchEventIndicator"][-1] = codes.MEI_END_OF_EVENT
    for name, value in extra.items():
        recs[name] = value
    header = feeds.pack_header(state.next_channel_seq, ex.now)
    return [feeds.topic(feed, security_id), header, recs.tobytes()]


@pytest.mark.parametrize("batch", [False, True])
def test_both_paths_agree_when_the_tables_must_grow(monkeypatch: pytest.MonkeyPatch, batch: bool) -> None:
    """Packets of more records than the tables have room for: the jitted walk stops for
    ROOM (in a table: after applying the packets before it), the tables grow, and the walk
    goes on."""
    ex = Exchange(15, n=300)
    tw = Twins(monkeypatch)
    _drive(tw, ex, np.random.default_rng(15), Plan(records=300))
    assert tw.fast.idle()
    most = codes.MAX_MSGS_PER_FRAME
    for feed in (codes.MD_FEED_L3, codes.MD_FEED_L2):
        msgs = []
        for k in sorted(tw.fast.feeds[feed]._inst)[:3]:
            msgs.append(_giant(tw, ex, feed, k, most))
            if not batch:  # (the next one numbers after this one)
                tw.feed(msgs[-1:])
            else:
                state = tw.fast.feeds[feed]  # numbered as if the ones before were applied
                seq = state.next_channel_seq + sum(len(m[2]) // _MSG for m in msgs[:-1])
                msgs[-1][1] = feeds.pack_header(seq, ex.now)
                msgs[-1][2] = _put_rpt(msgs[-1][2], state._inst[k].last + 1)
        if batch:
            tw.feed(msgs, batch=True)
    tw.check(heavy=True)
    assert tw.stops[_live.ROOM] > 0
    assert tw.fast.feeds[codes.MD_FEED_L3].stats.out_of_step == 0
    assert max(len(book.orders) for book in tw.fast.books.values()) >= most


def _put_rpt(body: bytes, first: int) -> bytes:
    recs = np.frombuffer(body, schema.ADD_ORDER).copy()
    recs["RptSeq"] = first + np.arange(recs.size)
    return recs.tobytes()


# --- the comparison itself ------------------------------------------------------------------


def test_the_comparison_sees_a_record_the_jitted_walk_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    """A jitted walk that skips one record (shown it with a newer version, once) must fail
    the comparison: the tests above cannot pass by comparing nothing."""
    real = _live.walk
    done: list[int] = []

    def skipping_walk(arena: Any, table: Any, start: int, *rest: Any) -> None:
        row = table[start]
        topic = int(row[_recv.TOPIC_AT])
        if not done and row[_recv.BODY_LEN] >= _MSG and bytes(arena[topic : topic + 3]) == b"L3.":
            data = bytearray(arena.tobytes())
            struct.pack_into("<H", data, int(row[_recv.BODY_AT]) + _VERSION_AT, 1)
            real(np.frombuffer(bytes(data), np.uint8), table, start, *rest)
            applied = rest[2]
            if applied[start]:
                done.append(start)
            return
        real(arena, table, start, *rest)

    ex = Exchange(14, n=300)
    tw = Twins(monkeypatch, fast_walk=skipping_walk)
    with pytest.raises(AssertionError, match="differ"):
        _drive(tw, ex, np.random.default_rng(14), Plan(records=300))
    assert done
