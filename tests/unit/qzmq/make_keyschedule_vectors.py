# ruff: noqa: E501  (hex vectors)
"""Regenerate tests/vectors/qzmq/keyschedule_*.json (run by hand; not a test module).

``keyschedule_appendix_a.json`` holds the sample vectors of docs/qzmq.md Appendix A;
``keyschedule_handshake.json`` records one full hybrid and one pq-only handshake made
by qfix.qzmq from fixed keys and randoms (encapsulation and signing are randomized in
the API, so their outputs are recorded). The tests recompute every value with hashlib.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qfix.crypto import primitives as prim
from qfix.qzmq import ClientConnection, Config, Mode, ServerProtocol
from qfix.qzmq import _schedule as ks

sys.path.insert(0, str(Path(__file__).parent))
from qzmq_testlib import CLIENT_KEYS, DEFAULT_ALLOW, PEER, RID, SERVER_KEY

OUT = Path(__file__).resolve().parents[2] / "vectors" / "qzmq"

APPENDIX_A = {
    "inputs": {
        "mode": 1,
        "suite": 1,
        "ikm": bytes(range(64)).hex(),
        "th_of": "abc",
        "rekey_init_pt": "11" * 1216,
        "rekey_resp_pt": "22" * 1120,
        "rekey_ikm": bytes(range(0x40, 0x80)).hex(),
        "seq": "0102030405060708",
        "cookie_key": bytes(range(32)).hex(),
        "cookie_ts": 4096,
        "cookie_peer": "192.0.2.7",
        "cookie_routing_id": "0080000029",
        "cookie_body": "abc",
    },
    "expected": {
        "salt0_hybrid": "9d429bda3b802a6a8b93172e13da9c6fd82f55018c7c7522a4cee55adf8c39f1f0f5ab7fc52708038d9a0311d9b99c75",
        "salt0_pq_only": "3c353a13756b46b0dd66a6853d3e953c294b4df90e80cc0a566d9684f5b99251541241a6b217fec809c555300298f8bb",
        "hs": "94f572a6efd441ee24579727c23787d5cac48e956c88e054cb0be1d060681f42b5a96679ff16b14ac9ff0e62dec1ddc0",
        "th": "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        "c_hs": "ff7be1bae40906c4007dc23d6a668ecaed9d0521519323c81939ce1aa4d4fdd980a2b1cc8c9e2aade9c4cd202f5456e7",
        "c_hs_key": "8a82df432826419feec0293a59ab6afbc8c7539827207263885101c4f487620f",
        "c_hs_iv": "dfd6d1f14bac9fea1f1e16ed",
        "nonce_seq": "dfd6d1f14aae9cee1a1811e5",
        "c_hs_traffic_upd": "b275ab3b55d1da9922331d888cf0d5dca07a9185a281bbac745d41e3c43784324de3e772ad99dd1109f9538e7e1a6a1d",
        "ms": "e409f24ad6ac2b6c125cff0b2f7ead72b635e22899c4278ff64a0df62dec1fa0d250643f94db0f302eef65c17cef080a",
        "exp": "363012e8b6eb3e93d702c01c24302ea2f4a9b8eb384ffb660057a1ac54a580405b91c5e7f28b08513fa84f89bb8f6784",
        "channel_binding": "b312a61e726f9c9978ef9b27b026cd2afbc98ebad70853af828bba6d124c61ed",
        "s_hs": "88487e3329bf199c2b6a1ad357abc0316117b5b319702ca8c9cb32944338859af75ccc475688c7993eacbe9a2a9c3791",
        "s_finished": "3293ff7d4c9cec12d9a112f13793ebcf64179c0c02c2f1cd07b30416a997da309a3e7080af7ae92ff2622db727cb18e6",
        "th_abc_empty": "bfb7fb3e731c755c67c7ed70c43447fa1857e0fb6f2fef8a17c44cf63008a2ae3f6adc24aa405ecefa1620795241c877",
        "exporter_test": "6be97fcb60fd1bf5c047e57324f490c28867f368e71f67091e6badab76475b24",
        "chain": "60b0f73c1917eedb3327d63f3564d9af61216f0ebd3edb37a342dce2f0073a1c192d5e698888d813ac6aa5e4b29e8a91",
        "rekey_th": "0bb0d5ced39d5b2b5eb7a11002371c180a86c2cee3e30c6b06800e2380b103c5590e67337fe100cf4999e81f78f5a36d",
        "rekey_c_ap": "372747d03a48500e7bb72067d7a1eb4d07784d0d573d7e27e4cf348a9aa99945caf0bc32aa0e9894ed72410624db6705",
        "rekey_s_ap": "b6ee5b73b247d32778dba681a0648e0ac1333bdd66291eb23e5314c94575c6805600c12e770d1d7ced8b3f9396ff1dd0",
        "rekey_chain": "0e553485b690de7d81b1f28f9ab4d5ed2407ee833e65580a6e343b308f2b6a47eb00d156eb8371f9c3a41c9052626808",
        "cookie": "00001000d78e1d72f340069f9edf6a47efca71a680aaef27",
    },
}


def _fixed_rng(tag: int):
    def rng(n: int) -> bytes:
        return bytes([tag]) * n

    return rng


def handshake_vector(mode: Mode) -> dict[str, object]:
    cfg = Config(mode=mode, cookie_policy="never")
    mlkem_seed = bytes(range(64))
    x_priv = bytes(range(100, 132))
    ephemeral = (prim.mlkem_from_seed(mlkem_seed), prim.x25519_from_bytes(x_priv) if mode is Mode.HYBRID else None)
    ckey = CLIENT_KEYS[prim.SignatureAlg.ML_DSA_44]
    client = ClientConnection(ckey, SERVER_KEY.verify_key(), cfg, rng=_fixed_rng(0xC1), ephemeral=ephemeral)
    server = ServerProtocol([SERVER_KEY], DEFAULT_ALLOW, cfg, rng=_fixed_rng(0x5E), now=0.0)
    client.connect(0.0)
    (hello,) = client.data_to_send()
    server.receive(RID, hello, 1.0, PEER)
    ((_, sh),) = server.data_to_send()
    client.receive(sh, 1.0)
    (ca,) = client.data_to_send()
    events = server.receive(RID, ca, 1.0, PEER)
    conn = events[-1].conn  # type: ignore[union-attr]
    ((_, ready),) = server.data_to_send()
    client.receive(ready, 1.0)
    client.send_fixed(bytes(range(60)))
    (data,) = client.data_to_send()
    sess = server.session(conn)
    return {
        "mode": int(mode),
        "client_alg": int(ckey.alg),
        "client_seed": ckey.seed.hex(),
        "server_seed": SERVER_KEY.seed.hex(),
        "mlkem_seed": mlkem_seed.hex(),
        "x25519_private": x_priv.hex() if mode is Mode.HYBRID else None,
        "client_hello": hello.hex(),
        "server_hello": sh.hex(),
        "client_auth": ca.hex(),
        "ready": ready.hex(),
        "first_data_fixed": data.hex(),
        "first_data_plaintext": bytes(range(60)).hex(),
        "expected": {
            "channel_binding": sess.channel_binding.hex(),
            "c_ap": sess.recv.secret.hex(),
            "s_ap": sess.send.secret.hex(),
        },
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # sanity: our own implementation agrees before we write anything
    assert ks.salt0(Mode.HYBRID).hex() == APPENDIX_A["expected"]["salt0_hybrid"]  # type: ignore[index]
    (OUT / "keyschedule_appendix_a.json").write_text(json.dumps(APPENDIX_A, indent=1) + "\n")
    doc = {
        "comment": "full handshakes recorded by qfix.qzmq; see tests/unit/qzmq/test_qzmq_kat.py",
        "handshakes": [handshake_vector(Mode.HYBRID), handshake_vector(Mode.PQ_ONLY)],
    }
    (OUT / "keyschedule_handshake.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
