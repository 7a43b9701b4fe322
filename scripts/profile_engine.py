"""Where a workload's time goes inside the compiled engine, per kernel function, with Linux perf.

    .venv/bin/python scripts/profile_engine.py [--workload mix] [--seconds 20] [--json F]

Numba's machine code has no symbols perf can see, so this compiles the engine into a fresh,
temporary Numba cache (a cold compile, a minute or two), writes perf's JIT map
(``/tmp/perf-<pid>.map``) from the compiled library's function addresses, keeps a copy of
each function's bytes, and samples itself with ``perf record`` while it replays the saved
quick stream of the workload (``bench-out/streams``, as ``qfix bench engine --quick``
writes it) in a loop. It prints, per kernel function that is not inlined, its share of all
samples and the share of its own samples that fell on ``push`` instructions, which is
where a call's arguments are copied onto the stack (docs/engine.md, "The state tuple").
Samples outside the engine (NumPy building a fresh Engine per replay, the kernel's page
clearing) are counted in the total but not listed. Needs ``perf`` and ``objdump``
(binutils) and a kernel that lets a process sample itself (perf_event_paranoid <= 2).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _short(name: str) -> str:
    """qfix.engine._orders._replace from an Itanium-mangled Numba function name."""
    m = re.match(r"(?:cfunc\.)?_ZN(?:7cpython)?((?:\d+[A-Za-z_]\w*?)+)B\d", name)
    if not m:
        return name[:60]
    rest, parts = m.group(1), []
    while rest:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        size = int(digits.group(0))
        rest = rest[len(digits.group(0)) :]
        parts.append(rest[:size])
        rest = rest[size:]
    return ".".join(parts)


def _functions(dispatcher: object) -> list[tuple[int, int, str]]:
    """(address, size, name) of every function compiled into the dispatcher's library."""
    found = []
    for cres in dispatcher.overloads.values():  # type: ignore[attr-defined]
        lib = cres.library
        for fn in lib._final_module.functions:
            if fn.is_declaration:
                continue
            addr = lib.get_pointer_to_function(fn.name)
            if addr:
                found.append((addr, _short(fn.name)))
    found.sort()
    # a function's size is taken as the distance to the next one (the last gets 64 KiB)
    return [(a, (found[k + 1][0] - a) if k + 1 < len(found) else 1 << 16, n) for k, (a, n) in enumerate(found)]


def _mapped_end(addr: int) -> int:
    """End of this process's memory mapping that holds ``addr`` (0 if none)."""
    for line in Path("/proc/self/maps").read_text(encoding="utf-8").splitlines():
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if lo <= addr < hi:
            return hi
    return 0


def _pushes(code: bytes, base: int) -> set[int]:
    """Addresses of the push instructions in ``code`` placed at ``base``."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(code)
        f.flush()
        text = subprocess.run(
            ["objdump", "-D", "-b", "binary", "-mi386:x86-64", f"--adjust-vma={base:#x}", f.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    found = set()
    for line in text.splitlines():
        head, _, ins = line.partition(":")
        if "\tpush" in ins and head.strip():
            found.add(int(head.strip(), 16))
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workload", default="mix", choices=["mix", "insert", "multi"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="qfix-profile-numba-")
    from qfix.bench import engine as bench  # after NUMBA_CACHE_DIR, so nothing comes from a cache
    from qfix.engine import _kernels

    records, prefill, _, digest = bench._stream(args.workload, True, Path("bench-out/streams"))
    insts = bench._instruments(args.workload)
    print("compiling (cold) ...", file=sys.stderr)
    bench._replay(records, prefill, insts, 1024)
    funcs = _functions(_kernels.process)
    pid = os.getpid()
    Path(f"/tmp/perf-{pid}.map").write_text("".join(f"{a:x} {s:x} {n}\n" for a, s, n in funcs), encoding="utf-8")
    pushes: set[int] = set()
    for a, s, _ in funcs:
        size = min(s, _mapped_end(a) - a)
        if size > 0:
            pushes |= _pushes(ctypes.string_at(a, size), a)
    data = Path(tempfile.mkdtemp(prefix="qfix-profile-")) / "perf.data"
    rec = subprocess.Popen(
        ["perf", "record", "-q", "-F", "4000", "-p", str(pid), "-o", str(data), "--", "sleep", str(args.seconds)],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    replays = 0
    while rec.poll() is None:
        bench._replay(records, prefill, insts, 1024)
        replays += 1
    text = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "ip,sym"], capture_output=True, text=True, check=True
    ).stdout
    per_fn: collections.Counter[str] = collections.Counter()
    push_fn: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        total += 1
        ip, sym = int(parts[0], 16), parts[1]
        if sym.startswith("qfix."):
            per_fn[sym] += 1
            if ip in pushes:
                push_fn[sym] += 1
    engine_total = sum(per_fn.values())
    rows = [
        {
            "function": name,
            "share_of_samples": n / total,
            "push_share_of_function": push_fn[name] / n,
        }
        for name, n in per_fn.most_common()
    ]
    doc = {
        "workload": args.workload,
        "stream_digest": digest,
        "seconds": args.seconds,
        "replays": replays,
        "samples": total,
        "engine_share": engine_total / max(total, 1),
        "push_share_of_engine": sum(push_fn.values()) / max(engine_total, 1),
        "functions": rows,
    }
    print(f"{total} samples, {replays} replays; engine functions {100 * doc['engine_share']:.1f}% of them,")
    print(f"pushes (call arguments) {100 * doc['push_share_of_engine']:.1f}% of the engine's samples")
    for r in rows:
        share, push = 100 * r["share_of_samples"], 100 * r["push_share_of_function"]
        print(f"  {r['function']:45s} {share:5.1f}%  pushes {push:4.0f}% of it")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
