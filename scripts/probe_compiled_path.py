"""Ceiling probe for a compiled record path: one order's whole way through the server in
one jitted loop, beside a plaintext ZeroMQ ping-pong in the same run.

    .venv/bin/python scripts/probe_compiled_path.py [--orders 3000] [--json F]

`scripts/probe_rtt.py` showed that a record path written in Python around today's
kernels (the lean path) still round-trips at about 4x a ping-pong, and concluded that the
2x target of the network benchmark needs the record's path, decryption to encryption, in
one compiled call. This probe measures that call's ceiling before anyone builds it. A
child process runs, in one jitted function that never returns to Python: a blocking
``zmq_recv`` of the routing id and the record from a ROUTER socket (libzmq called from
Numba, as ``qfix.marketdata._send`` does), AES-256-GCM open through OpenSSL's EVP
interface (the system's libcrypto, as ``scripts/probe_aead_kernel.py`` does), stages H
and S (``qfix.server._stage_s.stage_hs``), the engine (``qfix.engine._kernels.process``
on a real engine of the default configuration), the selection of the session's reports
from the engine's output, the seal of the reply record and two ``zmq_send`` calls. The
client is Python, as in probe_rtt's lean path: pre-encoded IOC orders, each sealed with
``cryptography``, sent, and its reply opened. What the ceiling leaves out: the QZMQ
session's checks and key schedule (sequence numbers, rekey thresholds), the journal and
market data. Latency runs from before the send to the reply's arrival; medians and p99
over ``--orders`` round trips after 50 left out, as in probe_rtt.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import json
import multiprocessing as mp
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

_WARM = 50
_HDR = struct.Struct(">BBQ")  #: a QZMQ record header: type, epoch, sequence number
_HL = _HDR.size
_DATA_FIXED = 0x16
_TAG = 16
_MSG = 60
_ACCOUNT = 1
_SESSION = 0


def _server(home: str, keys: tuple[bytes, bytes, int, int], ctl: Any) -> None:
    import numba
    from numba import types

    from qfix.engine import Engine, output_buffer
    from qfix.engine import _kernels as kern
    from qfix.marketdata import _send
    from qfix.server import _stage_s, load_config
    from qfix.wire import schema

    if not _send.AVAILABLE:
        raise SystemExit("libzmq is not reachable from jitted code here")
    path = ctypes.util.find_library("crypto")
    if path is None:
        raise SystemExit("no system libcrypto: this probe needs OpenSSL's shared library")
    lib = ctypes.CDLL(path)
    p, i_ = ctypes.c_void_p, ctypes.c_int

    def fn(name: str, restype: Any, *argtypes: Any) -> Any:
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, list(argtypes)
        return f

    ctx_new, gcm = fn("EVP_CIPHER_CTX_new", p), fn("EVP_aes_256_gcm", p)
    enc_init, dec_init = fn("EVP_EncryptInit_ex", i_, p, p, p, p, p), fn("EVP_DecryptInit_ex", i_, p, p, p, p, p)
    enc_update, dec_update = fn("EVP_EncryptUpdate", i_, p, p, p, p, i_), fn("EVP_DecryptUpdate", i_, p, p, p, p, i_)
    enc_final, dec_final = fn("EVP_EncryptFinal_ex", i_, p, p, p), fn("EVP_DecryptFinal_ex", i_, p, p, p)
    ctrl = fn("EVP_CIPHER_CTX_ctrl", i_, p, i_, i_, p)
    zmq_recv = types.ExternalFunction("zmq_recv", types.intc(types.voidptr, types.voidptr, types.size_t, types.intc))
    zmq_send = types.ExternalFunction("zmq_send", types.intc(types.voidptr, types.voidptr, types.size_t, types.intc))
    zmq_errno = types.ExternalFunction("zmq_errno", types.intc())
    eintr = errno.EINTR

    @numba.njit(nogil=True)
    def receive(sock: int, buf: Any) -> int:
        """A blocking zmq_recv, again when a signal interrupted it."""
        n: int = zmq_recv(sock, buf.ctypes.data, buf.size, 0)
        while n < 0 and zmq_errno() == eintr:
            n = zmq_recv(sock, buf.ctypes.data, buf.size, 0)
        return n

    get_tag, set_tag, null, sndmore = 0x10, 0x11, 0, int(zmq.SNDMORE)
    inbound_words = _stage_s.INBOUND_WORDS
    dest_at = schema.OUTPUT.fields["dest"][1]
    out_size = schema.OUTPUT.itemsize

    @numba.njit(nogil=True)
    def serve(  # the whole path's state, as a compiled path would hold it
        sock: int,
        dec: int,
        enc: int,
        iv_in: Any,
        iv_out: Any,
        rid: Any,
        frame: Any,
        plain: Any,
        reply: Any,
        outl: Any,
        nonce: Any,
        raw: Any,
        raw_words: Any,
        accounts: Any,
        blocked: Any,
        params: Any,
        reasons: Any,
        words: Any,
        batch: Any,
        state: Any,
        out: Any,
        out_bytes: Any,
        count: int,
    ) -> int:
        for send_seq in range(count):
            n_rid = receive(sock, rid)
            n = receive(sock, frame)
            if n_rid <= 0 or n < _HL + _MSG + _TAG:
                return -1
            seq = 0
            for b in range(8):
                seq = (seq << 8) | frame[2 + b]
            for b in range(12):
                nonce[b] = iv_in[b]
            for b in range(8):
                nonce[11 - b] ^= (seq >> (8 * b)) & 0xFF
            body = n - _HL - _TAG
            ok = dec_init(dec, null, null, null, nonce.ctypes.data) == 1
            ok &= dec_update(dec, null, outl.ctypes.data, frame.ctypes.data, _HL) == 1
            ok &= dec_update(dec, plain.ctypes.data, outl.ctypes.data, frame.ctypes.data + _HL, body) == 1
            ok &= ctrl(dec, set_tag, _TAG, frame.ctypes.data + _HL + body) == 1
            if not (ok and dec_final(dec, plain.ctypes.data + body, outl.ctypes.data) == 1):
                return -2
            k = body // _MSG
            for j in range(k * _MSG):
                raw[j // _MSG, j % _MSG] = plain[j]
            params[_stage_s.PARAM_MARK] = 0
            written, _, _, _ = _stage_s.stage_hs(
                raw[:k], raw_words[:k], accounts, blocked, params, reasons[:k], words[:k]
            )
            _, _, _, produced = kern.process(state, out, batch, written)
            # the session's reports: every output record addressed to it, in order
            size = 0
            for r in range(produced):
                dest = 0
                for b in range(4):
                    dest |= out_bytes[r, dest_at + b] << (8 * b)
                if dest == _SESSION:
                    for j in range(_MSG):
                        plain[size + j] = out_bytes[r, j]
                    size += _MSG
            reply[0] = _DATA_FIXED
            reply[1] = 0
            for b in range(8):
                reply[2 + b] = (send_seq >> (8 * (7 - b))) & 0xFF
            for b in range(12):
                nonce[b] = iv_out[b]
            for b in range(8):
                nonce[11 - b] ^= (send_seq >> (8 * b)) & 0xFF
            ok = enc_init(enc, null, null, null, nonce.ctypes.data) == 1
            ok &= enc_update(enc, null, outl.ctypes.data, reply.ctypes.data, _HL) == 1
            ok &= enc_update(enc, reply.ctypes.data + _HL, outl.ctypes.data, plain.ctypes.data, size) == 1
            ok &= enc_final(enc, reply.ctypes.data + _HL + size, outl.ctypes.data) == 1
            ok &= ctrl(enc, get_tag, _TAG, reply.ctypes.data + _HL + size) == 1
            if not ok:
                return -3
            if zmq_send(sock, rid.ctypes.data, n_rid, sndmore) < 0:
                return -4
            if zmq_send(sock, reply.ctypes.data, _HL + size + _TAG, 0) < 0:
                return -5
        return count

    c2s, s2c, iv_in, iv_out = keys
    contexts = []
    for key, init in ((c2s, dec_init), (s2c, enc_init)):
        ctx = ctx_new()
        kbuf = ctypes.create_string_buffer(key, len(key))
        if init(ctx, gcm(), None, kbuf, None) != 1:
            raise SystemExit("EVP init failed")
        contexts.append(int(ctx))
    config = load_config(Path(home) / "qfix.toml")
    engine = Engine(config.instruments, config.engine)
    out = output_buffer(4096)
    batch = np.zeros(1091, schema.INBOUND)
    engine.process(batch[:0], out)  # binds this output buffer to the engine's address table
    frame_cap = _HL + 1091 * _MSG + _TAG
    raw = np.zeros((1091, _MSG), np.uint8)
    params = np.zeros(_stage_s.PARAMS, np.uint64)
    params[_stage_s.PARAM_SESSION_ID] = _SESSION
    params[_stage_s.PARAM_ALLOWANCE] = 1 << 40
    params[_stage_s.PARAM_ACCEPTING] = 1
    params[_stage_s.PARAM_SESSION_ACCOUNT] = _ACCOUNT
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind("tcp://127.0.0.1:*")
    echo = zmq.Context.instance().socket(zmq.ROUTER)
    echo.bind("tcp://127.0.0.1:*")
    ctl.send((echo.getsockopt_string(zmq.LAST_ENDPOINT), sock.getsockopt_string(zmq.LAST_ENDPOINT)))
    while True:
        frames = echo.recv_multipart()
        if frames[1] == b"done":
            break
        echo.send_multipart(frames)
    count = ctl.recv()
    ivs = [np.frombuffer(iv.to_bytes(12, "big"), np.uint8).copy() for iv in (iv_in, iv_out)]
    done = serve(
        int(sock.underlying), contexts[0], contexts[1], ivs[0], ivs[1], np.zeros(256, np.uint8),
        np.zeros(frame_cap, np.uint8), np.zeros(frame_cap, np.uint8), np.zeros(frame_cap, np.uint8),
        np.zeros(1, np.int32), np.zeros(12, np.uint8), raw, raw.view(np.uint32), np.array([_ACCOUNT], np.uint32),
        np.zeros(0, np.uint32), params, np.zeros(1091, np.uint8), batch.view(np.uint32).reshape(-1, inbound_words),
        batch, engine._P, out, out.view(np.uint8).reshape(-1, out_size), count,
    )  # fmt: skip
    ctl.send(done)


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values[_WARM:]), q))


def main() -> None:
    from qfix.crypto.primitives import Aes256Gcm
    from qfix.server import ensure_default_setup
    from qfix.wire import message

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    count = args.orders + _WARM
    rng = np.random.default_rng()
    keys = (rng.bytes(32), rng.bytes(32), int.from_bytes(rng.bytes(12), "big"), int.from_bytes(rng.bytes(12), "big"))
    with tempfile.TemporaryDirectory(prefix="qfix-compiled-") as home:
        ensure_default_setup(Path(home))
        parent, child = mp.Pipe()
        proc = mp.get_context("fork").Process(target=_server, args=(home, keys, child))
        proc.start()
        echo_endpoint, endpoint = parent.recv()
        dealer = zmq.Context.instance().socket(zmq.DEALER)
        dealer.connect(echo_endpoint)
        ping: list[float] = []
        for _ in range(count):
            start = time.perf_counter_ns()
            dealer.send(b"\x00" * _MSG)
            dealer.recv()
            ping.append((time.perf_counter_ns() - start) / 1e3)
        dealer.send(b"done")
        parent.send(count)  # the jitted loop compiles here, before the first order
        c2s, s2c, iv_out, iv_in = keys
        aead_out, aead_in = Aes256Gcm(c2s), Aes256Gcm(s2c)
        order = message.new_order_single(cl_ord_id=1, security_id=1, side="buy", qty=1, price="65000.00", tif="ioc")
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.connect(endpoint)
        rtt: list[float] = []
        reports = 0
        for seq in range(count):
            order["ClOrdID"] = seq + 1
            body = order.tobytes()
            start = time.perf_counter_ns()
            header = _HDR.pack(_DATA_FIXED, 0, seq)
            record = bytearray(_HL + len(body) + _TAG)
            record[:_HL] = header
            aead_out.encrypt_into((iv_out ^ seq).to_bytes(12, "big"), body, header, memoryview(record)[_HL:])
            sock.send(record, copy=False)
            if not sock.poll(10_000):
                raise SystemExit(f"no reply in 10 s; the compiled loop ended with {parent.recv()}")
            reply = sock.recv(copy=False).buffer
            _, _, rseq = _HDR.unpack_from(reply)
            plain = aead_in.decrypt((iv_in ^ rseq).to_bytes(12, "big"), reply[_HL:], reply[:_HL])
            rtt.append((time.perf_counter_ns() - start) / 1e3)
            reports += len(plain) // _MSG
        done = parent.recv()
        proc.join(10)
    if done != count:
        raise SystemExit(f"the compiled loop stopped with {done}")
    doc = {
        "probe": "compiled_path",
        "command": f"scripts/probe_compiled_path.py --orders {args.orders}",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "orders": args.orders,
        "reports_per_order": reports / count,
        "pingpong_p50_us": _p(ping, 50),
        "pingpong_p99_us": _p(ping, 99),
        "compiled_rtt_p50_us": _p(rtt, 50),
        "compiled_rtt_p99_us": _p(rtt, 99),
    }
    doc["compiled_rtt_over_pingpong"] = doc["compiled_rtt_p50_us"] / doc["pingpong_p50_us"]
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(
        f"ping-pong p50 {doc['pingpong_p50_us']:.0f} us; the compiled path p50 {doc['compiled_rtt_p50_us']:.0f} us "
        f"({doc['compiled_rtt_over_pingpong']:.2f}x), p99 {doc['compiled_rtt_p99_us']:.0f} us; "
        f"{doc['reports_per_order']:.1f} reports per order"
    )


if __name__ == "__main__":
    main()
