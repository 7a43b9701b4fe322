"""`qfix bench net`: the workload split keeps every reference valid; a tiny run reports every name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qfix.bench import _common, net
from qfix.cli import main
from qfix.wire import codes

REQUIRED = {
    "orders_per_s",
    "msgs_per_s",
    "gbps_in",
    "gbps_out",
    "trades_per_s",
    "engine_alone_orders_per_s",
    "over_engine_alone",
    "plaintext_ceiling.orders_per_s",
    "over_plaintext_ceiling",
    "rtt.p50_us@10000",
    "rtt.p99_us@10000",
    "rtt.p50_us@100000",
    "rtt.p99_us@100000",
    "pingpong.p50_us",
    "rtt_p50_over_pingpong@100000",
    "flood.rtt_p99_over_quiet",
    "flood.known_client_handshake_s",
    "flood.server_rss_mib",
    "cpu.clients_cores",
    "cpu.server_cores",
}
#: the comparison of market data on and off (the default, --md)
MD_REQUIRED = {
    "md.off.orders_per_s",
    "md.off.cpu.server_cores",
    "md.off.reconcile.missing_orders",
    "md.records_per_s",
    "md.packets_per_s",
    "md.gbps",
    "md.lag_p50_us",
    "md.lag_p99_us",
    "md.catchup_s",
    "md.subscriber_cores",
    "md.unrecovered_gaps",
    "md.books_equal",
}


def _u64(msgs: np.ndarray, at: int) -> np.ndarray:
    return np.ascontiguousarray(msgs[:, at : at + 8]).view("<u8").ravel()


@pytest.fixture(scope="module")
def tiny_stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int, np.ndarray]:
    sizes = net.Sizes(**{**net.sizes_for(3, 1.0, True).__dict__, "instruments": 20, "messages": 4000})
    streams = tmp_path_factory.mktemp("streams")
    records, prefill, path, _ = net._load_stream(sizes, True, streams)
    origins = net._cancel_origins(records, 20, path.with_suffix(".cancel-origins.npy"))
    return records, prefill, origins


@pytest.mark.parametrize("clients", [1, 3])
def test_split_renumbers_clordids_and_keeps_every_reference(
    tiny_stream: tuple[np.ndarray, int, np.ndarray], clients: int
) -> None:
    records, prefill, origins = tiny_stream
    parts = net._split(records, prefill, clients, origins, first_sessions=400)
    assert sum(m.shape[0] for m, _ in parts) == len(records)
    assert sum(pre for _, pre in parts) == prefill
    cancels = 0
    for msgs, pre in parts:
        tids = np.ascontiguousarray(msgs[:, 2:4]).view("<u2").ravel()
        assert set(np.unique(tids[:pre]).tolist()) <= {codes.TEMPLATE_NEW_ORDER_SINGLE}
        clordid = _u64(msgs, 8)
        assert np.array_equal(clordid, np.arange(1, msgs.shape[0] + 1))  # strictly increasing from 1
        refs = np.flatnonzero((tids == 2) | (tids == 3))
        orig = _u64(msgs, 24)[refs]
        assert np.all(orig < clordid[refs])  # an earlier message of the same client
        # the referenced message opened or last replaced an order
        assert set(np.unique(tids[orig.astype(np.int64) - 1]).tolist()) <= {1, 3}
        cancel_rows = np.flatnonzero(tids == 2)
        cancels += cancel_rows.size
        assert np.all(_u64(msgs, 32)[cancel_rows] == codes.NULL_U64)  # by OrigClOrdID, not OrderID
        account = np.ascontiguousarray(msgs[tids == 1, 40:44]).view("<u4").ravel()
        assert np.all(account == codes.NULL_U32)
    assert cancels == origins.size > 0


def test_net_output_path_is_checked_before_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the benchmark ran although an output path is unusable")

    monkeypatch.setattr(net, "run", run)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["bench", "net", "--quick", "--json", str(blocker / "out.json")])
    assert result.exit_code == 1 and "--json" in result.stderr and "cannot create the folder" in result.stderr


@pytest.mark.benchmark
@pytest.mark.integration
def test_bench_net_tiny_run_reports_every_result_name(tmp_path: Path) -> None:
    out, png = tmp_path / "net.json", tmp_path / "net.png"
    args = [
        "bench", "net", "--quick", "--smoke", "--quiet", "--clients", "2", "--instruments", "50",
        "--messages", "80000", "--rates", "10000,100000", "--streams", str(tmp_path / "streams"),
        "--json", str(out), "--plot", str(png),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "net" and doc["quick"] is True
    values = {r["name"]: r for r in doc["results"]}
    wanted = REQUIRED | MD_REQUIRED
    if values["md.off.orders_per_s"]["value"] > 0:  # the tiny stream's windows may count nothing (net.py)
        wanted.add("md.on_over_off")
    assert set(values) >= wanted, wanted - set(values)
    for r in doc["results"]:
        assert math.isfinite(r["value"]) and r["min"] <= r["value"] <= r["max"], r
    assert doc["reconcile"]["missing"] == 0
    assert doc["reconcile"]["orders_sent"] > 0
    assert {"clients", "server"} <= set(doc["cpu_seconds"])
    assert doc["workload"]["blake2b"]
    assert png.stat().st_size > 1000
    # the subscriber followed every feed of every instrument to the engine's books
    md = doc["market_data"]
    assert values["md.unrecovered_gaps"]["value"] == 0 and values["md.books_equal"]["value"] == 1, md["books"]
    assert md["books"]["instruments"] == 50 and md["books"]["engine_digest"] == md["books"]["subscriber_digest"]
    assert md["final"]["synced"] and md["subscriber"]["totals"]["bad_packets"] == 0
    assert {"gaps", "replays", "snapshots", "resets"} <= set(md["subscriber"]["totals"])
    assert md["subscriber"]["totals"]["records"] > 0 and values["md.off.reconcile.missing_orders"]["value"] == 0
    if values["orders_per_s"]["max"] > 0:  # a rate per acknowledged order: the same caveat as md.off above
        assert values["md.records_per_s"]["max"] > 0
    assert doc["durability"] == "none"


def test_durability_option_is_parsed_and_handed_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[tuple[str, ...], Path, bool]] = []

    def run(
        sizes: net.Sizes,
        quick: bool,
        streams: Path,
        progress: object = None,
        durability: tuple[str, ...] = (),
        journal_parent: Path = Path("bench-out"),
        md: bool = True,
    ) -> _common.Report:
        seen.append((tuple(durability), journal_parent, md))
        return _common.Report("net", quick)

    monkeypatch.setattr(net, "run", run)
    journals = tmp_path / "journals"
    args = ["bench", "net", "--quick", "--quiet", "--durability", "fsync, none", "--journal-dir", str(journals)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert CliRunner().invoke(main, ["bench", "net", "--quick", "--quiet"]).exit_code == 0
    assert CliRunner().invoke(main, ["bench", "net", "--quick", "--quiet", "--no-md"]).exit_code == 0
    # market data is off with --durability (that comparison is about the journal alone)
    bench = Path("bench-out")
    assert seen == [(("fsync", "none"), journals, False), ((), bench, True), ((), bench, False)]
    for bad, why in (("fsync,sync", "'sync'; use one or more of fsync, batch-async, none"), ("none,none", "twice")):
        result = CliRunner().invoke(main, ["bench", "net", "--quick", "--durability", bad])
        assert result.exit_code == 2 and "--durability" in result.stderr and why in result.stderr, result.stderr
    assert net.parse_durability(None) == () and net.parse_durability("batch-async") == ("batch-async",)


def _window(rate: float) -> dict[str, object]:
    after = {"orders": 1000.0, "messages_in": 1000.0, "messages_out": 2500.0, "bytes_in": 9e4, "bytes_out": 2e5}
    after.update(trades=40.0, cpu=0.8, engine_s=0.3, engine_cpu_s=0.25, engine_orders=1000.0)
    after.update(path_orders=0.0, path_s=0.0, path_cpu_s=0.0)
    before = dict.fromkeys(after, 0.0)
    return {"orders_per_s": rate, "before": before, "after": after, "client_cpu": 0.4, "sent": 1000, "truncated": False}


def _fake_run(label: str) -> net._Run:
    sizes = net.sizes_for(2, 1.0, True)
    return net._Run(sizes, None, None, 0, "", "", [], [], [0, 0], "hybrid", label)  # type: ignore[arg-type]


def _prefixed(fsync: list[dict[str, object]], none: list[dict[str, object]]) -> _common.Report:
    """A report as _measure leaves it for the fsync server, then the none server's windows added."""
    report = _common.Report("net", True)
    for r in net._window_results(fsync, "note").values():
        report.add(r)
    report.add(_common.from_samples("rtt.p50_us@10000", [5.0, 6.0, 7.0], "us"))
    report.extra.update(reconcile={"orders_sent": 3, "missing": 0}, windows_truncated=0)
    ends = [{"sent": 7, "acked": 7, "refused": 0}, {"sent": 5, "acked": 4, "refused": 0}]
    runs = [_fake_run("fsync"), _fake_run("none")]
    net._prefix_and_add_others(report, runs, [fsync, none], [({"cpu": 1.0}, ends)], "")
    return report


