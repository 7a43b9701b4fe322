"""Adding a chunk to a feed's replay ring, jitted.

Why: the same steps in NumPy (copy the records to their slots, drop the packets whose
records were overwritten, append the chunk's packets) cost about 25 us per feed per
engine call in small array operations, four times per engine call; here they are one
kernel call. The ring's layout is :class:`qfix.marketdata.publisher.Retention`'s.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
from numba import njit

__all__ = ["lower_bound", "ring_add"]

Array = npt.NDArray[Any]


@njit(cache=True, nogil=True)
def lower_bound(ring_seq: Array, first: int, end: int, seq: int) -> int:
    """The ring position (unwrapped) of the first packet in [first, end) starting at or after ``seq``."""
    keep = ring_seq.size
    lo, hi = first, end
    while lo < hi:
        mid = (lo + hi) // 2
        if ring_seq[mid % keep] < seq:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def ring_add(
    ring_records: Array,
    ring_seq: Array,
    ring_count: Array,
    ring_security: Array,
    ring_time: Array,
    first: int,
    end: int,
    records: Array,
    first_seq: int,
    bounds: Array,
    security_ids: Array,
    sending_time: int,
) -> tuple[int, int]:
    """Add a chunk (records (n, 60) from ChannelSeqNum ``first_seq``, packets at ``bounds``)
    that continues what the ring holds, or starts it (``first == end``). Returns the new
    (first, end) ring positions."""
    keep = ring_seq.size
    n = records.shape[0]
    last = first_seq + n - 1
    oldest = last - keep + 1
    if first == end and oldest < first_seq:
        oldest = first_seq
    # the last ``keep`` records at slot (seq - 1) % keep
    take = min(n, keep)
    for r in range(n - take, n):
        slot = (first_seq + r - 1) % keep
        for b in range(records.shape[1]):
            ring_records[slot, b] = records[r, b]
    # packets whose first record was overwritten go; the chunk's whole ones come in
    first = lower_bound(ring_seq, first, end, oldest)
    for p in range(security_ids.size):
        start = first_seq + bounds[p]
        if start < oldest:
            continue
        at = end % keep
        ring_seq[at] = start
        ring_count[at] = bounds[p + 1] - bounds[p]
        ring_security[at] = security_ids[p]
        ring_time[at] = sending_time
        end += 1
    return first, end
