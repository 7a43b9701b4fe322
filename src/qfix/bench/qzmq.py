"""``qfix bench qzmq``: handshake rate, record throughput, end-to-end DEALER->ROUTER.

What is measured (names from BENCHMARKS.md):

- ``handshake.{hybrid,pq_only}.per_s``: completed handshakes per second of *server*
  CPU (``time.process_time`` of the server process, so libzmq's I/O thread counts
  too), with the clients in other processes; ``wall_per_s`` beside it.
- ``record.batch{1,64,1000}.{encrypt,decrypt}_gbps``: sealing / opening DATA_FIXED
  records of 1, 64 and 1,000 60-byte messages in one process (plaintext bits/s).
- ``e2e.{encrypted,plaintext}.orders_per_s``: 60-byte messages per second through
  one DEALER->ROUTER pair on loopback, 1,000 per frame; the client (another process)
  alternates encrypted records and plaintext frames over the *same* sockets, and the
  server times from its go signal to the last frame received (decrypting and
  delivering each record in the encrypted case).
- ``wire_overhead_per_msg.batch1000``: bytes on the wire per 60-byte message at
  1,000 per record (QZMQ record + ZMTP frame header), over 60, minus 1, in percent.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import click
import zmq

from qfix.bench import _common
from qfix.crypto.keys import AllowEntry, AllowList, SigningKey
from qfix.crypto.primitives import SignatureAlg
from qfix.errors import BenchmarkError
from qfix.qzmq import (
    ClientConnection,
    ClientState,
    Config,
    Established,
    Messages,
    Mode,
    ServerProtocol,
    Session,
)
from qfix.qzmq.adapter import ClientEndpoint, ServerEndpoint

__all__ = ["command", "run"]

_MSG = 60
_ZMTP_LONG_HEADER = 9  # frames over 255 bytes: flags + 8-byte length


def _server_key() -> SigningKey:
    return SigningKey.from_seed(SignatureAlg.ML_DSA_65, b"\x01" * 32)


def _client_key(i: int) -> SigningKey:
    return SigningKey.from_seed(SignatureAlg.ML_DSA_65, bytes([0x40 + i]) * 32)


def _bench_config(mode: Mode) -> Config:
    # rate limits opened wide: the benchmark measures the cryptographic cost
    return Config(
        mode=mode,
        cookie_policy="never",
        hello_rate_per_address=(1e9, 1e9),
        hello_rate_total=(1e9, 1e9),
        hello_rate_known=(1e9, 1e9),
        max_pending_per_address=1024,
    )


# --- handshake ---------------------------------------------------------------------------


def _handshake_client(endpoint: str, mode: int, index: int, stop: Any) -> None:
    """Client process: handshake after handshake on one DEALER until told to stop."""
    cfg = _bench_config(Mode(mode))
    key, server = _client_key(index), _server_key().verify_key()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 100)
    sock.connect(endpoint)
    try:
        while not stop.is_set():
            conn = ClientConnection(key, server, cfg)
            conn.connect(time.monotonic())
            deadline = time.monotonic() + 5.0
            while conn.state not in (ClientState.ESTABLISHED, ClientState.FAILED):
                for f in conn.data_to_send():
                    sock.send(f)
                if time.monotonic() > deadline or stop.is_set():
                    break
                try:
                    frame = sock.recv()
                except zmq.Again:
                    continue
                conn.receive(frame, time.monotonic())
    finally:
        sock.close(0)
        ctx.term()


def _bench_handshakes(report: _common.Report, mode: Mode, quick: bool) -> None:
    name = "hybrid" if mode is Mode.HYBRID else "pq_only"
    n_clients = 2
    per_repeat = 40 if quick else 150
    repeats = 3 if quick else 5
    allow = AllowList([AllowEntry(_client_key(i).verify_key(), (1000 + i,)) for i in range(n_clients)])
    ctx = zmq.Context()
    server = ServerEndpoint(
        ServerProtocol([_server_key()], allow, _bench_config(mode), now=time.monotonic()),
        "tcp://127.0.0.1:*",
        context=ctx,
    )
    mpc = mp.get_context("spawn")
    stop = mpc.Event()
    procs = [
        mpc.Process(target=_handshake_client, args=(server.endpoint, int(mode), i, stop), daemon=True)
        for i in range(n_clients)
    ]
    for p in procs:
        p.start()
    cpu_rates, wall_rates = [], []
    try:
        for rep in range(repeats + 1):  # the first round is the warm-up
            done = 0
            cpu0, wall0 = time.process_time(), time.perf_counter()
            limit = wall0 + 120.0
            while done < per_repeat and time.perf_counter() < limit:
                done += sum(1 for e in server.poll(50, max_frames=256) if isinstance(e, Established))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if done < per_repeat:
                raise BenchmarkError(f"handshake benchmark stalled ({done}/{per_repeat})")
            if rep:
                cpu_rates.append(done / cpu)
                wall_rates.append(done / wall)
    finally:
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
        server.close()
        ctx.term()
    note = f"{n_clients} client processes; server CPU includes libzmq's I/O thread"
    report.add(_common.from_samples(f"handshake.{name}.per_s", cpu_rates, "hs/s", note))
    report.add(_common.from_samples(f"handshake.{name}.wall_per_s", wall_rates, "hs/s"))


def _bench_server_work(report: _common.Report, mode: Mode, quick: bool) -> None:
    """Server CPU of the handshake state machine alone (no sockets): the clients' work
    runs in this process too but outside the timed sections."""
    name = "hybrid" if mode is Mode.HYBRID else "pq_only"
    cfg = _bench_config(mode)
    ck = _client_key(0)
    server = ServerProtocol([_server_key()], AllowList([AllowEntry(ck.verify_key(), (1,))]), cfg)
    count = 20 if quick else 60

    def once() -> float:
        spent = 0.0
        for _ in range(count):
            client = ClientConnection(ck, _server_key().verify_key(), cfg)
            client.connect(0.0)
            (hello,) = client.data_to_send()
            t0 = time.thread_time()
            server.receive(b"r", hello, 0.0, "127.0.0.1")
            ((_, sh),) = server.data_to_send()
            spent += time.thread_time() - t0
            client.receive(sh, 0.0)
            (auth,) = client.data_to_send()
            t0 = time.thread_time()
            server.receive(b"r", auth, 0.0, "127.0.0.1")
            server.data_to_send()
            spent += time.thread_time() - t0
        return count / spent

    once()
    rates = [once() for _ in range(3 if quick else 5)]
    report.add(
        _common.from_samples(
            f"handshake.{name}.sansio_server_per_s", rates, "hs/s", "server state machine only, thread CPU time"
        )
    )


# --- records ------------------------------------------------------------------------------


def _session_pair(mode: Mode = Mode.HYBRID) -> tuple[ClientConnection, ServerProtocol, int]:
    cfg = _bench_config(mode)
    ck = _client_key(0)
    server = ServerProtocol([_server_key()], AllowList([AllowEntry(ck.verify_key(), (1,))]), cfg)
    client = ClientConnection(ck, _server_key().verify_key(), cfg)
    client.connect(0.0)
    conn = 0
    for _ in range(4):
        for f in client.data_to_send():
            for e in server.receive(b"r", f, 0.0, "127.0.0.1"):
                if isinstance(e, Established):
                    conn = e.conn
        for _, f in server.data_to_send():
            client.receive(f, 0.0)
    assert client.state is ClientState.ESTABLISHED
    return client, server, conn


_RECORD_BATCHES = (1, 64, 1000)


def _bench_records(report: _common.Report, quick: bool, progress: _common.Progress) -> None:
    repeats = 3 if quick else 5
    client, server, conn = _session_pair()
    for k in _RECORD_BATCHES:
        progress.step(f"records of {k} message{'s' if k > 1 else ''}: encrypt and decrypt")
        payload = os.urandom(_MSG * k)
        count = max(20, (2_000_000 if not quick else 500_000) // (len(payload)))
        # batch 1 is dominated by per-record overhead: enough records for a stable time

        def seal(payload: bytes = payload, count: int = count, client: ClientConnection = client) -> None:
            # drained per record, as a sender does: an ever-growing outbox would time
            # page faults instead of encryption
            for _ in range(count):
                client.send_fixed(payload)
                client.data_to_send()

        enc = _common.rate_samples(seal, count * len(payload) * 8, repeats, warmup=1)
        client.send_fixed(payload)
        (record,) = client.data_to_send()
        receiver = server.session(conn)
        sealed: list[bytes] = []
        for _ in range(count):
            client.send_fixed(payload)
        sealed = client.data_to_send()
        # the receiver never saw the records sealed while timing encryption: start at the
        # sequence number of the first record it will open
        start_next = int.from_bytes(sealed[0][2:10], "big")

        def open_all(sealed: list[bytes] = sealed, start_next: int = start_next, receiver: Session = receiver) -> None:
            rx = copy.deepcopy(receiver)
            rx.recv_next = start_next
            for f in sealed:
                rx.receive(f, 0.0)

        # the deep copy per repeat is timed too; it is tiny next to ``count`` records
        dec = _common.rate_samples(open_all, count * len(payload) * 8, repeats, warmup=1)
        rx = copy.deepcopy(receiver)
        rx.recv_next = start_next
        assert isinstance(rx.receive(sealed[0], 0.0)[0], Messages)  # really decrypts
        report.add(_common.from_samples(f"record.batch{k}.encrypt_gbps", [r / 1e9 for r in enc], "Gbit/s"))
        report.add(_common.from_samples(f"record.batch{k}.decrypt_gbps", [r / 1e9 for r in dec], "Gbit/s"))
        report.add(_common.from_samples(f"record.batch{k}.encrypt_msgs_per_s", [r / (8 * _MSG) for r in enc], "msgs/s"))
        if k == 1000:
            per_msg = (len(record) + _ZMTP_LONG_HEADER) / k
            report.add(
                _common.single(
                    "wire_overhead_per_msg.batch1000",
                    (per_msg / _MSG - 1) * 100,
                    "%",
                    f"{per_msg:.3f} B on the wire per 60-byte message",
                )
            )
        # replaying all of that into the live session would break its sequence: start anew
        client, server, conn = _session_pair()


# --- end to end ----------------------------------------------------------------------------


def _e2e_client(endpoint: str, ctl: Connection) -> None:
    """Client process: handshake, then send what the parent asks for, when it asks."""
    cfg = _bench_config(Mode.HYBRID)
    ctx = zmq.Context()
    ep = ClientEndpoint(ClientConnection(_client_key(0), _server_key().verify_key(), cfg), endpoint, context=ctx)
    ep.start()
    deadline = time.monotonic() + 10
    while ep.state is not ClientState.ESTABLISHED and time.monotonic() < deadline:
        ep.poll(10)
    ctl.send(ep.state is ClientState.ESTABLISHED)
    payload = os.urandom(_MSG * 1000)
    sock = ep.socket
    while True:
        cmd = ctl.recv()
        if cmd is None:
            break
        kind, n = cmd
        if kind == "enc":
            for _ in range(n):
                ep.send_fixed(payload)
            while ep._backlog:
                ep.poll(1)
        else:
            for _ in range(n):
                sock.send(payload, copy=False)
        ctl.send("sent")
    ep.close()
    ctx.term()


def _bench_e2e(report: _common.Report, quick: bool) -> None:
    repeats = 3 if quick else 5
    n = 300 if quick else 1500
    ctx = zmq.Context()
    ck = _client_key(0)
    server = ServerEndpoint(
        ServerProtocol(
            [_server_key()],
            AllowList([AllowEntry(ck.verify_key(), (1,))]),
            _bench_config(Mode.HYBRID),
            now=time.monotonic(),
        ),
        "tcp://127.0.0.1:*",
        context=ctx,
    )
    mpc = mp.get_context("spawn")
    parent, child = mpc.Pipe()
    proc = mpc.Process(target=_e2e_client, args=(server.endpoint, child), daemon=True)
    proc.start()
    enc_rates: list[float] = []
    plain_rates: list[float] = []
    try:
        end = time.monotonic() + 30
        while not parent.poll() and time.monotonic() < end:
            server.poll(10)
        if not parent.poll(1) or not parent.recv():
            raise BenchmarkError("e2e benchmark: handshake failed")
        sock = server.socket
        for rep in range(repeats + 1):
            for kind in ("enc", "plain"):
                got = 0
                start = time.perf_counter()
                parent.send((kind, n))
                limit = start + 60
                if kind == "enc":
                    while got < n * 1000 and time.perf_counter() < limit:
                        for e in server.poll(10):
                            if isinstance(e, Messages):
                                got += len(e.frames[0]) // _MSG
                else:
                    while got < n * 1000 and time.perf_counter() < limit:
                        if not sock.poll(10):
                            continue
                        while True:
                            try:
                                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                            except zmq.Again:
                                break
                            got += len(parts[1].buffer) // _MSG
                elapsed = time.perf_counter() - start
                parent.recv()
                if got < n * 1000:
                    raise BenchmarkError(f"e2e {kind}: only {got} messages arrived")
                if rep:
                    (enc_rates if kind == "enc" else plain_rates).append(got / elapsed)
        parent.send(None)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
        server.close()
        ctx.term()
    enc = report.add(
        _common.from_samples("e2e.encrypted.orders_per_s", enc_rates, "msgs/s", "1,000 x 60 B per record, hybrid")
    )
    plain = report.add(
        _common.from_samples(
            "e2e.plaintext.orders_per_s", plain_rates, "msgs/s", "same sockets, raw 60,000-byte frames"
        )
    )
    report.add(_common.ratio("e2e.encrypted_over_plaintext", enc, plain, "target >= 0.90"))


_PRIMITIVES = ("mldsa65_sign", "mldsa65_verify", "mlkem768_encapsulate", "x25519_exchange")


def _bench_primitives(report: _common.Report, quick: bool, progress: _common.Progress) -> None:
    """Cost of each primitive a hybrid handshake makes the server run, so the handshake
    rate can be read against its floor (the server signs once per handshake)."""
    from qfix.crypto import primitives as prim

    calls = 60 if quick else 300
    repeats = 3 if quick else 5
    server_key = prim.mldsa_from_seed(SignatureAlg.ML_DSA_65, b"\x01" * 32)
    client_key = prim.mldsa_from_seed(SignatureAlg.ML_DSA_65, b"\x02" * 32)
    data = bytes(range(256)) * 4
    signature = prim.mldsa_sign(client_key, data, b"qzmq")
    client_public = client_key.public_key()
    ek = prim.mlkem_generate().public_key().public_bytes_raw()
    peer = prim.x25519_public_bytes(prim.x25519_generate())
    operations = {
        "mldsa65_sign": lambda: prim.mldsa_sign(server_key, data, b"qzmq"),
        "mldsa65_verify": lambda: prim.mldsa_verify(client_public, signature, data, b"qzmq"),
        "mlkem768_encapsulate": lambda: prim.mlkem_encapsulate(prim.mlkem_load_ek(ek)),
        "x25519_exchange": lambda: prim.x25519_exchange(prim.x25519_generate(), peer),
    }
    for name in _PRIMITIVES:
        fn = operations[name]
        progress.step(f"primitive {name}")

        def many(fn: Callable[[], object] = fn) -> None:
            for _ in range(calls):
                fn()

        samples = [t / calls * 1e6 for t in _common.time_repeats(many, repeats)]
        report.add(_common.from_samples(f"primitive.{name}_us", samples, "us", "per call, server side"))


def plot(report: _common.Report, path: str) -> None:
    """Record throughput against messages per record, encrypt and decrypt."""
    plt = _common.pyplot()
    values = {r.name: r.value for r in report.results}
    batches = [b for b in (1, 64, 1000) if f"record.batch{b}.encrypt_gbps" in values]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind in ("encrypt", "decrypt"):
        ax.plot(batches, [values[f"record.batch{b}.{kind}_gbps"] for b in batches], marker="o", label=kind)
    ax.set_xscale("log")
    ax.set_xlabel("60-byte messages per record")
    ax.set_ylabel("plaintext Gbit/s (median)")
    ax.set_title("qfix bench qzmq: AES-256-GCM records" + (" (quick)" if report.quick else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _common.save_figure(fig, path)


#: progress steps of one run: each primitive, 2 x 2 handshake benchmarks, each record size, e2e
STEPS = len(_PRIMITIVES) + 4 + len(_RECORD_BATCHES) + 1


def run(quick: bool, progress: _common.Progress | None = None) -> _common.Report:
    """Measure; ``progress`` is advanced between timed runs (``STEPS`` steps)."""
    progress = progress if progress is not None else _common.Progress(STEPS, quiet=True)
    report = _common.Report("qzmq", quick)
    _bench_primitives(report, quick, progress)
    for mode in (Mode.HYBRID, Mode.PQ_ONLY):
        progress.step(f"handshakes over sockets, {mode.name.lower()}")
        _bench_handshakes(report, mode, quick)
    for mode in (Mode.HYBRID, Mode.PQ_ONLY):
        progress.step(f"handshake state machine alone, {mode.name.lower()}")
        _bench_server_work(report, mode, quick)
    _bench_records(report, quick, progress)
    progress.step("end to end over loopback, encrypted and plaintext")
    _bench_e2e(report, quick)
    return report


@click.command("qzmq")
@click.option("--quick", is_flag=True, help="Fewer repeats and sizes; under a minute on 2 cores.")
@_common.output_options
def command(quick: bool, json_path: str | None, plot_path: str | None, quiet: bool) -> None:
    """QZMQ handshakes/s, record throughput and encrypted vs plaintext DEALER->ROUTER."""
    _common.check_outputs(json_path, plot_path)
    with _common.Progress(STEPS, quiet=quiet) as progress:
        report = run(quick, progress)
    _common.finish(report, json_path, plot_path, plot)
