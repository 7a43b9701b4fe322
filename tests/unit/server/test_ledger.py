"""The ledger: journal first, then apply; a restart (or a power cut) comes back to the same state.

Every test drives :class:`qfix.server.ledger.Ledger` directly with the differential
tests' random order stream and engine commands interleaved, no sockets. "Acknowledged"
means :meth:`Ledger.apply` returned: the server sends an entry's reports only then.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qfix.engine import EngineConfig
from qfix.journal import JournalCorruptError, JournalError, list_checkpoints, list_segments
from qfix.journal import entries as ent
from qfix.journal.checkpoint import encode_checkpoint, load_checkpoint
from qfix.server.config import ServerConfig
from qfix.server.ledger import Ledger
from qfix.server.session import OrderEntry
from qfix.testing.faults import PowerCutFiles
from qfix.testing.generators import default_random_instruments, default_random_sessions, random_stream
from qfix.wire import schema

_STREAM = random_stream(11, 2500)
_SESSIONS = default_random_sessions()


def _config(journal: Path | None, durability: str = "fsync", **kw: object) -> ServerConfig:
    return ServerConfig(
        instruments=default_random_instruments(),
        key_file=Path("unused.key"),
        allow_list_file=Path("unused.toml"),
        journal_dir=journal,
        durability=durability,
        memory_limit_mib=2**24,
        engine=EngineConfig(max_orders=4096, max_levels=2048, max_sessions=8, stp_groups={502: 501}),
        checkpoint_every_messages=0,
        checkpoint_every_s=0,
        **kw,  # type: ignore[arg-type]
    )


def _entry_table() -> OrderEntry:
    return OrderEntry(max_sessions=8, retransmit_keep=100_000)


def _open(config: ServerConfig, files: object = None) -> Ledger:
    return Ledger(config, _entry_table(), files=files)  # type: ignore[arg-type]


def _inputs(seed: int) -> Iterator[ent.Entry]:
    """The stream in random batches, with commands now and then (some refused)."""
    rng = random.Random(seed)
    at = 0
    while at < _STREAM.size:
        n = rng.randint(1, 120)
        yield ent.Batch(_STREAM[at : at + n].copy())
        now = int(_STREAM["RecvTime"][min(at + n, _STREAM.size) - 1])
        at += n
        roll = rng.random()
        if roll < 0.05:
            yield ent.CancelSessions(now, (rng.randrange(6),))
        elif roll < 0.08:
            yield ent.CancelAccounts(now, (500 + rng.randrange(4),))
        elif roll < 0.10:
            # some transitions are refused; PreOpen -> Continuous uncrosses
            yield ent.SetPhase(now, (9,), rng.choice((0, 2, 3, 4)))
        elif roll < 0.105:
            yield ent.PublishIndicative(now)
        elif roll < 0.11:
            yield ent.AuctionTick(now)
        elif roll < 0.12:
            yield ent.BlockAccounts((503,), rng.random() < 0.5)


def _login_all(ledger: Ledger) -> None:
    for sid, account in _SESSIONS:
        kid = bytes([sid + 1]) * 16
        state, _ = ledger.login(100 + sid, kid, (account,), 0.0)
        assert state.session_id == sid
        ledger.entry.logout(100 + sid)


def _apply(ledger: Ledger, entry: ent.Entry) -> None:
    """What the server does around ``apply``: stage S has raised the ClOrdID marks, and
    the reports are routed (which moves each session's ExecID position)."""
    if isinstance(entry, ent.Batch):
        view = entry.records.view(schema.INBOUND_NEW_ORDER_SINGLE)
        for sid, cl in zip(view["SessionID"].tolist(), view["ClOrdID"].tolist(), strict=True):
            state = ledger.entry.by_id[sid]
            state.hwm = max(state.hwm, cl)
    with contextlib.suppress(ValueError, NotImplementedError):  # a refused command: journaled, changed nothing
        ledger.apply(entry, ledger.entry.route)


def _snapshot(ledger: Ledger) -> tuple[object, ...]:
    marks = ledger.entry.journaled_marks
    last_exec = ledger.entry.last_exec_ids
    sessions = tuple(
        (s.session_id, s.kid, s.hwm, int(marks[s.session_id]), int(last_exec[s.session_id])) for s in ledger.entry.by_id
    )
    return ledger.engine.state_hash(), sessions, tuple(sorted(ledger.entry.blocked)), ledger.last_seq


def test_a_restart_comes_back_to_the_same_state(tmp_path: Path) -> None:
    config = _config(tmp_path / "j", journal_segment_mib=1)
    live = _open(config)
    _login_all(live)
    for k, entry in enumerate(_inputs(1)):
        _apply(live, entry)
        if k in (40, 90):
            live.checkpoint(wait=True)
    expected = _snapshot(live)
    live.writer.close()  # type: ignore[union-attr]  # no final checkpoint: a crash that kept the page cache
    again = _open(config)
    assert _snapshot(again) == expected
    assert again.recovery.replayed > 0 and again.recovery.checkpoint is not None
    # two checkpoints were kept: the replay starts at the older and checks the newer's hash
    assert again.recovery.checkpoint_seq == list_checkpoints(tmp_path / "j")[-2][0]


def test_the_reports_of_the_replayed_stretch_can_be_retransmitted(tmp_path: Path) -> None:
    config = _config(tmp_path)
    live = _open(config)
    _login_all(live)
    sent: dict[int, list[bytes]] = {sid: [] for sid, _ in _SESSIONS}

    def keep(out: np.ndarray) -> None:
        routed, _, _ = live.entry.route(out)
        for state, msgs in routed:
            sent[state.session_id] += [bytes(m) for m in msgs]

    for entry in _inputs(2):
        with contextlib.suppress(ValueError, NotImplementedError):
            live.apply(entry, keep)
    again = _open(config)
    for state in again.entry.by_id:
        ids, msgs, more = state.history.select(1, 10**9)
        assert not more and ids.size > 0
        original = live.entry.by_id[state.session_id].history.select(1, 10**9)
        assert np.array_equal(ids, original[0]) and np.array_equal(msgs, original[1])
        tids = np.ascontiguousarray(msgs[:, 2:4]).view("<u2")[:, 0]
        assert set(tids.tolist()) <= {10, 11, 12}


@pytest.mark.parametrize("durability", ["fsync", "none"])
def test_a_power_cut_never_loses_an_acknowledged_input(tmp_path: Path, durability: str) -> None:
    """Under the fault injector: in fsync every acknowledged entry survives; in none the
    same check catches the loss (so the test can fail)."""
    losses = 0
    for trial in range(6):
        rng = random.Random(trial)
        files = PowerCutFiles(rng)
        config = _config(tmp_path / f"t{trial}", durability, journal_segment_mib=1)
        live = _open(config, files)
        _login_all(live)
        hashes = {live.last_seq: live.engine.state_hash()}
        stop = rng.randint(20, 120)
        for k, entry in enumerate(_inputs(trial)):
            _apply(live, entry)
            hashes[live.last_seq] = live.engine.state_hash()
            if k == stop // 2:
                live.checkpoint(wait=True)
            if k == stop:
                break
        acknowledged = live.last_seq
        files.power_cut()
        again = _open(config)
        # whatever survived is an exact prefix of what the live server went through
        assert again.engine.state_hash() == hashes[again.last_seq]
        losses += again.last_seq < acknowledged
        if durability == "fsync":
            assert again.last_seq == acknowledged
    assert losses > 0 if durability == "none" else losses == 0


@pytest.mark.parametrize("when", ["sync", "write"])
def test_a_failed_sync_acknowledges_nothing_and_stops_the_ledger(tmp_path: Path, when: str) -> None:
    files = PowerCutFiles(random.Random(1))
    live = _open(_config(tmp_path, journal_segment_mib=1), files)
    _login_all(live)
    batches = [e for e in _inputs(3) if isinstance(e, ent.Batch)]
    live.apply(batches[0], lambda out: None)
    handed_on: list[int] = []
    if when == "sync":
        files.fail_sync_after = files.syncs  # the engine runs, then its output waits for the failing sync
    else:
        big = np.concatenate([_STREAM] * 8)  # past segment_mib: the rotation's sync fails before the engine runs
        files.fail_sync_after = files.syncs
        batches[1] = ent.Batch(big)
    with pytest.raises(JournalError, match="cannot make records"):
        live.apply(batches[1], lambda out: handed_on.append(out.size))
    assert handed_on == [] and live.failure
    with pytest.raises(JournalError):
        live.apply(batches[2], lambda out: handed_on.append(out.size))
    assert handed_on == []
    live.close()  # no final checkpoint after a failure, and no exception
    assert [s for s, _ in list_checkpoints(tmp_path)] == [0]


def test_a_journal_for_other_instruments_is_refused(tmp_path: Path) -> None:
    live = _open(_config(tmp_path))
    live.close()
    other = _config(tmp_path)
    import dataclasses

    changed = dataclasses.replace(other, instruments=other.instruments[:-1])
    with pytest.raises(JournalError, match="different instrument table"):
        _open(changed)


def test_a_checkpoint_that_disagrees_with_the_journal_stops_the_start(tmp_path: Path) -> None:
    config = _config(tmp_path)
    live = _open(config)
    _login_all(live)
    for k, entry in enumerate(_inputs(4)):
        _apply(live, entry)
        if k == 30:
            break
    live.close()  # the final checkpoint is the newer of the two
    seq, path = list_checkpoints(tmp_path)[-1]
    ck = load_checkpoint(path)
    path.write_bytes(encode_checkpoint(seq, {**ck.meta, "state_hash": "00" * 16}, ck.engine))
    with pytest.raises(JournalCorruptError, match="checkpoint there says 0000"):
        _open(config)


def test_damage_in_the_journal_stops_the_start_and_names_the_file(tmp_path: Path) -> None:
    config = _config(tmp_path, journal_segment_mib=1)
    live = _open(config)
    _login_all(live)
    for entry in _inputs(5):
        _apply(live, entry)
    live.writer.close()  # type: ignore[union-attr]
    seg = list_segments(tmp_path)[0].path
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=f"{seg.name}, offset"):
        _open(config)


