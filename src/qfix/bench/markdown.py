"""``qfix bench markdown FILE.json ...``: render benchmark documents as Markdown tables.

docs/benchmarks.md is assembled from this output, so every figure there is traceable to
a JSON document written by a ``qfix bench`` run rather than copied by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from qfix.bench._common import fmt


def render(doc: dict[str, Any]) -> str:
    """One document as a heading line, its provenance, and a table of results."""
    machine = doc.get("machine", {})
    lines = [
        f"`{doc.get('command', '?')}`" + (" (quick)" if doc.get("quick") else ""),
        "",
        f"Run {doc.get('started', '?')} on {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gib', '?')} GiB, Python {machine.get('python', '?')}, "
        f"numpy {machine.get('numpy', '?')}, numba {machine.get('numba', '?')}, GPU {machine.get('gpu') or 'none'}.",
        "",
        "| result | median | unit | min | max | repeats |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in doc.get("results", []):
        lines.append(
            f"| `{r['name']}` | {fmt(r['value'])} | {r['unit']} | {fmt(r['min'])} | {fmt(r['max'])} | {r['repeats']} |"
        )
    return "\n".join(lines) + "\n"


@click.command("markdown")
@click.argument("documents", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def command(documents: tuple[str, ...]) -> None:
    """Print each JSON document written by `qfix bench ... --json` as a Markdown table."""
    for path in documents:
        click.echo(render(json.loads(Path(path).read_text(encoding="utf-8"))))
