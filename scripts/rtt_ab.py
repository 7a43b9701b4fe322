"""The one-order round trip of two revisions (scripts/probe_rtt.py), in alternating rounds.

    .venv/bin/python scripts/rtt_ab.py BEFORE AFTER [--rounds 4] [--orders 3000] [--json F]

BEFORE and AFTER are git revisions, or ``WORKTREE`` for this checkout as it is. Each gets
a temporary copy of the revision's whole ``src/`` and a Numba cache keyed by its sources
(``qfix.numba_cache.source_key``, shared with the tests), warmed by one short untimed run.
Then every round runs this checkout's ``scripts/probe_rtt.py`` once per revision, in turn,
and the medians over the rounds are compared: the order round trip p50, the server's busy
time (wall) and CPU time per one-order batch p50 and the ping-pong p50 of each run. Alternating rounds, because
the 2-core machine drifts by more between minutes than the changes being looked for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from qfix import numba_cache  # noqa: E402 - the checkout's own package, whatever is installed

WORKTREE = "WORKTREE"
_FIGURES = ("order_rtt_p50_us", "server_busy_p50_us", "server_cpu_p50_us", "pingpong_p50_us", "order_rtt_p99_us")


def _tree(rev: str, into: Path) -> tuple[Path, str]:
    """(src folder, Numba cache key) of ``rev``."""
    into.mkdir(parents=True)
    if rev == WORKTREE:
        shutil.copytree(ROOT / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    src = into / "src"
    return src, numba_cache.source_key(src / "qfix")


def _probe(src: Path, key: str, orders: int, out: Path) -> dict[str, Any]:
    env = {"PYTHONPATH": str(src), "NUMBA_CACHE_DIR": str(ROOT / ".numba_cache" / key), "PATH": "/usr/bin:/bin"}
    cmd = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "scripts" / "probe_rtt.py")]
    subprocess.run([*cmd, "--orders", str(orders), "--json", str(out)], env=env, capture_output=True, check=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    names = ("before", "after")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="qfix-rtt-ab-") as tmp:
        trees = {name: _tree(rev, Path(tmp) / name) for name, rev in zip(names, (args.before, args.after), strict=True)}
        for name in names:
            print(f"{name}: compiling and warming ...", file=sys.stderr)
            _probe(*trees[name], 200, Path(tmp) / "warm.json")
        for r in range(args.rounds):
            for name in names:
                res = _probe(*trees[name], args.orders, Path(tmp) / f"{name}-{r}.json")
                runs[name].append(res)
                print(
                    f"round {r + 1} {name:6s} order p50 {res['order_rtt_p50_us']:.0f} us, server busy "
                    f"{res['server_busy_p50_us']:.0f} us (CPU {res['server_cpu_p50_us']:.0f}), "
                    f"ping-pong {res['pingpong_p50_us']:.0f} us",
                    file=sys.stderr,
                )
    medians = {name: {f: statistics.median(run[f] for run in runs[name]) for f in _FIGURES} for name in names}
    doc = {
        "probe": "rtt_ab",
        "command": f"scripts/rtt_ab.py {args.before} {args.after} --rounds {args.rounds} --orders {args.orders}",
        "before": args.before,
        "after": args.after,
        "medians": medians,
        "after_over_before": {f: medians["after"][f] / medians["before"][f] for f in _FIGURES},
        "runs": runs,
    }
    print(json.dumps({k: doc[k] for k in ("medians", "after_over_before")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
