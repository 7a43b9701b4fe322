"""Cache-line aligned arrays for the engine's state and its callers' output buffers.

NumPy places a large array 16 bytes past a page boundary, so a 64-byte OUTPUT record,
and most order and level records, would straddle two cache lines: every write of a
report touches two lines instead of one. Engine state and every OUTPUT buffer of the
hot paths are therefore carved out of a slightly larger byte block at a 64-byte boundary.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qfix.wire.schema import OUTPUT

CACHE_LINE: Final = 64


def zeros_aligned(count: int, dtype: npt.DTypeLike, align: int = CACHE_LINE) -> npt.NDArray[Any]:
    """``np.zeros(count, dtype)`` whose first element starts at a multiple of ``align`` bytes."""
    dt = np.dtype(dtype)
    nbytes = count * dt.itemsize
    block = np.zeros(nbytes + align, np.uint8)
    start = -block.ctypes.data % align
    return block[start : start + nbytes].view(dt)


def output_buffer(records: int) -> npt.NDArray[Any]:
    """An OUTPUT buffer of ``records`` records, each on its own cache line."""
    return zeros_aligned(records, OUTPUT)
