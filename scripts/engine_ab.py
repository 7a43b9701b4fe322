"""Two engine revisions on one workload stream, in alternating rounds, for small speed changes.

    .venv/bin/python scripts/engine_ab.py BEFORE AFTER [--workload mix] [--rounds 4]
        [--compile-rounds 0] [--json F]

BEFORE and AFTER are git revisions, or ``WORKTREE`` for this checkout as it is. Each gets
a temporary copy of this tree's src/ with the revision's src/qfix/engine over it and a
Numba cache keyed by its sources (`qfix.numba_cache.source_key`, the key of scripts/test.sh), compiled once
before the first round. Then every round runs one fresh interpreter per revision, in turn,
that replays the saved quick stream of the workload (``bench-out/streams``, as ``qfix bench
engine --quick`` writes it) through ``process()`` once untimed and five times timed, and
reports the median. Two figures per run: messages per second of time inside ``process``
(the benchmark's own figure), and the CPU seconds of the whole replay thread
(``time.thread_time``: an Engine built from scratch, the prefill, the timed part). The
second excludes time the virtual machine's core was taken away, which made wall-clock
rates of two revisions minutes apart differ by up to 15% on the 2-core machine; the
ratio AFTER / BEFORE of the per-round medians is printed for both.

``--compile-rounds N`` first times N cold starts of each revision, alternating: a fresh
interpreter with an empty Numba cache of its own, up to the first ``process`` return (the
code of ``qfix bench engine``'s ``warmup_cold_s``), because one cold start of either takes
a minute and drifts with the machine as much as the difference being looked for.
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

from qfix import numba_cache
from qfix.bench.engine import WARMUP_CODE

ROOT = Path(__file__).resolve().parent.parent
WORKTREE = "WORKTREE"

_ROUND = """
import json, statistics, time
from pathlib import Path
from qfix.bench import engine as be
recs, pre, _, digest = be._stream({workload!r}, True, Path({streams!r}))
insts = be._instruments({workload!r})
be._replay(recs, pre, insts, 1024)
rates, cpu = [], []
for _ in range(5):
    c0 = time.thread_time()
    seconds, _state = be._replay(recs, pre, insts, 1024)
    cpu.append(time.thread_time() - c0)
    rates.append((len(recs) - pre) / seconds)
print(json.dumps({{"ops_per_s": statistics.median(rates), "replay_cpu_s": statistics.median(cpu), "digest": digest}}))
"""


def _tree(rev: str, into: Path) -> tuple[Path, str]:
    """(src folder, Numba cache key) of ``rev``'s engine over this checkout's src/."""
    src = into / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    if rev != WORKTREE:
        shutil.rmtree(src / "qfix" / "engine")
        archive = subprocess.run(["git", "archive", rev, "src/qfix/engine"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return src, numba_cache.source_key(src / "qfix")


def _run(src: Path, key: str, workload: str) -> dict[str, float]:
    env = {
        "PYTHONPATH": str(src),
        "NUMBA_CACHE_DIR": str(ROOT / ".numba_cache" / key),
        "PATH": "/usr/bin:/bin",
    }
    code = _ROUND.format(workload=workload, streams=str(ROOT / "bench-out" / "streams"))
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _cold(src: Path, cache: Path) -> float:
    """Seconds of one cold start of the engine in ``src``, compiling into empty ``cache``."""
    env = {"PYTHONPATH": str(src), "NUMBA_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", WARMUP_CODE], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--workload", default="mix", choices=["mix", "insert", "multi"])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--compile-rounds", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qfix-ab-") as tmp:
        trees = {}
        for name, rev in (("before", args.before), ("after", args.after)):
            trees[name] = _tree(rev, Path(tmp) / name)
        cold: dict[str, list[float]] = {"before": [], "after": []}
        for r in range(args.compile_rounds):
            for name in ("before", "after"):
                seconds = _cold(trees[name][0], Path(tmp) / f"cold-{name}-{r}")
                cold[name].append(seconds)
                print(f"cold start {r + 1} {name:6s} {seconds:.1f} s", file=sys.stderr)
        for name, rev in (("before", args.before), ("after", args.after)):
            print(f"{name}: {rev}, compiling ...", file=sys.stderr)
            _run(*trees[name], args.workload)
        runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for r in range(args.rounds):
            for name in ("before", "after"):
                res = _run(*trees[name], args.workload)
                runs[name].append(res)
                rate, cpu = res["ops_per_s"] / 1e6, res["replay_cpu_s"]
                print(f"round {r + 1} {name:6s} {rate:6.3f}M ops/s, replay cpu {cpu:.4f} s", file=sys.stderr)

    def med(name: str, field: str) -> float:
        return statistics.median(x[field] for x in runs[name])

    doc = {
        "command": "scripts/engine_ab.py " + " ".join(sys.argv[1:]),
        "workload": args.workload,
        "before": args.before,
        "after": args.after,
        "rounds": args.rounds,
        "runs": runs,
        "cold_start_s": cold,
        "ops_per_s_after_over_before": med("after", "ops_per_s") / med("before", "ops_per_s"),
        "replay_cpu_before_over_after": med("before", "replay_cpu_s") / med("after", "replay_cpu_s"),
    }
    print(
        f"{args.workload}: after/before ops/s {doc['ops_per_s_after_over_before']:.3f}, "
        f"replay cpu before/after {doc['replay_cpu_before_over_after']:.3f} (both > 1: after is faster)"
    )
    if args.compile_rounds:
        doc["cold_start_after_over_before"] = statistics.median(cold["after"]) / statistics.median(cold["before"])
        print(
            f"cold start after/before {doc['cold_start_after_over_before']:.3f} (medians; < 1: after compiles faster)"
        )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