def test_old_segments_and_checkpoints_are_pruned(tmp_path: Path) -> None:
    config = _config(tmp_path, journal_segment_mib=1)
    live = _open(config)
    _login_all(live)
    big = np.concatenate([_STREAM] * 8)  # ~1.6 MB a batch: a segment each
    for _ in range(4):
        _apply(live, ent.Batch(big.copy()))
        live.checkpoint(wait=True)
    checkpoints = list_checkpoints(tmp_path)
    assert len(checkpoints) == 2
    older = checkpoints[0][0]
    segments = list_segments(tmp_path)
    assert segments[0].first_seq <= older + 1 and len(segments) < 5
    state = _snapshot(live)
    live.close()
    assert _snapshot(_open(config))[:3] == state[:3]


def test_no_journal_at_all(tmp_path: Path) -> None:
    ledger = _open(_config(None, "none"))
    _login_all(ledger)
    ledger.apply(ent.Batch(_STREAM[:50].copy()), lambda out: None)
    assert ledger.last_seq == 0 and not any(tmp_path.iterdir())
    assert ledger.engine.resting_orders > 0


def test_the_event_hash_chain_comes_back_through_output_full_stops(tmp_path: Path) -> None:
    import dataclasses

    base = _config(tmp_path)
    config = dataclasses.replace(base, engine=dataclasses.replace(base.engine, event_hash=True))
    live = _open(config)
    _login_all(live)
    big = np.concatenate([_STREAM] * 80)  # more output than the first buffer holds: OUTPUT_FULL resumes
    stretches: list[int] = []

    def count(out: np.ndarray) -> None:
        stretches.append(out.size)
        live.entry.route(out)

    live.apply(ent.Batch(big[: big.size // 2].copy()), count)
    live.checkpoint(wait=True)
    live.apply(ent.Batch(big[big.size // 2 :].copy()), count)
    live.writer.close()  # type: ignore[union-attr]
    assert len(stretches) > 2  # the engine stopped with OUTPUT_FULL inside the batches
    again = _open(config)
    assert again.engine.event_hash() == live.engine.event_hash() != bytes(32)
    assert again.engine.state_hash() == live.engine.state_hash()


def test_an_intact_record_that_cannot_be_replayed_stops_the_start(tmp_path: Path) -> None:
    config = _config(tmp_path)
    live = _open(config)
    _login_all(live)
    _apply(live, ent.Batch(_STREAM[:10].copy()))
    live.writer.append(ent.Kind.BATCH, b"x" * 81)  # type: ignore[union-attr]  # checksummed, but no batch
    live.writer.close()  # type: ignore[union-attr]
    with pytest.raises(JournalCorruptError, match=r"record 8 is intact but .*qfix journal dump .* --from 8"):
        _open(config)


@pytest.mark.parametrize("ages", [(), (0,), (5,), (60,), (5, 60), (5, 60, 118), (118,)])
def test_recovery_from_checkpoints_of_every_age(tmp_path: Path, ages: tuple[int, ...]) -> None:
    """Checkpoints taken at the start, in the middle, or right at the end (empty tail):
    the restart comes back to the same state and the same retransmittable reports."""
    config = _config(tmp_path)
    live = _open(config)
    _login_all(live)
    for k, entry in enumerate(_inputs(6)):
        if k in ages:
            live.checkpoint(wait=True)
        _apply(live, entry)
        if k == 118:
            if 118 in ages:
                live.checkpoint(wait=True)
            break
    expected = _snapshot(live)
    live.writer.close()  # type: ignore[union-attr]
    again = _open(config)
    assert _snapshot(again) == expected
    for state in again.entry.by_id:
        ids, _, _ = state.history.select(state.history.dropped_upto + 1, 10**9)
        held = live.entry.by_id[state.session_id].history.select(state.history.dropped_upto + 1, 10**9)[0]
        assert np.array_equal(ids, held)


def _three_checkpoints(tmp_path: Path) -> tuple[ServerConfig, Ledger]:
    config = _config(tmp_path, journal_segment_mib=1)
    live = _open(config)
    _login_all(live)
    big = np.concatenate([_STREAM] * 8)  # a segment per batch
    for _ in range(3):
        _apply(live, ent.Batch(big.copy()))
        live.checkpoint(wait=True)
    return config, live


def test_a_journal_that_ends_before_the_newest_checkpoint_stops_the_start(tmp_path: Path) -> None:
    """A checkpoint proves its records were durable: losing them is damage, not a torn tail."""
    config, live = _three_checkpoints(tmp_path)
    live.writer.close()  # type: ignore[union-attr]
    last = list_segments(tmp_path)[-1].path
    data = bytearray(last.read_bytes())
    data[-10] ^= 0xFF  # inside the last record's payload: alone, it would look like a torn write
    last.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=r"records end at sequence \d+, but checkpoint \d+ covers"):
        _open(config)
    assert last.stat().st_size == len(data)  # nothing was cut off


def test_a_damaged_newest_checkpoint_is_skipped_and_never_counted_when_pruning(tmp_path: Path) -> None:
    config, live = _three_checkpoints(tmp_path)
    expected = _snapshot(live)
    live.writer.close()  # type: ignore[union-attr]
    newest = list_checkpoints(tmp_path)[-1][1]
    newest.write_bytes(newest.read_bytes()[:-1])
    again = _open(config)
    assert _snapshot(again) == expected and again.recovery.skipped_checkpoints
    _apply(again, ent.Batch(_STREAM[:20].copy()))
    again.checkpoint(wait=True)  # prunes: must keep the intact older one, not the damaged file
    state = _snapshot(again)
    again.writer.close()  # type: ignore[union-attr]
    third = _open(config)
    assert _snapshot(third) == state
    assert len(third._good) == 2  # two intact checkpoints: a cross-check and a long history remain


def _cut_at_first_report(live: Ledger, files: PowerCutFiles, journal: Path, image: Path) -> Any:
    """A dispatch that, as the first report of an entry is handed on, copies the journal
    as a power cut at that moment would leave it into ``image``."""

    def at_report(out: np.ndarray) -> None:
        if not image.exists():
            files.image(journal, image)
        live.entry.route(out)

    return at_report


@pytest.mark.parametrize("durability", ["fsync", "batch-async", "none"])
def test_a_power_cut_as_a_report_leaves_keeps_its_input(tmp_path: Path, durability: str) -> None:
    """The claim itself: whenever a report is handed on, its input survives a power cut
    at that very moment. Only fsync promises it; the same check catches the others."""
    losses = checks = 0
    for trial in range(4):
        files = PowerCutFiles(random.Random(100 + trial))
        journal = tmp_path / f"{durability}-{trial}"
        config = _config(journal, durability)
        live = _open(config, files)
        _login_all(live)
        for k, entry in enumerate(_inputs(trial)):
            if not isinstance(entry, ent.Batch):
                continue
            seq = live.last_seq + 1
            image = tmp_path / f"cut-{durability}-{trial}-{seq}"
            at_report = _cut_at_first_report(live, files, journal, image)
            live.apply(entry, at_report)
            if k % 7 == 0 and image.exists():
                again = _open(_config(image, "none"))
                checks += 1
                losses += again.last_seq < seq
            if k > 60:
                break
    assert checks > 5
    assert losses == 0 if durability == "fsync" else losses > 0


def test_a_full_disk_acknowledges_nothing(tmp_path: Path) -> None:
    files = PowerCutFiles(random.Random(2))
    live = _open(_config(tmp_path), files)
    _login_all(live)
    live.apply(ent.Batch(_STREAM[:10].copy()), lambda out: None)
    files.fail_write_after = 100  # part of the next record fits, the rest does not
    handed_on: list[int] = []
    with pytest.raises(JournalError, match="No space left"):
        live.apply(ent.Batch(_STREAM[10:40].copy()), lambda out: handed_on.append(out.size))
    assert handed_on == [] and live.failure
    live.close()
    files.power_cut()
    again = _open(_config(tmp_path))  # the part that landed is a torn tail, cut off
    assert again.last_seq == live.last_seq - 1 and again.recovery.torn


def test_a_key_without_accounts_is_refused_before_anything_is_journaled(tmp_path: Path) -> None:
    ledger = _open(_config(tmp_path / "journal", "fsync"))
    before = ledger.last_seq
    with pytest.raises(LookupError, match="no account"):
        ledger.login(1, b"\x01" * 16, (), 0.0)
    assert ledger.last_seq == before and not ledger.entry.by_id  # no SessionID was given
    ledger.close()
