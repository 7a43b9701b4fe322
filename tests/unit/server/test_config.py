"""Server configuration: the default setup loads; every kind of bad file fails naming the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qfix.crypto import load_public_key, public_key_path
from qfix.engine import backends
from qfix.engine.config import ALLOCATION_PRO_RATA, ALLOCATION_TIME, PHASE_CONTINUOUS, PHASE_PRE_OPEN
from qfix.qzmq import Mode
from qfix.server import ServerConfigError, ensure_default_setup, load_config, parse_config, with_overrides
from qfix.server.config import ScheduledPhase, ServerConfig, load_keys
from qfix.server.defaults import DEMO_CLIENTS

GOOD = """
[server]
batch = 500
[keys]
server_key = "server.key"
allow_list = "allow.toml"
[[instrument]]
security_id = 7
symbol = "X"
tick = "0.5"
ref = "100.0"
band_ticks = 40
"""


def test_default_setup_is_written_once_and_loads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = ensure_default_setup(home)
    first = path.read_bytes()
    assert ensure_default_setup(home) == path and path.read_bytes() == first
    for name, _ in DEMO_CLIENTS:
        assert (home / f"{name}.key").stat().st_mode & 0o077 == 0
    config = load_config(path)
    assert [i.symbol for i in config.instruments] == ["BTC-USD", "ETH-USD", "AAPL"]
    assert config.key_file == (home / "server.key").resolve()
    assert config.fix_endpoint == "tcp://127.0.0.1:5555"
    assert config.journal_dir == (home / "journal").resolve() and config.durability == "fsync"


def test_default_setup_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "stray").write_text("x")
    with pytest.raises(ServerConfigError, match=r"without qfix\.toml"):
        ensure_default_setup(tmp_path)


def test_values_are_converted_to_ticks_and_paths_resolved(tmp_path: Path) -> None:
    config = parse_config(GOOD, base=tmp_path)
    ins = config.instruments[0]
    assert (ins.tick_size_p9, ins.ref, ins.band_width) == (500_000_000, 200, 40)
    assert config.batch == 500 and config.allow_list_file == tmp_path / "allow.toml"


def test_flags_override_the_file(tmp_path: Path) -> None:
    config = with_overrides(
        parse_config(GOOD, base=tmp_path), batch=9, fix_port=0, pq_only=True, host=None, idle_spin_us=300
    )
    assert (config.batch, config.fix_port, config.qzmq.mode, config.idle_spin_us) == (9, 0, Mode.PQ_ONLY, 300)
    with pytest.raises(ServerConfigError, match=r"server\.batch"):
        with_overrides(config, batch=0)


def test_the_compiled_record_path_is_on_unless_turned_off(tmp_path: Path) -> None:
    on = parse_config(GOOD, base=tmp_path)
    assert on.compiled_path and on.compiled_sockets
    off = parse_config(GOOD.replace("batch = 500", "batch = 500\ncompiled_path = false"), base=tmp_path)
    assert not off.compiled_path
    off = parse_config(GOOD.replace("batch = 500", "batch = 500\ncompiled_sockets = false"), base=tmp_path)
    assert off.compiled_path and not off.compiled_sockets


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("batch = 500", "batch = 500\nbacth = 3"), r"unknown key\(s\) server.bacth"),
        (("batch = 500", 'batch = "big"'), r"server.batch: expected an integer"),
        (("batch = 500", "batch = true"), r"server.batch: expected an integer, got a boolean"),
        (("batch = 500", "batch = 0"), r"server.batch: 0 is outside"),
        (("batch = 500", "batch = 500\nidle_spin_us = -1"), r"server.idle_spin_us: -1 is outside"),
        # 0 is no limit at all in libzmq, as for marketdata.sndhwm
        (("batch = 500", "batch = 500\nsndhwm = 0"), r"server.sndhwm: 0 is outside 1\.\.2147483647"),
        (("batch = 500", "batch = 500\nrcvhwm = 0"), r"server.rcvhwm: 0 is outside 1\.\.2147483647"),
        (("batch = 500", "batch = 500\nidle_spin_us = 0.5"), r"server.idle_spin_us: expected an integer"),
        (
            ("batch = 500", 'batch = 500\ncompiled_path = "yes"'),
            r"server.compiled_path: expected true or false, got str",
        ),
        (('symbol = "X"', ""), r"instrument\[0\].symbol: missing"),
        (('tick = "0.5"', 'tick = "-1"'), r"instrument\[0\].tick: -1 must be positive"),
        (('tick = "0.5"', 'tick = "abc"'), r"instrument\[0\].tick: 'abc' is not a decimal"),
        (('ref = "100.0"', 'ref = "100.2"'), r"instrument\[0\].ref: 100.2 is not a whole number of ticks"),
        (("band_ticks = 40", "band_ticks = 40\nband_bps = 5"), r"exactly one of band_ticks or band_bps"),
        (("band_ticks = 40", ""), r"exactly one of band_ticks or band_bps"),
        (('server_key = "server.key"', ""), r"keys.server_key: missing"),
        (("[keys]", "[qzmq]\nmode = 'quantum'\n[keys]"), r"qzmq.mode: 'quantum'; use hybrid or pq-only"),
        (("[keys]", "[qzmq]\nrekey_interval = 1\n[keys]"), r"qzmq.rekey_interval: must be at least 10 s"),
        (("[keys]", "[engine]\nmax_orders = 0\n[keys]"), r"engine.max_orders: 0 is outside"),
        (
            ("[keys]", "[engine]\nmax_orders = 10\nreserve_orders = 11\n[keys]"),
            r"engine: .*reserve_orders must be in 0..max_orders=10",
        ),
        (("security_id = 7", "security_id = 0"), r"instrument\[0\].security_id: 0 is outside"),
        (("[server]", "[server\n"), r"not valid TOML"),
        (("batch = 500", 'durability = "fsync"'), r"unknown key\(s\) server.durability"),
        (("[keys]", '[journal]\ndurability = "always"\n[keys]'), r"journal.durability: 'always'; use one of fsync"),
        (("[keys]", '[journal]\ndir = ""\n[keys]'), r"journal.durability = 'fsync' needs a journal"),
        (("[keys]", "[journal]\nsegment_mib = 0\n[keys]"), r"journal.segment_mib"),
        (("[keys]", "[journal]\ncheckpoint_every_s = -1\n[keys]"), r"journal.checkpoint_every_s"),
        (("[keys]", "[journal]\nfsync = true\n[keys]"), r"unknown key\(s\) journal.fsync"),
        (("[keys]", "[marketdata]\nsnapshot_port = 70000\n[keys]"), r"marketdata.snapshot_port: 70000 is outside"),
        (("[keys]", "[marketdata]\nenabled = 1\n[keys]"), r"marketdata.enabled: expected true or false"),
        (("[keys]", "[marketdata]\nheartbeat_interval = 0\n[keys]"), r"marketdata.heartbeat_interval: 0.0 is outside"),
        (("[keys]", "[marketdata]\nreplay_max_records = 0\n[keys]"), r"marketdata.replay_max_records"),
        (("[keys]", "[marketdata]\nreplay_max_records = 1090\n[keys]"), r"replay_max_records: 1090 is outside"),
        (("[keys]", "[marketdata]\nsndhwm = 0\n[keys]"), r"marketdata.sndhwm: 0 is outside"),
        (("[keys]", "[marketdata]\nreply_sndhwm = 0\n[keys]"), r"marketdata.reply_sndhwm: 0 is outside"),
        (("[keys]", "[marketdata]\nmax_replies_in_flight = 0\n[keys]"), r"max_replies_in_flight: 0 is outside"),
        (("[keys]", "[marketdata]\nreply_timeout = 0\n[keys]"), r"marketdata.reply_timeout: 0.0 is outside"),
        (("[keys]", "[marketdata]\nsnapshot_share = 0\n[keys]"), r"marketdata.snapshot_share: 0.0 is outside"),
        (("[keys]", "[marketdata]\nport = 5556\n[keys]"), r"unknown key\(s\) marketdata.port"),
        (('ref = "100.0"', 'ref = "100.0"\nlot = 4294967296'), r"instrument\[0\].lot: 4294967296 is outside"),
        (("[keys]", "[server.cancel_on_disconnect_by_kid]\nAB = false\n[keys]"), r"by_kid: 'AB' is not a 16-byte"),
        (("[keys]", f"[server.cancel_on_disconnect_by_kid]\n{'0' * 32} = 1\n[keys]"), r"by_kid.0+: expected true"),
        (("band_ticks = 40", "band_ticks = 40\nbatch_auction_ms = -1"), r"instrument\[0\].batch_auction_ms: -1.0"),
        (("band_ticks = 40", 'band_ticks = 40\nallocation = "fifo"'), r"allocation: 'fifo'; use one of time"),
        (("[keys]", '[engine]\nauction_backend = "gpu"\n[keys]'), r"engine.auction_backend: 'gpu'; use one of auto"),
        (("[keys]", '[[schedule]]\nat = "7:5"\nphase = "pre-open"\n[keys]'), r"schedule\[0\].at: '7:5'; give"),
        (("[keys]", '[[schedule]]\nat = "07:50"\n[keys]'), r"schedule\[0\].phase: missing; use one of"),
        (("[keys]", '[[schedule]]\nat = "07:50"\nphase = "lunch"\n[keys]'), r"schedule\[0\].phase: 'lunch'"),
        (
            ("[keys]", '[[schedule]]\nat = "07:50"\nphase = "closed"\nsecurity_ids = [9]\n[keys]'),
            r"schedule\[0\].security_ids: \[9\] are not configured",
        ),
        (
            ("[keys]", '[[schedule]]\nat = "07:50"\nphase = "closed"\nsecurity_ids = "all"\n[keys]'),
            r"schedule\[0\].security_ids: expected a list",
        ),
        (("[keys]", '[[schedule]]\nat = "07:50"\nphase = "closed"\nwhen = 1\n[keys]'), r"schedule\[0\].when"),
    ],
)
def test_bad_files_fail_naming_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ServerConfigError, match=message):
        parse_config(GOOD.replace(*change), base=tmp_path)


def test_batch_auction_instruments_and_the_auction_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    text = GOOD.replace("band_ticks = 40", 'band_ticks = 40\nbatch_auction_ms = 2.5\nallocation = "pro-rata"')
    config = parse_config(text.replace("[keys]", '[engine]\nauction_backend = "cpu"\n[keys]'), base=tmp_path)
    (inst,) = config.instruments
    assert (inst.fba_interval_ns, inst.allocation) == (2_500_000, ALLOCATION_PRO_RATA)
    assert config.engine.auction_backend == "cpu"
    (plain,) = parse_config(GOOD, base=tmp_path).instruments
    assert (plain.fba_interval_ns, plain.allocation) == (None, ALLOCATION_TIME)
    assert parse_config(GOOD, base=tmp_path).engine.auction_backend == "auto"
    monkeypatch.setenv(backends.ENV_VAR, "cpu")  # ENGINE.md §8: read by the composition root
    assert parse_config(GOOD, base=tmp_path).engine.auction_backend == "cpu"


def test_the_phase_schedule_is_read_in_file_order(tmp_path: Path) -> None:
    text = GOOD.replace(
        "[keys]",
        '[[schedule]]\nat = "07:50"\nphase = "pre-open"\nsecurity_ids = [7]\n'
        '[[schedule]]\nat = "08:00"\nphase = "continuous"\n[keys]',
    )
    config = parse_config(text, base=tmp_path)
    assert config.schedule == (
        ScheduledPhase("07:50", PHASE_PRE_OPEN, (7,)),
        ScheduledPhase("08:00", PHASE_CONTINUOUS, ()),
    )
    assert parse_config(GOOD, base=tmp_path).schedule == ()


def test_a_named_auction_backend_that_cannot_run_stops_the_start(tmp_path: Path) -> None:
    missing = [name for name, why in backends.availability().items() if why is not None]
    if not missing:
        pytest.skip("every auction backend runs here, so none can be refused")
    text = GOOD.replace("[keys]", f'[engine]\nauction_backend = "{missing[0]}"\n[keys]')
    with pytest.raises(ServerConfigError, match=f"engine.auction_backend: .*{missing[0]}"):
        parse_config(text, base=tmp_path)


def test_cancel_on_disconnect_is_a_default_with_per_key_exceptions(tmp_path: Path) -> None:
    kept, other = "ab" * 16, "cd" * 16
    text = GOOD.replace("[keys]", f"[server.cancel_on_disconnect_by_kid]\n{kept} = false\n[keys]")
    config = parse_config(text, base=tmp_path)
    assert not config.cancels_on_disconnect(bytes.fromhex(kept))
    assert config.cancels_on_disconnect(bytes.fromhex(other))
    text = text.replace("batch = 500", "batch = 500\ncancel_on_disconnect = false")
    text = text.replace(f"{kept} = false", f"{kept} = true")
    config = parse_config(text, base=tmp_path)
    assert config.cancels_on_disconnect(bytes.fromhex(kept))
    assert not config.cancels_on_disconnect(bytes.fromhex(other))


def test_cancel_on_disconnect_exceptions_built_in_code_are_checked_too(tmp_path: Path) -> None:
    config = parse_config(GOOD, base=tmp_path)
    with pytest.raises(ServerConfigError, match="cancel_on_disconnect_by_kid"):
        with_overrides(config, cancel_on_disconnect_by_kid=(("AB" * 16, False),))


def test_duplicate_instruments_are_refused(tmp_path: Path) -> None:
    doubled = GOOD + GOOD[GOOD.index("[[instrument]]") :]
    with pytest.raises(ServerConfigError, match="security_id 7 appears twice"):
        parse_config(doubled, base=tmp_path)


def test_worst_case_output_over_the_memory_limit_is_refused_naming_the_settings(tmp_path: Path) -> None:
    text = GOOD.replace("band_ticks = 40", "band_ticks = 40\nmax_order_qty = 4294967294")
    with pytest.raises(ServerConfigError, match=r"max_order_qty 4,294,967,294.*memory_limit_mib = 8192"):
        parse_config(text, base=tmp_path)
    roomy = text.replace("batch = 500", "batch = 500\nmemory_limit_mib = 3000000")
    assert parse_config(roomy, base=tmp_path).worst_case_records() == 16 + 8 * (4294967294 + (1 << 20))


def test_market_data_keys_and_their_memory(tmp_path: Path) -> None:
    text = GOOD.replace("[keys]", "[marketdata]\nsnapshot_port = 6001\nretention = 5000\nenabled = false\n[keys]")
    config = parse_config(text, base=tmp_path)
    assert (config.md_snapshot_port, config.md_retention, config.md_enabled) == (6001, 5000, False)
    assert config.md_snapshot_endpoint.endswith(":6001") and config.md_retention_bytes() == 0
    assert parse_config(GOOD, base=tmp_path).md_retention_bytes() == 4 * 1_000_000 * (60 + 24)
    hungry = GOOD.replace("[keys]", "[marketdata]\nretention = 100000000000\n[keys]")
    with pytest.raises(ServerConfigError, match=r"marketdata.retention 100,000,000,000 records per feed"):
        parse_config(hungry, base=tmp_path)


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServerConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "nope.toml")


def test_snapshot_replies_count_towards_the_memory_limit(tmp_path: Path) -> None:
    """Replies in flight are bounded by the configuration, so they are part of its budget."""
    text = GOOD.replace("[keys]", "[marketdata]\nmax_replies_in_flight = 10000\n[keys]")
    with pytest.raises(ServerConfigError, match=r"snapshot replies \(marketdata.max_replies_in_flight 10000\)"):
        parse_config(text, base=tmp_path)
    config = parse_config(text.replace("10000", "2"), base=tmp_path)
    n = len(config.instruments)
    snapshot_records = config.engine.max_orders + 4 * n
    snapshot = snapshot_records * 60 + (-(-snapshot_records // 1091) + n) * 256
    replay = config.md_replay_max_records * (60 + 256)
    assert config.md_reply_bytes() == 2 * (max(snapshot, replay) + 16 * 1091 * 60)


def test_the_server_says_where_uncrosses_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qfix.server.server import _auction_backend_choice

    monkeypatch.delenv(backends.ENV_VAR, raising=False)

    assert _auction_backend_choice(parse_config(GOOD, base=tmp_path)).startswith("cpu (auto: fewer than 256")
    named = parse_config(GOOD.replace("[keys]", '[engine]\nauction_backend = "cpu"\n[keys]'), base=tmp_path)
    assert _auction_backend_choice(named) == "cpu (engine.auction_backend or $QFIX_AUCTION_BACKEND)"


@pytest.fixture
def default_config(tmp_path: Path) -> ServerConfig:
    return load_config(ensure_default_setup(tmp_path / "home"))


def test_the_default_keys_load_with_the_admin_on_the_allow_list(default_config: ServerConfig) -> None:
    key, allow = load_keys(default_config)
    assert key.kid == load_public_key(public_key_path(default_config.key_file)).kid
    assert default_config.admin_kids and all(bytes.fromhex(kid) in allow for kid in default_config.admin_kids)


def test_a_missing_server_key_names_the_setting_and_keygen(default_config: ServerConfig, tmp_path: Path) -> None:
    missing = tmp_path / "s.key"
    with pytest.raises(ServerConfigError) as refused:
        load_keys(with_overrides(default_config, key_file=missing))
    message = str(refused.value)
    assert message.startswith(f"{default_config.source}: keys.server_key: {missing}: cannot open: ")
    assert message.endswith(f"; fix the path, or create the key with `qfix keygen --role server --out {missing}`")


def test_a_missing_or_malformed_allow_list_names_the_setting(default_config: ServerConfig, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ServerConfigError, match=rf"keys\.allow_list: {missing}: cannot open: .*; fix the path"):
        load_keys(with_overrides(default_config, allow_list_file=missing))
    bad = tmp_path / "allowbad.toml"
    bad.write_text('[[client]]\nformat = "qzmq-key-1"\n')
    bad.chmod(0o644)
    with pytest.raises(ServerConfigError) as refused:
        load_keys(with_overrides(default_config, allow_list_file=bad))
    assert str(refused.value) == (
        f"{default_config.source}: keys.allow_list: {bad}: client #1: missing key(s) accounts; fix the path or the "
        "file; `qfix keygen --role client --account N` prints a [[client]] entry to paste"
    )


def test_an_admin_kid_off_the_allow_list_stops_the_start(default_config: ServerConfig) -> None:
    stray = "ab" * 16
    config = with_overrides(default_config, admin_kids=(*default_config.admin_kids, stray))
    with pytest.raises(ServerConfigError) as refused:
        load_keys(config)
    assert str(refused.value) == (
        f"{config.source}: keys.admin_kids: {stray} is not on the allow-list {config.allow_list_file} "
        "(keys.allow_list); add that key's [[client]] entry there, or take the kid out of keys.admin_kids"
    )


def test_a_reloaded_allow_list_without_an_admin_kid_is_warned_about(
    default_config: ServerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Refusing the reload would keep serving a key the operator meant to revoke."""
    from qfix.server.server import _warn_unknown_kids

    _, allow = load_keys(default_config)
    stray = "ab" * 16
    config = with_overrides(default_config, admin_kids=(stray,), cancel_on_disconnect_by_kid=((stray, False),))
    with caplog.at_level(logging.WARNING, logger="qfix.server.server"):
        warnings = _warn_unknown_kids(config, allow)
    # logged, and returned for the reload's reply (the next start refuses the admin kid)
    assert (
        [r.getMessage() for r in caplog.records]
        == warnings
        == [
            f"server.cancel_on_disconnect_by_kid names {stray}, which is not on the allow-list",
            f"keys.admin_kids names {stray}, which is not on the allow-list; the next start refuses it: take it "
            "out of keys.admin_kids",
        ]
    )
