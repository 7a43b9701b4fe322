"""What passing the engine state costs a kernel call: sixteen arrays as a tuple, or one
table of their addresses that the callee turns back into views (``qfix.engine._state``).

    .venv/bin/python scripts/probe_state_passing.py [--calls 5000000] [--repeats 5] [--json F]

Two figures, each for both ways, medians over the repeats, measured in one process:

* ``call_ns``: one non-inlined Numba call from a jitted loop; the callee (53 lines of a
  branch, a load and a store, too long for LLVM to inline) touches four of the arrays;
* ``dispatch_us``: one call from Python into a jitted function that reads one array,
  which is what every ``Engine.process`` call pays on top of its work.

The arrays have the dtypes and ranks of the real state (``types.ORDER`` records, int64,
int32, two-row int64), 65,536 rows each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from qfix.engine import types as ty
from qfix.engine._common import njit
from qfix.engine._state import _view1, _view2

ROWS = 1 << 16
MASK = ROWS - 1
_I64 = np.dtype(np.int64)


def _arrays() -> tuple[np.ndarray, ...]:
    one = [np.zeros(ROWS, ty.ORDER)] + [np.zeros(ROWS, np.int64) for _ in range(11)]
    return tuple(one + [np.zeros((2, ROWS), np.int64) for _ in range(4)])


# The callee's body: straight-line code with a branch, a load and a store per line, like a
# handler's, and long enough that LLVM keeps the call (a short callee is inlined by LLVM
# and then passes nothing). Written out once as text and compiled twice, so both callees
# run the very same code; only how the arrays arrive differs.
_BODY = "".join(
    f"    if i % {k} == 3:\n        a[(i * {k}) & MASK] += b[(i + {k}) & MASK] * {k}\n" for k in range(7, 60)
)
_CALLEES = f"""
def _with_tuple(S, i):
    orders, a, b, c = S[0], S[5], S[3], S[14]
    orders[i].cum += 1
    c[1, i] += 1
{_BODY}    return orders[i].order_id


def _with_table(P, i):
    orders = _view1(P[0], ROWS, ORDER)
    a = _view1(P[15], ROWS, I64)
    b = _view1(P[9], ROWS, I64)
    c = _view2(P[42], (2, ROWS), I64)
    orders[i].cum += 1
    c[1, i] += 1
{_BODY}    return orders[i].order_id
"""
_space = {"MASK": MASK, "ROWS": ROWS, "ORDER": ty.ORDER, "I64": _I64, "_view1": _view1, "_view2": _view2}
exec(compile(_CALLEES, "<probe callees>", "exec"), _space)
_with_tuple = njit(_nrt=False)(_space["_with_tuple"])
_with_table = njit(_nrt=False)(_space["_with_table"])


def _timing_loop(callee: object) -> object:
    """A jitted loop calling ``callee(state, i)`` n times; one per way of passing."""

    @njit(_nrt=False)
    def loop(state, n):  # type: ignore[no-untyped-def]
        t = 0
        for i in range(n):
            t += callee(state, i & MASK)  # type: ignore[operator]
        return t

    return loop


_loop_tuple: Any = _timing_loop(_with_tuple)
_loop_table: Any = _timing_loop(_with_table)


@njit(_nrt=False)
def _entry_tuple(S, x):
    return S[0].shape[0] + x[0]


@njit(_nrt=False)
def _entry_table(P, x):
    return P[1] + x[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    S = _arrays()
    P = np.zeros(3 * len(S), np.int64)
    for k, a in enumerate(S):
        P[3 * k], P[3 * k + 1], P[3 * k + 2] = a.ctypes.data, a.shape[0], a.shape[1] if a.ndim == 2 else 1
    x = np.zeros(1, np.int64)
    if _loop_tuple(S, 1000) != _loop_table(P, 1000):
        raise SystemExit("the two ways read different values")
    _entry_tuple(S, x)
    _entry_table(P, x)
    call: dict[str, list[float]] = {"tuple": [], "table": []}
    dispatch: dict[str, list[float]] = {"tuple": [], "table": []}
    n, d = args.calls, 100_000
    for _ in range(args.repeats):
        t0 = time.perf_counter_ns()
        _loop_tuple(S, n)
        t1 = time.perf_counter_ns()
        _loop_table(P, n)
        t2 = time.perf_counter_ns()
        call["tuple"].append((t1 - t0) / n)
        call["table"].append((t2 - t1) / n)
        t0 = time.perf_counter_ns()
        for _ in range(d):
            _entry_tuple(S, x)
        t1 = time.perf_counter_ns()
        for _ in range(d):
            _entry_table(P, x)
        t2 = time.perf_counter_ns()
        dispatch["tuple"].append((t1 - t0) / d / 1e3)
        dispatch["table"].append((t2 - t1) / d / 1e3)
    doc = {
        "probe": "state_passing",
        "command": "scripts/probe_state_passing.py",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "calls": n,
        "repeats": args.repeats,
        "call_ns": {k: statistics.median(v) for k, v in call.items()},
        "dispatch_us": {k: statistics.median(v) for k, v in dispatch.items()},
        "samples": {"call_ns": call, "dispatch_us": dispatch},
    }
    doc["call_table_over_tuple"] = doc["call_ns"]["table"] / doc["call_ns"]["tuple"]
    doc["dispatch_table_over_tuple"] = doc["dispatch_us"]["table"] / doc["dispatch_us"]["tuple"]
    text = json.dumps(doc, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(
        f"call {doc['call_ns']['tuple']:.1f} ns with the tuple, {doc['call_ns']['table']:.1f} ns with the table; "
        f"dispatch {doc['dispatch_us']['tuple']:.2f} us / {doc['dispatch_us']['table']:.2f} us"
    )


if __name__ == "__main__":
    main()