def test_durability_prefixes_every_name_and_compares_fsync_with_none() -> None:
    fsync = [_window(r) for r in (100.0, 300.0, 200.0)]
    none = [_window(r) for r in (400.0, 500.0, 600.0)]
    report = _prefixed(fsync, none)
    values = {r.name: r.value for r in report.results}
    throughput = set(net._window_results(fsync, "").keys())
    assert {f"fsync.{k}" for k in throughput} | {f"none.{k}" for k in throughput} <= set(values)
    assert "fsync.rtt.p50_us@10000" in values and "rtt.p50_us@10000" not in values
    assert not any(k in values for k in throughput), "an unprefixed name is left"
    assert values["fsync_over_none"] == pytest.approx(200.0 / 500.0)
    assert values["none.reconcile.missing_orders"] == 1.0
    assert report.extra["durability_runs"]["none"]["reconcile"]["orders_sent"] == 12


@pytest.mark.benchmark
@pytest.mark.integration
@pytest.mark.slow
def test_bench_net_tiny_run_with_two_durability_modes(tmp_path: Path) -> None:
    out, journals = tmp_path / "net.json", tmp_path / "journals"
    args = [
        "bench", "net", "--quick", "--smoke", "--quiet", "--clients", "2", "--instruments", "50",
        "--messages", "80000", "--rates", "10000,100000", "--streams", str(tmp_path / "streams"),
        "--durability", "fsync,none", "--journal-dir", str(journals), "--json", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    values = {r["name"]: r for r in doc["results"]}
    wanted = {f"fsync.{k}" for k in REQUIRED} | {f"none.{k}" for k in ("orders_per_s", "msgs_per_s", "trades_per_s")}
    if values["none.orders_per_s"]["value"] > 0:  # the tiny stream's windows may count nothing (net.py)
        wanted.add("fsync_over_none")
    assert set(values) >= wanted, wanted - set(values)
    assert not set(values) & REQUIRED, "an unprefixed name is left"
    for r in doc["results"]:
        assert math.isfinite(r["value"]) and r["min"] <= r["value"] <= r["max"], r
    assert values["fsync.reconcile.missing_orders"]["value"] == values["none.reconcile.missing_orders"]["value"] == 0
    assert doc["durability"] == "fsync,none" and doc["journal"]["filesystem"]["type"] != "unknown"
    assert doc["durability_runs"]["none"]["reconcile"]["orders_sent"] > 0
    assert list(journals.iterdir()) == []  # the temporary journals are gone
    assert not any(name.startswith("md.") for name in values) and "durability" in doc["market_data"]["servers"]


def test_no_ratio_over_a_none_median_of_zero() -> None:
    report = _prefixed([_window(r) for r in (1.0, 2.0, 3.0)], [_window(0.0) for _ in range(3)])
    assert "fsync_over_none" not in {r.name for r in report.results}
    assert "median of 0" in report.extra["durability_runs"]["fsync"]["over_none"]


def _md_window(rate: float, published: float) -> dict[str, object]:
    w = _window(rate)
    for key, value in (("md_published", published), ("md_packets", published / 4), ("md_bytes", published * 60)):
        w["before"][key] = 0.0  # type: ignore[index]
        w["after"][key] = value  # type: ignore[index]
    w.update(follower_cores=0.5, catchup={"synced": True, "seconds": 0.25, "cpu": 0.2, "open_gaps": 0})
    return w


def _md_report(on: list[float], off: list[float]) -> tuple[_common.Report, dict[str, object]]:
    report = _common.Report("net", True)
    windows = [_md_window(r, 5000.0) for r in on]
    for r in net._window_results(windows, "note").values():
        report.add(r)
    md: dict[str, object] = {
        "lag": {"windows": [(100.0, 900.0, 1500.0, 10), None, (200.0, 800.0, 1000.0, 5)], "all": None},
        "final": {"synced": True, "seconds": 0.1, "cpu": 0.1, "open_gaps": 0},
        "books_equal": True,
        "books": {"instruments": 50},
    }
    ends = [{"sent": 7, "acked": 7, "refused": 0}]
    off_windows = [{**_window(r), "follower_cores": 0.0} for r in off]
    net._add_md_results(report, windows, off_windows, ({"cpu": 1.0}, ends), "", md)
    return report, md


def test_market_data_names_beside_the_unprefixed_ones() -> None:
    report, md = _md_report([100.0, 300.0, 200.0], [400.0, 250.0, 200.0])
    values = {r.name: r for r in report.results}
    assert "orders_per_s" in values and "md.off.orders_per_s" in values and "md.off.cpu.server_cores" in values
    assert values["md.on_over_off"].value == pytest.approx(200.0 / 250.0)
    # 5,000 records per 1,000 matched orders at 200 orders/s acknowledged: 1,000 records/s
    assert values["md.records_per_s"].value == pytest.approx(1000.0)
    assert values["md.packets_per_s"].value == pytest.approx(250.0)
    assert values["md.gbps"].value == pytest.approx((1000.0 * 60 + 250.0 * 16) * 8e-9)
    assert values["md.lag_p99_us"].value == pytest.approx(850.0) and values["md.lag_p99_us"].repeats == 2
    assert values["md.unrecovered_gaps"].value == 0 and values["md.books_equal"].value == 1
    assert values["md.catchup_s"].value == 0.25 and md["off_window_subscriber_cores"] == [0.0] * 3
    assert not any(r.name.startswith(("fsync.", "none.")) for r in report.results)


def test_no_market_data_ratio_over_an_off_median_of_zero() -> None:
    report, md = _md_report([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert "md.on_over_off" not in {r.name for r in report.results}
    assert "median of 0" in str(md["on_over_off"])


@pytest.mark.benchmark
@pytest.mark.integration
@pytest.mark.slow
def test_bench_net_tiny_run_without_market_data(tmp_path: Path) -> None:
    out = tmp_path / "net.json"
    args = [
        "bench", "net", "--quick", "--smoke", "--quiet", "--clients", "2", "--instruments", "50",
        "--messages", "80000", "--rates", "10000,100000", "--streams", str(tmp_path / "streams"),
        "--no-md", "--json", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    values = {r["name"] for r in doc["results"]}
    assert values >= REQUIRED and not any(name.startswith("md.") for name in values)
    assert doc["market_data"] == {"servers": "off (--no-md)"}


def test_the_engine_inside_the_server_by_wall_and_by_thread_cpu() -> None:
    """Wall time inside process() includes the loop thread's preemption on shared cores;
    its CPU time is the engine-alone replay's clock, so the two rates say which it was."""
    found = net._window_results([_window(r) for r in (100.0, 200.0, 300.0)], "note")
    assert found["engine_in_server.orders_per_s"].value == pytest.approx(1000.0 / 0.3)
    assert found["engine_in_server.cpu_orders_per_s"].value == pytest.approx(1000.0 / 0.25)
    assert "record_path_in_server.orders_per_s" not in found  # that path ran nothing


def test_the_record_path_inside_the_server_is_its_own_figure() -> None:
    """Records run by the compiled record path are timed apart from process(): its calls
    hold stages H and S and routing too, so they never count as the engine's time."""
    windows = [_window(r) for r in (100.0, 200.0, 300.0)]
    for w in windows:
        w["after"].update(engine_orders=100.0, engine_s=0.05, path_orders=900.0, path_s=0.2, path_cpu_s=0.18)  # type: ignore[attr-defined]
    found = net._window_results(windows, "note")
    assert found["engine_in_server.orders_per_s"].value == pytest.approx(100.0 / 0.05)
    assert found["record_path_in_server.orders_per_s"].value == pytest.approx(900.0 / 0.2)
    assert found["record_path_in_server.cpu_orders_per_s"].value == pytest.approx(900.0 / 0.18)
    assert found["record_path_share_of_server_time"].value == pytest.approx(0.2 / 1000.0 * 200.0)
