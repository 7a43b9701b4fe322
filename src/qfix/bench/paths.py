"""``qfix bench paths``: what each code path of the engine costs per inbound record.

Each path is one kind of inbound record (or admin command) with one outcome: a reject, a
limit order that rests at an occupied or a new price level, a cancel, a replace that
keeps or loses its place, an IOC that trades once, a mass cancel, a cancel-on-disconnect.
A timed repeat builds a fresh :class:`~qfix.engine.Engine` on the book of its path
(untimed: the same seeded records every time, and the state hash before the timed part
must equal the first repeat's), then times one ``process`` call over ``--batch`` records
of that kind and checks the outputs, the resting-order count and the level count against
what the path claims, so an engine that takes another path fails with
:class:`BenchmarkError` instead of measuring something else. Figures are medians over the
repeats, which run in rounds (one repeat of every path per round, after an untimed
warm-up round) so that a slow spell of a shared machine hits all paths alike; output
records per inbound record are reported beside each.

Only the public engine API is used (``Engine``, ``process``, ``cancel_sessions``,
``state_hash``, ``resting_orders``, ``occupied_levels`` and the wire schema), so the same
command measures every rebuild of the engine's internals.

The books (instrument: the mix instrument of ``qfix bench engine``, tick 1, Ref 1,000,000,
band +-100,000, CancelPassive; 1,000 accounts with one session each):

- per-record paths: ``--levels`` (730) price levels per side, two ticks apart from
  Ref -+ 2 outwards, ``DEPTH`` (4) orders each from random sessions, arriving in random
  order. Before it is timed the book is churned once (``--batch`` orders rest at new and
  at occupied levels and are cancelled again), so the timed records reuse order and
  level slots that were touched before, as in a long-running engine.
- mass cancel and cancel-on-disconnect: the same price levels holding ``--mass-orders``
  (100,000) orders of other accounts at random levels, plus one account (one session)
  per timed request with ``ORDERS_PER_ACCOUNT`` (10) orders. The same figures on a
  small book (as many other orders as the per-record book) show whether the cost follows
  the book or the orders removed.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import click
import numpy as np
import numpy.typing as npt

from qfix.bench import _common
from qfix.bench.engine import _drain, _instruments
from qfix.engine import STATUS_OK, Engine, EngineConfig, InstrumentConfig, ProcessResult
from qfix.engine.buffers import output_buffer
from qfix.errors import BenchmarkError
from qfix.testing.generators import BASE_TIME
from qfix.wire import codes as C  # noqa: N812 - the code tables are read on every line
from qfix.wire import schema

Array = npt.NDArray[Any]

SEED: Final = 1
ACCOUNTS: Final = 1_000
LEVELS: Final = 730
SPACING: Final = 2  #: ticks between two occupied levels: the odd prices between are free
DEPTH: Final = 4
MASS_ORDERS: Final = 100_000
ORDERS_PER_ACCOUNT: Final = 10
BATCH: Final = 1024

#: the paths timed one ``process`` call of ``--batch`` records each
RECORD_PATHS: Final = (
    "reject",
    "rest_existing_level",
    "rest_new_level",
    "cancel",
    "replace_same_level",
    "replace_other_level",
    "ioc_one_trade",
)
#: what each per-record path's batch holds (the note of its result)
NOTES: Final = {
    "reject": "NewOrderSingle outside the band: ER Rejected",
    "rest_existing_level": "GTC limit joining an occupied level",
    "rest_new_level": "GTC limit opening a level between occupied ones",
    "cancel": "cancel by OrigClOrdID, random level and queue place",
    "replace_same_level": "one lot less, same price: keeps priority",
    "replace_other_level": "same quantity to another occupied level",
    "ioc_one_trade": "IOC filled by the head of the best level",
}
#: the paths timed per request or call, each on a large and on a small book
BULK_PATHS: Final = ("mass_cancel_account", "cancel_sessions")


@dataclass(frozen=True)
class Sizes:
    """What one run measures (``--quick`` and the options set it)."""

    repeats: int
    requests: int  #: mass cancels (and cancel_sessions calls) per timed repeat
    batch: int = BATCH
    levels: int = LEVELS
    mass_orders: int = MASS_ORDERS

    @property
    def book_orders(self) -> int:
        return 2 * self.levels * DEPTH

    def check(self) -> None:
        """Refuse sizes a path cannot honour (each batch record needs its own level)."""
        if self.repeats < 1 or self.requests < 1 or self.batch < 2:
            raise click.BadParameter("--repeats and the request count must be >= 1, --batch >= 2")
        if self.levels < 2:
            raise click.BadParameter("--levels must be >= 2", param_hint="--levels")
        if self.batch > 2 * (self.levels - 1):
            raise click.BadParameter(
                f"at most {2 * (self.levels - 1)} records with {self.levels} levels a side: every "
                "record of rest_new_level needs its own free price and every cancel or replace its own level",
                param_hint="--batch",
            )
        if self.requests >= ACCOUNTS:
            raise click.BadParameter(f"at most {ACCOUNTS - 1} requests (one account each)")
        if self.mass_orders < 2 * self.levels:
            raise click.BadParameter("--mass-orders must be at least 2 x --levels", param_hint="--mass-orders")


def sizes(quick: bool, **overrides: int | None) -> Sizes:
    base = Sizes(repeats=7, requests=20) if quick else Sizes(repeats=31, requests=50)
    given = {k: v for k, v in overrides.items() if v is not None}
    chosen = dataclasses.replace(base, **given)
    chosen.check()
    return chosen


def engine_config(s: Sizes) -> EngineConfig:
    """Capacity for the largest book of the run with room to spare (ENGINE.md §4)."""
    need = max(s.mass_orders + s.requests * ORDERS_PER_ACCOUNT, s.book_orders + 2 * s.batch)
    return EngineConfig(
        max_orders=max(1 << 18, 1 << (2 * need - 1).bit_length()),
        max_levels=max(1 << 16, 1 << (4 * s.levels + 2 * s.batch).bit_length()),
        max_sessions=1 << 10,
    )


# ----------------------------------------------------------------------------- records


class _Flow:
    """ClOrdIDs (increasing per session) and RecvTimes (increasing) of the records built so far."""

    def __init__(self) -> None:
        self.next_clordid = np.ones(ACCOUNTS, np.int64)
        self.now = BASE_TIME

    def copy(self) -> _Flow:
        twin = _Flow()
        twin.next_clordid = self.next_clordid.copy()
        twin.now = self.now
        return twin

    def tick(self) -> int:
        self.now += 1_000
        return self.now

    def stamp(self, recs: Array, template: int, sessions: Array) -> Array:
        """Fill the header and the session columns of ``recs`` (records in arrival order)."""
        n = len(sessions)
        sessions = np.asarray(sessions, np.int64)
        order = np.argsort(sessions, kind="stable")
        ranked = sessions[order]
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - np.searchsorted(ranked, ranked, side="left")
        recs["blockLength"] = C.BLOCK_LENGTH
        recs["templateId"] = template
        recs["schemaId"] = C.SCHEMA_ORDER_ENTRY
        recs["version"] = C.SCHEMA_VERSION
        recs["ClOrdID"] = self.next_clordid[sessions] + rank
        self.next_clordid += np.bincount(sessions, minlength=ACCOUNTS)
        recs["SessionID"] = sessions
        recs["SessionAccount"] = sessions + 1
        recs["RecvTime"] = self.now + 1_000 * np.arange(1, n + 1, dtype=np.uint64)
        self.now += 1_000 * n
        return recs

    def new_orders(self, sessions: Array, sides: Array, prices: Array, qtys: Array, tif: int = C.TIF_GTC) -> Array:
        recs = np.zeros(len(sessions), schema.INBOUND_NEW_ORDER_SINGLE)
        self.stamp(recs, C.TEMPLATE_NEW_ORDER_SINGLE, sessions)
        recs["Price"] = prices
        recs["OrderQty"] = qtys
        recs["SecurityID"] = 1
        recs["Account"] = C.NULL_U32
        recs["MinQty"] = C.NULL_U32
        recs["MaxFloor"] = C.NULL_U32
        recs["Side"] = sides
        recs["OrdType"] = C.ORD_TYPE_LIMIT
        recs["TimeInForce"] = tif
        recs["SelfMatchPreventionInstruction"] = C.SMP_DEFAULT
        recs["ExpireDate"] = C.NULL_DATE
        return recs.view(schema.INBOUND)

    def cancels(self, sessions: Array, origs: Array, sides: Array) -> Array:
        """OrderCancelRequests by (SessionID, OrigClOrdID), OrderID null."""
        recs = np.zeros(len(sessions), schema.INBOUND_ORDER_CANCEL_REQUEST)
        self.stamp(recs, C.TEMPLATE_ORDER_CANCEL_REQUEST, sessions)
        recs["OrigClOrdID"] = origs
        recs["OrderID"] = C.NULL_U64
        recs["SecurityID"] = 1
        recs["Side"] = sides
        return recs.view(schema.INBOUND)

    def replaces(self, sessions: Array, origs: Array, sides: Array, prices: Array, qtys: Array) -> Array:
        recs = np.zeros(len(sessions), schema.INBOUND_ORDER_CANCEL_REPLACE_REQUEST)
        self.stamp(recs, C.TEMPLATE_ORDER_CANCEL_REPLACE_REQUEST, sessions)
        recs["OrigClOrdID"] = origs
        recs["Price"] = prices
        recs["OrderQty"] = qtys
        recs["SecurityID"] = 1
        recs["MaxFloor"] = C.NULL_U32
        recs["Side"] = sides
        recs["OrdType"] = C.ORD_TYPE_LIMIT
        recs["TimeInForce"] = C.TIF_GTC
        recs["MinQty"] = C.NULL_U32
        return recs.view(schema.INBOUND)

    def mass_cancels(self, sessions: Array) -> Array:
        """OrderMassCancelRequests for the security, both sides, Account null (= SessionAccount)."""
        recs = np.zeros(len(sessions), schema.INBOUND_ORDER_MASS_CANCEL_REQUEST)
        self.stamp(recs, C.TEMPLATE_ORDER_MASS_CANCEL_REQUEST, sessions)
        recs["SecurityID"] = 1
        recs["Account"] = C.NULL_U32
        recs["MassCancelRequestType"] = C.MASS_CANCEL_TYPE_SECURITY
        recs["Side"] = C.MASS_CANCEL_SIDE_BOTH
        return recs.view(schema.INBOUND)


@dataclass
class _Book:
    """The resting orders a prefill builds, in arrival order, and the records that build it."""

    ref: int
    levels: int
    level: Array  #: 0..levels-1 bids (best first), levels..2 levels-1 offers (best first)
    session: Array
    qty: Array
    clordid: Array = field(init=False)
    records: Array = field(init=False)

    @property
    def side(self) -> Array:
        return np.where(self.level < self.levels, C.SIDE_BUY, C.SIDE_SELL)

    @property
    def price(self) -> Array:
        return self.level_price(self.level)

    def level_price(self, level: Array) -> Array:
        k = level % self.levels + 1
        return np.where(level < self.levels, self.ref - SPACING * k, self.ref + SPACING * k)

    def queues(self) -> list[Array]:
        """Indices of the orders of each level in time priority (arrival order)."""
        order = np.argsort(self.level, kind="stable")
        bounds = np.searchsorted(self.level[order], np.arange(2 * self.levels + 1))
        return [order[bounds[i] : bounds[i + 1]] for i in range(2 * self.levels)]

    def place(self, flow: _Flow) -> None:
        self.records = flow.new_orders(self.session, self.side, self.price, self.qty)
        self.clordid = self.records.view(schema.INBOUND_NEW_ORDER_SINGLE)["ClOrdID"].astype(np.int64)


def _book(rng: np.random.Generator, ref: int, levels: int, level: Array, session: Array) -> _Book:
    """A book of the given (level, session) orders arriving in a random order."""
    arrival = rng.permutation(len(level))
    qty = rng.integers(10, 101, size=len(level))
    return _Book(ref, levels, np.asarray(level)[arrival], np.asarray(session)[arrival], qty)


def _gap_price(ref: int, gap: Array, levels: int) -> Array:
    """Free prices between occupied levels: gap 0..levels-2 bids, levels-1.. offers (never the top)."""
    k = gap % (levels - 1) + 1
    return np.where(gap < levels - 1, ref - SPACING * k - 1, ref + SPACING * k + 1)


def _side_of_gap(gap: Array, levels: int) -> Array:
    return np.where(gap < levels - 1, C.SIDE_BUY, C.SIDE_SELL)


# ----------------------------------------------------------------------------- outputs


def _out_view(template: np.dtype[Any]) -> np.dtype[Any]:
    """``template``'s fields over a 64-byte OUTPUT record."""
    names = list(template.names or ())
    fields = template.fields
    assert fields is not None
    return np.dtype(
        {
            "names": names,
            "formats": [fields[n][0] for n in names],
            "offsets": [fields[n][1] for n in names],
            "itemsize": schema.OUTPUT.itemsize,
        }
    )


