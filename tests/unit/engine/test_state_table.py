"""The address table the kernels take (``qfix.engine._state``): it must describe exactly
the arrays the engine owns, and refuse any array the kernels would misread."""

from __future__ import annotations

import numpy as np
import pytest

from qfix.engine import Engine, EngineConfig, InstrumentConfig
from qfix.engine import types as ty
from qfix.engine._state import N_SLOTS, P_ADDRESS, P_COLUMNS, P_ROWS, P_WORDS, pointer_table


def _engine() -> Engine:
    insts = [InstrumentConfig(1, "A", 1, ref=1000, band_width=10)]
    return Engine(insts, EngineConfig(max_orders=64, max_levels=16, max_sessions=4))


def test_the_table_holds_every_state_array_address_and_shape() -> None:
    eng = _engine()
    table = eng._P
    assert table.shape == (P_WORDS * N_SLOTS,)
    for k, array in enumerate(eng._S):
        row = table[P_WORDS * k : P_WORDS * (k + 1)]
        assert row[P_ADDRESS] == array.ctypes.data, k
        assert row[P_ROWS] == array.shape[0], k
        assert row[P_COLUMNS] == (array.shape[1] if array.ndim == 2 else 1), k
    # the buffer slots stay empty until an entry point binds its call's buffers
    assert not table[P_WORDS * ty.N_STATE :].any()


def test_a_wrong_dtype_is_refused() -> None:
    arrays = list(_engine()._S)
    arrays[ty.S_LEVEL_TAB] = arrays[ty.S_LEVEL_TAB].astype(np.int64)
    with pytest.raises(ValueError, match=r"state array 7: int64 1-D, want C-contiguous int32 1-D"):
        pointer_table(arrays)


def test_a_wrong_rank_or_a_strided_array_is_refused() -> None:
    arrays = list(_engine()._S)
    flat = list(arrays)
    flat[ty.S_WIDE] = arrays[ty.S_WIDE].reshape(-1)
    with pytest.raises(ValueError, match=r"state array 14: int64 1-D, want C-contiguous int64 2-D"):
        pointer_table(flat)
    strided = list(arrays)
    strided[ty.S_CTR] = np.zeros(2 * arrays[ty.S_CTR].shape[0], np.int64)[::2]
    with pytest.raises(ValueError, match=r"state array 0"):
        pointer_table(strided)


def test_a_missing_array_is_refused() -> None:
    with pytest.raises(ValueError, match=r"the state has 16 arrays, got 15"):
        pointer_table(list(_engine()._S)[:-1])


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_an_engine_refuses_to_be_copied(how: str) -> None:
    """A copy would keep the original's address table and match in the original's arrays."""
    import copy
    import pickle

    eng = _engine()
    do = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": pickle.dumps}[how]
    with pytest.raises(TypeError, match=r"cannot be copied or pickled; use qfix.engine.snapshot.restore"):
        do(eng)
