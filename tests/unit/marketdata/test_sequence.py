"""The jitted sequencer against the NumPy oracle: the same records, numbers, events and
packets for random engine output, including runs longer than a packet."""

from __future__ import annotations

import numpy as np
import pytest
from publish_oracle import oracle_publish

from qfix.marketdata import feeds
from qfix.marketdata.publisher import Chunk, Publisher
from qfix.wire import codes, schema

_TEMPLATES = [
    codes.TEMPLATE_ADD_ORDER,
    codes.TEMPLATE_ORDER_EXECUTED,
    codes.TEMPLATE_ORDER_DELETE,
    codes.TEMPLATE_BOOK_LEVEL,
    codes.TEMPLATE_BEST_BID_OFFER,
    codes.TEMPLATE_TRADE,
    codes.TEMPLATE_SECURITY_STATUS,
]


def _engine_output(rng: np.random.Generator, ids: list[int], n: int) -> np.ndarray:
    msgs = rng.integers(0, 256, (n, 60), dtype=np.uint8)
    head = np.zeros(n, schema.ADD_ORDER)
    head["blockLength"] = codes.BLOCK_LENGTH
    head["templateId"] = rng.choice(_TEMPLATES, n)
    head["schemaId"] = codes.SCHEMA_MARKET_DATA
    head["TransactTime"] = rng.integers(0, 2**62, n)
    head["SecurityID"] = rng.choice(ids, n)
    head["RptSeq"] = 0
    head["MatchEventIndicator"] = np.where(rng.random(n) < 0.3, codes.MEI_END_OF_EVENT, 0)
    raw = head.view(np.uint8).reshape(n, 60)
    keep = np.zeros(60, bool)
    keep[24:52] = True  # the body stays random: it must travel untouched
    return np.where(keep, msgs, raw)


# SecurityIDs spread wide are found by bisection, packed ones through a dense index; many
# instruments and few records per call take the merge sort, the other calls a counting sort
@pytest.mark.parametrize(
    ("seed", "spread", "most"), [(s, 10**6, 30) for s in range(6)] + [(s, 300, 250) for s in range(4)]
)
def test_the_jitted_sequencer_matches_the_oracle(seed: int, spread: int, most: int) -> None:
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(np.arange(1, spread), int(rng.integers(1, most)), replace=False).tolist())
    pub = Publisher(ids, retention=0)
    sec = np.array(ids, np.int64)
    rpt, chan, last = pub.rpt_seq.copy(), pub.channel_seq.copy(), pub.last_time.copy()
    for call in range(40):
        n = int(rng.choice([1, 5, 50, 3000]))  # 3000 in few instruments: runs over 1,091
        msgs = _engine_output(rng, ids[: int(rng.integers(1, len(ids) + 1))], n)
        before = msgs.copy()
        want = oracle_publish(msgs, sec, rpt, chan, last)
        got = {c.feed: c for c in pub.publish(msgs, call) if isinstance(c, Chunk)}
        assert np.array_equal(msgs, before), "the engine's records must not be changed"
        assert sorted(got) == sorted(want)
        for feed, (first, records, bounds, security) in want.items():
            chunk = got[feed]
            assert chunk.first_seq == first, feeds.FEED_NAMES[feed]
            assert np.array_equal(chunk.records, records), feeds.FEED_NAMES[feed]
            assert chunk.bounds.tolist() == bounds.tolist()
            assert chunk.security_ids.tolist() == security.tolist()
        assert np.array_equal(pub.rpt_seq, rpt) and np.array_equal(pub.channel_seq, chan)
        assert np.array_equal(pub.last_time, last)


@pytest.mark.parametrize("ids", [[1, 5], [1, 5, 10**9]])  # a dense index, bisection
@pytest.mark.parametrize("unknown", [6, 3, 0, 2**32 - 1])
def test_a_record_of_an_unconfigured_instrument_changes_nothing(ids: list[int], unknown: int) -> None:
    pub = Publisher(ids)
    rng = np.random.default_rng(1)
    msgs = _engine_output(rng, ids, 10)
    msgs[7, 16:20] = np.array([unknown], "<u4").view(np.uint8)
    with pytest.raises(ValueError, match=rf"unconfigured SecurityID \[{unknown}\]"):
        pub.publish(msgs, 1)
    assert not pub.channel_seq.any() and not pub.rpt_seq.any() and not pub.last_time.any()