_ER: Final = _out_view(schema.EXECUTION_REPORT)
_MASS_REPORT: Final = _out_view(schema.ORDER_MASS_CANCEL_REPORT)


@dataclass(frozen=True)
class _Tally:
    """What a stretch of output holds: records per template, ERs per ExecType, ..."""

    written: int
    templates: Counter[int]
    exec_types: Counter[int]
    reasons: Counter[int]  #: ExecReason of the ERs
    filled: int  #: ERs with OrdStatus Filled
    affected: tuple[int, ...]  #: TotalAffectedOrders of each OrderMassCancelReport

    @classmethod
    def of(cls, out: Array) -> _Tally:
        tpl = out.view(_ER)["templateId"]
        er = out.view(_ER)[tpl == C.TEMPLATE_EXECUTION_REPORT]
        mass = out.view(_MASS_REPORT)[tpl == C.TEMPLATE_ORDER_MASS_CANCEL_REPORT]
        return cls(
            written=len(out),
            templates=Counter(tpl.tolist()),
            exec_types=Counter(er["ExecType"].tolist()),
            reasons=Counter(er["ExecReason"].tolist()),
            filled=int(np.count_nonzero(er["OrdStatus"] == C.ORD_STATUS_FILLED)),
            affected=tuple(mass["TotalAffectedOrders"].tolist()),
        )

    def er(self, exec_type: int) -> int:
        return self.exec_types[exec_type]

    def md(self, template: int) -> int:
        return self.templates[template]


