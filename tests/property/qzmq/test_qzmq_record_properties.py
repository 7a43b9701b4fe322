"""Property tests of the QZMQ record layer: arbitrary traffic with tiny KEY_UPDATE
thresholds arrives complete and in order; arbitrary bytes never deliver anything."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "qzmq"))
from qzmq_testlib import RID, config, establish

from qfix.qzmq import Messages

_LINK = {}


def _fresh(records: int):  # type: ignore[no-untyped-def]
    # handshakes are the slow part: one per threshold, reused by deep copy
    import copy

    if records not in _LINK:
        _LINK[records] = establish(cfg=config(rekey_after_records=records, rekey_after_blocks=64))
    link, conn = _LINK[records]
    return copy.deepcopy(link), conn


payloads = st.lists(
    st.one_of(
        st.integers(1, 20).map(lambda k: ("fixed", bytes([k]) * 60 * k)),
        st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=5).map(lambda ms: ("data", ms)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40)
@given(items=payloads, threshold=st.sampled_from([1, 2, 7]))
def test_traffic_arrives_in_order(items: list[tuple[str, object]], threshold: int) -> None:
    link, _conn = _fresh(threshold)
    expect: list[bytes] = []
    for kind, body in items:
        if kind == "fixed":
            link.client.send_fixed(body)  # type: ignore[arg-type]
            expect.append(body)  # type: ignore[arg-type]
        else:
            link.client.send_messages(body)  # type: ignore[arg-type]
            expect.extend(body)  # type: ignore[arg-type]
    se, _ = link.pump()
    got = [f for e in se if isinstance(e, Messages) for f in e.frames]
    assert got == expect


@settings(max_examples=60)
@given(junk=st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=20))
def test_junk_never_delivers(junk: list[bytes]) -> None:
    link, conn = _fresh(1 << 30)
    for j in junk:
        if j[:1] == b"\x51":
            continue  # handshake path, covered elsewhere
        assert link.server.receive(RID, j, 0.0) == [] or link.server.session_count == 0
    if link.server.session_count:
        assert link.server.session(conn).recv_next == 0
