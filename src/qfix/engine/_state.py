"""The engine state as the kernels receive it: one int64 table of array addresses.

Theory of operation: Numba passes every array argument of a non-inlined call as its
whole descriptor (seven or nine machine words), so a call that took the sixteen state
arrays as a tuple copied about 120 words onto the stack, and the dispatcher unboxed all
sixteen on every call from Python. ``scripts/probe_state_passing.py`` measured what that
costs against the alternative kept here: the host writes each array's address and shape
into a small int64 table (:func:`pointer_table`), every kernel that is not inlined takes
that table, ``P``, and rebuilds the tuple ``S`` of views from it in its first line
(``S = state(P)``). The views are made by :func:`_view1`/:func:`_view2` without a
meminfo (the kernels run without reference counting and never allocate), and LLVM drops
the ones a kernel does not use. ``S[S_PTRS]`` is ``P`` again, so a kernel holding ``S``
can call another with ``S[S_PTRS]``.

The table holds raw addresses: the host keeps every array alive and never replaces one
after the table is built (``Engine`` allocates them once, at their maximum size).
"""

# Kernel signatures are inferred by Numba from the state dtypes; annotating them would be
# decorative, so the kernel modules relax mypy's untyped-def rules.
# mypy: allow-untyped-defs, allow-incomplete-defs, allow-untyped-calls

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from qfix.engine import types as ty
from qfix.engine._common import njit

#: int64 words per array in the table: address, rows, columns (1 for a 1-D array)
P_WORDS: Final = 3
P_ADDRESS: Final = 0
P_ROWS: Final = 1
P_COLUMNS: Final = 2

_I64: Final = np.dtype(np.int64)
_I32: Final = np.dtype(np.int32)
_U64: Final = np.dtype(np.uint64)
_U8: Final = np.dtype(np.uint8)
#: arrays in the table: the state, then the call's two buffers
N_SLOTS: Final = ty.N_STATE + 2


def _build_view(context: Any, builder: Any, item: Any, ndim: int, address: Any, dims: list[Any]) -> Any:
    """LLVM for a C-contiguous array of ``item`` at ``address`` (an int64) with ``dims``
    and no owner (no meminfo: the kernels run without reference counting)."""
    arrty = types.Array(item, ndim, "C")
    ary = make_array(arrty)(context, builder)
    data_type = context.get_data_type(item)
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(data_type))
    strides: list[Any] = []
    step = itemsize
    for d in reversed(dims):
        strides.insert(0, step)
        step = builder.mul(step, d)
    populate_array(
        ary,
        data=builder.inttoptr(address, data_type.as_pointer()),
        shape=cgutils.pack_array(builder, dims),
        strides=cgutils.pack_array(builder, strides),
        itemsize=itemsize,
        meminfo=None,
    )
    return ary._getvalue()


def _c_view(ndim: int) -> Any:
    """An intrinsic ``(address, shape, dtype) -> C-contiguous ndim-D array`` with no owner
    (``scripts/probe_state_passing.py`` builds views with it)."""

    @intrinsic
    def view(typingctx: Any, address: Any, shape: Any, dtype: Any) -> Any:
        item = dtype.dtype

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            dims = [args[1]] if ndim == 1 else cgutils.unpack_tuple(builder, args[1], ndim)
            return _build_view(context, builder, item, ndim, args[0], dims)

        return types.Array(item, ndim, "C")(address, shape, dtype), codegen

    return view


_view1 = _c_view(1)
_view2 = _c_view(2)