@dataclass(frozen=True)
class _Before:
    resting: int
    levels: int


#: (tally, records, state before, engine after) -> None; raises BenchmarkError
_Check = Callable[[_Tally, int, _Before, Engine], None]


def _expect(path: str, what: str, got: object, want: object) -> None:
    if got != want:
        raise BenchmarkError(
            f"paths {path}: {what} is {got}, expected {want}; the engine no longer takes this path "
            "(or the book was not what the benchmark built)"
        )


def _check_engine(path: str, eng: Engine, before: _Before, resting: int, levels: int) -> None:
    _expect(path, "resting-order count change", eng.resting_orders - before.resting, resting)
    _expect(path, "occupied-level count change", eng.occupied_levels - before.levels, levels)


# ----------------------------------------------------------------------------- scenarios


@dataclass
class _Scenario:
    """A prefill, the timed input and the check of one path."""

    name: str
    prefill: Array
    book_orders: int
    book_levels: int
    batch: Array
    check: _Check
    #: one admin call per entry instead of one process call (cancel_sessions)
    sessions: list[int] = field(default_factory=list)
    note: str = ""


def _record_book(s: Sizes) -> tuple[_Book, _Flow, Array]:
    """The per-record paths' book, its flow after the prefill, and the prefill with its churn."""
    rng = np.random.Generator(np.random.PCG64([SEED, 0]))
    ref = _instruments("mix")[0].ref
    flow = _Flow()
    level = np.repeat(np.arange(2 * s.levels), DEPTH)
    book = _book(rng, ref, s.levels, level, rng.integers(ACCOUNTS, size=len(level)))
    book.place(flow)
    # churn: s.batch orders at free prices and s.batch at occupied levels, then cancelled
    gaps = rng.choice(2 * (s.levels - 1), size=s.batch, replace=False)
    at = rng.integers(2 * s.levels, size=s.batch)
    sides = np.concatenate([_side_of_gap(gaps, s.levels), np.where(at < s.levels, C.SIDE_BUY, C.SIDE_SELL)])
    prices = np.concatenate([_gap_price(ref, gaps, s.levels), book.level_price(at)])
    sessions = rng.integers(ACCOUNTS, size=2 * s.batch)
    churn = flow.new_orders(sessions, sides, prices, rng.integers(10, 101, size=2 * s.batch))
    origs = churn.view(schema.INBOUND_NEW_ORDER_SINGLE)["ClOrdID"]
    gone = flow.cancels(sessions, origs, sides)
    return book, flow, np.concatenate([book.records, churn, gone])


