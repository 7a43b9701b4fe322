"""The in-process market-data sink (the market-data issue replaces it with the PUB feed).

It keeps the most recent records in a bounded ring, so tests and the demo can read the
feed without a socket and memory stays bounded however long the server runs.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MarketDataSink"]


class MarketDataSink:
    """Counts market-data records and keeps the last ``keep`` of them."""

    def __init__(self, keep: int = 100_000) -> None:
        self.keep = keep
        self.total = 0
        self._chunks: deque[npt.NDArray[Any]] = deque()
        self._held = 0

    def publish(self, records: npt.NDArray[Any]) -> None:
        """Take (n, 60) market-data messages in engine order; the sink keeps ``records``
        itself, so the caller hands over an array it no longer writes to."""
        self.total += records.shape[0]
        if self.keep == 0:
            return
        self._chunks.append(records)
        self._held += records.shape[0]
        while self._held - self._chunks[0].shape[0] >= self.keep:
            self._held -= self._chunks.popleft().shape[0]

    def recent(self) -> npt.NDArray[Any]:
        """The held records, oldest first (at most ``keep`` plus one chunk)."""
        if not self._chunks:
            return np.zeros((0, 60), np.uint8)
        return np.concatenate(list(self._chunks))