#: what each slot of the table must hold (dtype, dimensions), checked by :func:`pointer_table`
_SLOTS: Final = (
    (ty.S_CTR, _I64, 1),
    (ty.S_CFG, _I64, 1),
    (ty.S_ORDERS, ty.ORDER, 1),
    (ty.S_LEVELS, ty.LEVEL, 1),
    (ty.S_INSTS, ty.INSTRUMENT, 1),
    (ty.S_SIDES, ty.SIDE, 1),
    (ty.S_WORDS, ty.WORD, 1),
    (ty.S_LEVEL_TAB, _I32, 1),
    (ty.S_INDEX, _I32, 1),
    (ty.S_INST_TAB, _I64, 1),
    (ty.S_LAST_CL, _U64, 1),
    (ty.S_STP_MAP, _I64, 2),
    (ty.S_TOUCHED, _I64, 2),
    (ty.S_SCRATCH, _I32, 1),
    (ty.S_WIDE, _I64, 2),
    (ty.S_NARROW, _I64, 2),
    (ty.S_OUT, _U8, 1),
    (ty.S_IN, _U8, 1),
)
# the tuple holds the slots in table order, then P
assert [k for k, _, _ in _SLOTS] == list(range(N_SLOTS)) and ty.S_PTRS == N_SLOTS


@intrinsic
def _state(typingctx: Any, P: Any) -> Any:
    """The state tuple ``S`` (indexed by ``types.S_*``) rebuilt from the table ``P``: the
    views of every slot, then ``P`` itself. One intrinsic, so the tuple is built straight
    in LLVM at each kernel's entry: the same tuple assembled from per-array inlined Numba
    functions added seconds to the cold compile of every kernel that takes ``P``."""
    items = [(numba.from_dtype(dtype), ndim) for _, dtype, ndim in _SLOTS]
    tuple_type = types.Tuple([types.Array(item, ndim, "C") for item, ndim in items] + [P])

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        words = make_array(sig.args[0])(context, builder, args[0]).data

        def word(k: int) -> Any:
            return builder.load(builder.gep(words, [context.get_constant(types.intp, k)]))

        values = []
        for (k, _, ndim), (item, _) in zip(_SLOTS, items, strict=True):
            base = P_WORDS * k
            dims = [word(base + P_ROWS)] if ndim == 1 else [word(base + P_ROWS), word(base + P_COLUMNS)]
            values.append(_build_view(context, builder, item, ndim, word(base + P_ADDRESS), dims))
        values.append(args[0])
        return context.make_tuple(builder, tuple_type, values)

    return tuple_type(P), codegen


#: ``S = state(P)`` in a kernel; typed ``Any`` for mypy, which sees an intrinsic's
#: compile-time signature ``(typingctx, P)`` rather than the ``(P)`` kernels call it with
state: Any = _state


@njit(_nrt=False, inline="always")
def bind(P, slot, b):
    """Write the address and length of byte buffer ``b`` into table slot ``slot``
    (``S_OUT``/``S_IN``): each entry point binds the buffers of its call before any
    kernel it calls reads them."""
    P[P_WORDS * slot + P_ADDRESS] = b.ctypes.data
    P[P_WORDS * slot + P_ROWS] = b.shape[0]
    P[P_WORDS * slot + P_COLUMNS] = 1


def pointer_table(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The table ``P`` of the state arrays (in ``types.S_*`` order). Each must be
    C-contiguous with the dtype and dimensions :func:`state` reads it as: the kernels
    trust the table completely, so a mismatch is refused here. The two buffer slots stay
    empty until an entry point binds its call's buffers."""
    if len(arrays) != ty.N_STATE:
        raise ValueError(f"the state has {ty.N_STATE} arrays, got {len(arrays)}")
    table = np.zeros(P_WORDS * N_SLOTS, np.int64)
    for k, dtype, ndim in _SLOTS[: ty.N_STATE]:
        a = arrays[k]
        if a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous:
            raise ValueError(f"state array {k}: {a.dtype} {a.ndim}-D, want C-contiguous {dtype} {ndim}-D")
        table[P_WORDS * k + P_ADDRESS] = a.ctypes.data
        table[P_WORDS * k + P_ROWS] = a.shape[0]
        table[P_WORDS * k + P_COLUMNS] = a.shape[1] if ndim == 2 else 1
    return table
