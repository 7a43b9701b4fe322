"""`qfix bench net`: the workload split keeps every reference valid; a tiny run reports every name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qfix.bench import net
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
    assert set(values) >= REQUIRED, REQUIRED - set(values)
    for r in doc["results"]:
        assert math.isfinite(r["value"]) and r["min"] <= r["value"] <= r["max"], r
    assert doc["reconcile"]["missing"] == 0
    assert doc["reconcile"]["orders_sent"] > 0
    assert {"clients", "server"} <= set(doc["cpu_seconds"])
    assert doc["workload"]["blake2b"]
    assert png.stat().st_size > 1000
