"""Where the engine's cold compile goes: the Numba compile of every kernel function, as a tree.

Starts one fresh interpreter with an empty Numba cache of its own (a temporary
directory), builds the default Engine and calls ``process`` once (the code of ``qfix
bench engine``'s ``warmup_cold_s``), while a listener on Numba's ``numba:compile`` events
records each function compiled, what compiled it, and its seconds: inclusive, and
exclusive of the functions compiled inside it. Functions inlined with
``inline="always"`` do not appear: their cost is in their callers' exclusive seconds. A
function compiled twice (two argument types) appears twice. One cold start varies by
about 10% on the 2-core machine; compare two revisions with ``scripts/engine_ab.py
--compile-rounds``.

``--server`` times the server's whole warm-up instead (``qfix.server.server._warm_kernels``
on the default setup that ``qfix server`` creates, here in a temporary directory): every
kernel a server compiles before it takes its first order, the engine's commands and
auctions and the session layer's passes included. Usage:

    .venv/bin/python scripts/probe_compile.py [--server] [--min-s 0.3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs in the child: the compile tree as JSON on the last line of stdout.
_CHILD = """
import json, time
import numpy as np
from numba.core import event

class Tree(event.Listener):
    def __init__(self):
        self.stack, self.roots = [], []
    def on_start(self, ev):
        d = ev.data.get("dispatcher")
        node = {"name": d.py_func.__qualname__ if d is not None else "?", "t0": time.perf_counter(), "children": []}
        (self.stack[-1]["children"] if self.stack else self.roots).append(node)
        self.stack.append(node)
    def on_end(self, ev):
        node = self.stack.pop()
        node["s"] = time.perf_counter() - node.pop("t0")

tree = Tree()
event.register("numba:compile", tree)
SERVER = __SERVER__
t0 = time.perf_counter()
if SERVER:
    import tempfile
    from pathlib import Path
    from qfix.server import defaults, server
    from qfix.server.config import load_config
    with tempfile.TemporaryDirectory() as setup:
        config = load_config(defaults.ensure_default_setup(Path(setup) / "qfix"))
        t0 = time.perf_counter()
        server._warm_kernels(config)
else:
    from qfix.engine import Engine, EngineConfig, InstrumentConfig
    from qfix.wire.schema import INBOUND, OUTPUT
    e = Engine([InstrumentConfig(1, "W", 1, ref=1000, band_width=10)], EngineConfig())
    e.process(np.zeros(0, INBOUND), np.zeros(16, OUTPUT))
print(json.dumps({"seconds": time.perf_counter() - t0, "server": SERVER, "tree": tree.roots}))
"""


def _exclusive(node: dict) -> float:
    return float(node["s"] - sum(c["s"] for c in node["children"]))


def _print(node: dict, depth: int, min_s: float) -> None:
    if node["s"] >= min_s:
        print(f"{'  ' * depth}{node['name']:<{40 - 2 * depth}} {node['s']:7.2f} s  exclusive {_exclusive(node):6.2f} s")
    for child in node["children"]:
        _print(child, depth + 1, min_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-s", type=float, default=0.3, help="print functions of at least this many seconds")
    ap.add_argument("--server", action="store_true", help="the server's whole warm-up, not only the engine")
    ap.add_argument("--json", type=Path, help="write the tree here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = _CHILD.replace("__SERVER__", str(args.server))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    what = "the server's warm-up" if args.server else "Engine() and the first process()"
    print(f"{what}: {result['seconds']:.1f} s")
    for root in result["tree"]:
        _print(root, 0, args.min_s)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