def _record_scenarios(s: Sizes) -> list[_Scenario]:
    book, flow0, prefill = _record_book(s)
    n, L = s.batch, s.levels
    ref = book.ref
    queues = book.queues()
    out: list[_Scenario] = []

    def scenario(name: str, key: int, build: Callable[[np.random.Generator, _Flow], tuple[Array, _Check]]) -> None:
        batch, check = build(np.random.Generator(np.random.PCG64([SEED, key])), flow0.copy())
        out.append(_Scenario(name, prefill, book.records.size, 2 * L, batch, check))

    def random_sides(rng: np.random.Generator) -> Array:
        return np.where(rng.random(n) < 0.5, C.SIDE_BUY, C.SIDE_SELL)

    def reject(rng: np.random.Generator, flow: _Flow) -> tuple[Array, _Check]:
        band = _instruments("mix")[0].band(ref)
        sides = random_sides(rng)
        prices = np.where(sides == C.SIDE_BUY, band[1] + 1 + rng.integers(1000, size=n), band[0] - 1)
        batch = flow.new_orders(rng.integers(ACCOUNTS, size=n), sides, prices, rng.integers(10, 101, size=n))

        def check(t: _Tally, k: int, before: _Before, eng: Engine) -> None:
            _expect("reject", "ER Rejected count", t.er(C.EXEC_TYPE_REJECTED), k)
            _expect("reject", "PriceOutsideBand reasons", t.reasons[C.EXEC_REASON_PRICE_OUTSIDE_BAND], k)
            _expect("reject", "output records", t.written, k)
            _check_engine("reject", eng, before, 0, 0)

        return batch, check

    def rest(name: str, new_level: bool) -> Callable[[np.random.Generator, _Flow], tuple[Array, _Check]]:
        def build(rng: np.random.Generator, flow: _Flow) -> tuple[Array, _Check]:
            if new_level:
                gaps = rng.choice(2 * (L - 1), size=n, replace=False)
                sides, prices = _side_of_gap(gaps, L), _gap_price(ref, gaps, L)
            else:
                at = rng.integers(2 * L, size=n)
                sides = np.where(at < L, C.SIDE_BUY, C.SIDE_SELL)
                prices = book.level_price(at)
            batch = flow.new_orders(rng.integers(ACCOUNTS, size=n), sides, prices, rng.integers(10, 101, size=n))

            def check(t: _Tally, k: int, before: _Before, eng: Engine) -> None:
                _expect(name, "ER New count", t.er(C.EXEC_TYPE_NEW), k)
                _expect(name, "AddOrder count", t.md(C.TEMPLATE_ADD_ORDER), k)
                _expect(name, "Trade count", t.md(C.TEMPLATE_TRADE), 0)
                if new_level:  # never at the top: the best prices and sizes stay
                    _expect(name, "BestBidOffer count", t.md(C.TEMPLATE_BEST_BID_OFFER), 0)
                _check_engine(name, eng, before, k, k if new_level else 0)

            return batch, check

        return build

    def picked(rng: np.random.Generator) -> Array:
        """One order at a random queue position of each of n distinct levels (none empties)."""
        lv = rng.choice(2 * L, size=n, replace=False)
        return np.array([queues[v][rng.integers(len(queues[v]))] for v in lv.tolist()])

    def cancel(rng: np.random.Generator, flow: _Flow) -> tuple[Array, _Check]:
        i = picked(rng)
        batch = flow.cancels(book.session[i], book.clordid[i], book.side[i])

        def check(t: _Tally, k: int, before: _Before, eng: Engine) -> None:
            _expect("cancel", "ER Canceled count", t.er(C.EXEC_TYPE_CANCELED), k)
            _expect("cancel", "UserRequest reasons", t.reasons[C.EXEC_REASON_USER_REQUEST], k)
            _expect("cancel", "OrderDelete count", t.md(C.TEMPLATE_ORDER_DELETE), k)
            _check_engine("cancel", eng, before, -k, 0)

        return batch, check

    def replace(name: str, move: bool) -> Callable[[np.random.Generator, _Flow], tuple[Array, _Check]]:
        def build(rng: np.random.Generator, flow: _Flow) -> tuple[Array, _Check]:
            i = picked(rng)
            if move:  # another occupied level of the same side, same quantity
                shift = rng.integers(1, L, size=n)
                target = (book.level[i] // L) * L + (book.level[i] % L + shift) % L
                prices, qtys = book.level_price(target), book.qty[i]
            else:  # one lot less at the same price: keeps priority
                prices, qtys = book.price[i], book.qty[i] - 1
            batch = flow.replaces(book.session[i], book.clordid[i], book.side[i], prices, qtys)

            def check(t: _Tally, k: int, before: _Before, eng: Engine) -> None:
                _expect(name, "ER Replaced count", t.er(C.EXEC_TYPE_REPLACED), k)
                _expect(name, "OrderReplace count", t.md(C.TEMPLATE_ORDER_REPLACE), k if move else 0)
                _expect(name, "OrderReduced count", t.md(C.TEMPLATE_ORDER_REDUCED), 0 if move else k)
                _expect(name, "Trade count", t.md(C.TEMPLATE_TRADE), 0)
                _check_engine(name, eng, before, 0, 0)

            return batch, check

        return build

    def ioc(rng: np.random.Generator, flow: _Flow) -> tuple[Array, _Check]:
        # alternately a buy against the offers and a sell against the bids; each takes the
        # head of the best level whole (its price and quantity), so it trades exactly once
        asks = np.concatenate(queues[L:])
        bids = np.concatenate(queues[:L])
        makers = np.empty(n, np.int64)
        makers[0::2] = asks[: (n + 1) // 2]
        makers[1::2] = bids[: n // 2]
        sides = np.where(book.side[makers] == C.SIDE_BUY, C.SIDE_SELL, C.SIDE_BUY)
        sessions = (book.session[makers] + rng.integers(1, ACCOUNTS, size=n)) % ACCOUNTS  # not the maker's
        batch = flow.new_orders(sessions, sides, book.price[makers], book.qty[makers], C.TIF_IOC)
        emptied = sum(len(np.setdiff1d(q, makers)) == 0 for q in queues)

        def check(t: _Tally, k: int, before: _Before, eng: Engine) -> None:
            _expect("ioc_one_trade", "ER New count", t.er(C.EXEC_TYPE_NEW), k)
            _expect("ioc_one_trade", "ER Trade count", t.er(C.EXEC_TYPE_TRADE), 2 * k)
            _expect("ioc_one_trade", "Filled ER count (taker and maker)", t.filled, 2 * k)
            _expect("ioc_one_trade", "Trade count", t.md(C.TEMPLATE_TRADE), k)
            _expect("ioc_one_trade", "ER Canceled count", t.er(C.EXEC_TYPE_CANCELED), 0)
            _check_engine("ioc_one_trade", eng, before, -k, -emptied)

        return batch, check

    builders = {
        "reject": reject,
        "rest_existing_level": rest("rest_existing_level", False),
        "rest_new_level": rest("rest_new_level", True),
        "cancel": cancel,
        "replace_same_level": replace("replace_same_level", False),
        "replace_other_level": replace("replace_other_level", True),
        "ioc_one_trade": ioc,
    }
    for key, name in enumerate(RECORD_PATHS, start=1):
        scenario(name, key, builders[name])
    return out


def _bulk_scenario(s: Sizes, path: str, variant: str, others: int, key: int) -> _Scenario:
    """Path ``path`` of BULK_PATHS on a book of ``others`` orders of other sessions plus
    ``s.requests`` accounts (sessions 0..) with ORDERS_PER_ACCOUNT orders each, all at
    random levels; ``variant`` is appended to the name."""
    if path not in BULK_PATHS:
        raise ValueError(f"not a bulk path: {path!r}")
    mass = path == "mass_cancel_account"
    name = path + variant
    rng = np.random.Generator(np.random.PCG64([SEED, key]))
    ref = _instruments("mix")[0].ref
    flow = _Flow()
    small = np.repeat(np.arange(s.requests), ORDERS_PER_ACCOUNT)
    level = rng.integers(2 * s.levels, size=others + small.size)
    level[: 2 * s.levels] = np.arange(2 * s.levels)  # other accounts hold every level: none empties
    session = np.concatenate([rng.integers(s.requests, ACCOUNTS, size=others), small])
    book = _book(rng, ref, s.levels, level, session)
    book.place(flow)
    sessions = np.arange(s.requests)
    per = ORDERS_PER_ACCOUNT
    reason = C.EXEC_REASON_MASS_CANCEL if mass else C.EXEC_REASON_CANCEL_ON_DISCONNECT

    def check(t: _Tally, k: int, before: _Before, eng: Engine) -> None:
        _expect(name, "OrderMassCancelReport count", t.md(C.TEMPLATE_ORDER_MASS_CANCEL_REPORT), k if mass else 0)
        _expect(name, "ER Canceled count", t.er(C.EXEC_TYPE_CANCELED), per * k)
        _expect(name, "cancel reasons", t.reasons[reason], per * k)
        _expect(name, "OrderDelete count", t.md(C.TEMPLATE_ORDER_DELETE), per * k)
        if mass:
            _expect(name, "TotalAffectedOrders per report", t.affected, (per,) * k)
        _check_engine(name, eng, before, -per * k, 0)

    batch = flow.mass_cancels(sessions) if mass else np.zeros(0, schema.INBOUND)
    calls = [] if mass else sessions.tolist()
    note = f"{others} other orders resting; {per} orders removed each"
    return _Scenario(name, book.records, book.records.size, 2 * s.levels, batch, check, calls, note)


# ----------------------------------------------------------------------------- timing


@dataclass
class _Sample:
    seconds: float
    written: int


class _Runner:
    """Runs the repeats of one scenario on fresh engines."""

    def __init__(self, insts: tuple[InstrumentConfig, ...], config: EngineConfig, out: Array) -> None:
        self.insts = insts
        self.config = config
        self.out = out

    def prepared(self, sc: _Scenario, expected_hash: bytes | None) -> tuple[Engine, bytes]:
        eng = Engine(self.insts, self.config)
        self.out = _drain(eng, sc.prefill, self.out)
        _expect(sc.name, "resting orders after the prefill", eng.resting_orders, sc.book_orders)
        _expect(sc.name, "occupied levels after the prefill", eng.occupied_levels, sc.book_levels)
        digest = eng.state_hash()
        if expected_hash is not None and digest != expected_hash:
            raise BenchmarkError(f"paths {sc.name}: the prepared book differs between repeats (state hash)")
        return eng, digest

    def once(self, sc: _Scenario, expected_hash: bytes | None) -> tuple[_Sample, bytes]:
        eng, digest = self.prepared(sc, expected_hash)
        before = _Before(eng.resting_orders, eng.occupied_levels)
        out = self.out
        clock = time.perf_counter_ns
        if sc.sessions:
            took = 0
            tallies: list[_Tally] = []
            now = int(sc.prefill[-1]["RecvTime"]) + 1_000
            for sess in sc.sessions:
                gc.disable()
                start = clock()
                res = eng.cancel_sessions(now, [sess], out)
                took += clock() - start
                gc.enable()
                _require_ok(sc.name, res, 1)
                tallies.append(_Tally.of(out[: res.written]))
                now += 1_000
            tally = _merge(tallies)
            count = len(sc.sessions)
        else:
            gc.disable()
            start = clock()
            res = eng.process(sc.batch, out)
            took = clock() - start
            gc.enable()
            count = len(sc.batch)
            _require_ok(sc.name, res, count)
            tally = _Tally.of(out[: res.written])
        sc.check(tally, count, before, eng)
        return _Sample(took / 1e9, tally.written), digest


def _require_ok(name: str, res: ProcessResult, consumed: int) -> None:
    if res.status != STATUS_OK or res.consumed != consumed:
        raise BenchmarkError(
            f"paths {name}: process stopped after {res.consumed} of {consumed} records "
            f"(status {res.status}, needed {res.needed}); the output buffer is too small"
        )


def _merge(tallies: list[_Tally]) -> _Tally:
    templates: Counter[int] = Counter()
    exec_types: Counter[int] = Counter()
    reasons: Counter[int] = Counter()
    for t in tallies:
        templates.update(t.templates)
        exec_types.update(t.exec_types)
        reasons.update(t.reasons)
    return _Tally(
        written=sum(t.written for t in tallies),
        templates=templates,
        exec_types=exec_types,
        reasons=reasons,
        filled=sum(t.filled for t in tallies),
        affected=tuple(a for t in tallies for a in t.affected),
    )


def steps(s: Sizes) -> int:
    """Progress steps of :func:`run`: building the records, then a warm-up round and
    ``s.repeats`` timed rounds over every series (the bulk paths twice: large and small book)."""
    return 1 + (len(RECORD_PATHS) + 1 + 2 * len(BULK_PATHS)) * (1 + s.repeats)


class _Series:
    """The repeats of one scenario. The first (warm-up) repeat is untimed and fixes the
    book's state hash and the output count every later repeat must reproduce."""

    def __init__(self, sc: _Scenario) -> None:
        self.name = sc.name
        self.scenario = sc
        self.digest: bytes | None = None
        self.written = -1
        self.seconds: list[float] = []

    def repeat(self, runner: _Runner) -> None:
        sample, digest = runner.once(self.scenario, self.digest)
        if self.digest is None:
            self.digest, self.written = digest, sample.written
        elif sample.written != self.written:
            raise BenchmarkError(f"paths {self.name}: output differs between repeats ({sample.written} records)")
        else:
            self.seconds.append(sample.seconds)


class _CallOverhead:
    """The reject batch in one call beside the same number of rejects, one per call."""

    name = "call_overhead"

    def __init__(self, runner: _Runner, reject: _Scenario) -> None:
        flow = _Flow()
        flow.next_clordid[:] = 1 << 40  # above every ClOrdID of the reject batch
        flow.now = int(reject.batch[-1]["RecvTime"])
        rng = np.random.Generator(np.random.PCG64([SEED, 99]))
        inst = _instruments("mix")[0]
        n = len(reject.batch)
        high = inst.band(inst.ref)[1]
        more = flow.new_orders(
            rng.integers(ACCOUNTS, size=n),
            np.full(n, C.SIDE_BUY),
            high + 1 + rng.integers(1000, size=n),
            np.full(n, 10),
        )
        self.singles = [more[i : i + 1].copy() for i in range(n)]
        self.reject = reject
        # the expected end state: both sets of rejects in one batch on an untimed engine
        eng, self.book_hash = runner.prepared(reject, None)
        both = np.concatenate([reject.batch, more])
        res = eng.process(both, runner.out)
        _require_ok(self.name, res, len(both))
        _expect(self.name, "ER Rejected count", _Tally.of(runner.out[: res.written]).er(C.EXEC_TYPE_REJECTED), 2 * n)
        self.expected = eng.state_hash()
        self.warm = False
        self.per_call: list[float] = []  #: ns per single-record call
        self.per_record: list[float] = []  #: ns per record of the batch, same repeat

    def repeat(self, runner: _Runner) -> None:
        eng, _ = runner.prepared(self.reject, self.book_hash)
        out, batch, singles = runner.out, self.reject.batch, self.singles
        process = eng.process
        clock = time.perf_counter_ns
        gc.disable()
        start = clock()
        res = process(batch, out)
        batch_ns = clock() - start
        start = clock()
        for rec in singles:
            process(rec, out)
        single_ns = clock() - start
        gc.enable()
        _require_ok(self.name, res, len(batch))
        if eng.state_hash() != self.expected:
            raise BenchmarkError("paths call_overhead: the single-record calls did not end in the batch's state")
        _expect(self.name, "last output's ER Rejected count", _Tally.of(out[:1]).er(C.EXEC_TYPE_REJECTED), 1)
        if self.warm:
            self.per_record.append(batch_ns / len(batch))
            self.per_call.append(single_ns / len(singles))
        self.warm = True


def run(s: Sizes, quick: bool, progress: _common.Progress | None = None) -> _common.Report:
    """Measure every path; ``progress`` advances ``steps(s)`` times.

    The repeats are interleaved (one repeat of every path, then the next round), so a
    slow spell of a shared machine hits every path alike instead of one path's figures.
    """
    progress = progress if progress is not None else _common.Progress(steps(s), quiet=True)
    report = _common.Report("paths", quick)
    insts = _instruments("mix")
    config = engine_config(s)
    runner = _Runner(insts, config, output_buffer(1 << 16))
    progress.step("building the books and the timed records")
    records = [_Series(sc) for sc in _record_scenarios(s)]
    overhead = _CallOverhead(runner, records[0].scenario)
    bulk = {
        (path, variant): _Series(_bulk_scenario(s, path, variant, others, key))
        for key, path in enumerate(BULK_PATHS, start=10)
        for variant, others in (("", s.mass_orders), ("_small_book", s.book_orders))
    }
    every: list[_Series | _CallOverhead] = [*records, overhead, *bulk.values()]
    for i in range(s.repeats + 1):
        for series in every:
            progress.step(f"{series.name}: " + ("warm-up and checks" if i == 0 else f"timed run {i}/{s.repeats}"))
            series.repeat(runner)
    plot: dict[str, Any] = {"ns": {}, "us": {}}
    for x in records:
        n = len(x.scenario.batch)
        ns = report.add(
            _common.from_samples(f"paths.{x.name}.ns_per_record", [t * 1e9 / n for t in x.seconds], "ns", NOTES[x.name])
        )
        report.add(_common.single(f"paths.{x.name}.out_per_record", x.written / n, "records"))
        plot["ns"][x.name] = ns.value
    one = report.add(
        _common.from_samples(
            "paths.call_overhead.ns_per_call", overhead.per_call, "ns", "one reject per process() call"
        )
    )
    report.add(
        _common.from_samples(
            "paths.call_overhead.ns_per_record_batch",
            overhead.per_record,
            "ns",
            f"rejects, {s.batch} per process() call",
        )
    )
    report.add(
        _common.from_samples(
            "paths.call_overhead.fixed_ns",
            [a - b for a, b in zip(overhead.per_call, overhead.per_record, strict=True)],
            "ns",
            "per-call minus per-record cost, same repeat",
        )
    )
    plot["ns"]["call_overhead (1 record per call)"] = one.value
    k = s.requests
    for path in BULK_PATHS:
        unit = "request" if path == "mass_cancel_account" else "call"
        medians = {}
        for variant in ("", "_small_book"):
            x = bulk[path, variant]
            medians[variant] = r = report.add(
                _common.from_samples(
                    f"paths.{x.name}.us_per_{unit}", [t * 1e6 / k for t in x.seconds], "us", x.scenario.note
                )
            )
            report.add(_common.single(f"paths.{x.name}.out_per_{unit}", x.written / k, "records"))
            plot["us"][x.name] = r.value
        report.add(
            _common.ratio(
                f"paths.{path}.large_over_small_book",
                medians[""],
                medians["_small_book"],
                f"{s.mass_orders} vs {s.book_orders} other orders",
            )
        )
    report.extra["paths"] = {
        "seed": SEED,
        "batch": s.batch,
        "repeats": s.repeats,
        "levels_per_side": s.levels,
        "level_spacing_ticks": SPACING,
        "orders_per_level": DEPTH,
        "book_orders": s.book_orders,
        "mass_orders": s.mass_orders,
        "requests": s.requests,
        "orders_per_account": ORDERS_PER_ACCOUNT,
        "accounts": ACCOUNTS,
        "engine_config": {
            "max_orders": config.max_orders,
            "max_levels": config.max_levels,
            "max_sessions": config.max_sessions,
        },
    }
    report.plot_data = plot
    return report


def _plot(report: _common.Report, path: str) -> None:
    plt = _common.pyplot()
    data = report.plot_data
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    names = list(data["ns"])
    ax1.barh(names, [data["ns"][n] for n in names], color="tab:blue")
    ax1.invert_yaxis()
    ax1.set_xlabel("ns per inbound record (median)")
    ax1.set_title("per-record paths")
    bulk = list(data["us"])
    ax2.barh(bulk, [data["us"][n] for n in bulk], color="tab:orange")
    ax2.invert_yaxis()
    ax2.set_xlabel("us per request or call (median)")
    ax2.set_title("mass cancel and cancel-on-disconnect")
    fig.suptitle("qfix bench paths" + (" (quick)" if report.quick else ""))
    _common.save_figure(fig, path)


@click.command("paths")
@click.option("--quick", is_flag=True, help="7 repeats instead of 31 and 20 bulk requests instead of 50.")
@click.option("--batch", default=BATCH, show_default=True, help="Records per timed process() call.")
@click.option("--repeats", type=int, default=None, help="Timed repeats per path (overrides --quick's).")
@click.option("--requests", type=int, default=None, hidden=True, help="Mass cancels / COD calls per repeat.")
@click.option("--mass-orders", type=int, default=None, hidden=True, help="Other orders resting in the bulk paths.")
@click.option("--levels", type=int, default=None, hidden=True, help="Price levels per side.")
@_common.output_options
def command(
    quick: bool,
    batch: int,
    repeats: int | None,
    requests: int | None,
    mass_orders: int | None,
    levels: int | None,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Cost of each engine code path in ns per inbound record (reject, rest, cancel, replace,
    IOC, mass cancel, cancel-on-disconnect, per-call overhead)."""
    s = sizes(quick, batch=batch, repeats=repeats, requests=requests, mass_orders=mass_orders, levels=levels)
    _common.check_outputs(json_path, plot_path)
    with _common.Progress(steps(s), quiet=quiet) as progress:
        report = run(s, quick, progress)
    _common.finish(report, json_path, plot_path, _plot)
