"""The one cache-line prefetch the kernels use: LLVM's ``llvm.prefetch``, as a Numba intrinsic.

Its own module so that both the batch lookahead (``_prefetch``) and the index doubling
(``_index._index_grow``) can use it: ``_prefetch`` imports the index helpers, so the
index module cannot import it.
"""

# numba's code-generation helpers (cgutils) are untyped.
# mypy: allow-untyped-calls

from __future__ import annotations

from typing import Any, Final

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# llvm.prefetch(ptr, rw, locality, cache type)
_READ: Final = 0
_LOCALITY_HIGH: Final = 3  #: keep in every cache level (prefetcht0)
_DATA_CACHE: Final = 1
_LINE: Final = 64


def _prefetch_intrinsic(typingctx: Any, arr: Any, index: Any, offset: Any) -> Any:
    """Ask for the cache line holding byte ``offset`` of element ``index`` of ``arr``
    (no bounds check: the address is only a hint and never dereferenced)."""
    sig = types.void(arr, types.intp, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        item = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        byte = ir.IntType(8)
        at = builder.gep(builder.bitcast(item, byte.as_pointer()), [args[2]])
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [at.type, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [at, i32(_READ), i32(_LOCALITY_HIGH), i32(_DATA_CACHE)])
        return context.get_dummy_value()

    return sig, codegen


#: ``_prefetch(arr, index, offset)`` in kernels (typed Any: mypy would see the typing hook)
_prefetch: Any = intrinsic(_prefetch_intrinsic)
