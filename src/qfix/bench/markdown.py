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
from qfix.errors import DocumentError


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


def render_comparison(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Two documents of the same benchmark side by side: each result both documents hold,
    its two medians and their ratio (after / before), with both runs' provenance."""
    lines = []
    for label, doc in (("before", before), ("after", after)):
        machine = doc.get("machine", {})
        lines.append(
            f"- {label}: `{doc.get('command', '?')}`, run {doc.get('started', '?')} on {machine.get('cpu', '?')}, "
            f"{machine.get('cores', '?')} cores"
        )
    lines += ["", "| result | before | after | after / before | unit |", "|---|---:|---:|---:|---|"]
    old = {r["name"]: r for r in before.get("results", [])}
    for r in after.get("results", []):
        b = old.get(r["name"])
        if b is None:
            continue
        ratio = fmt(r["value"] / b["value"]) if b["value"] else "-"
        lines.append(f"| `{r['name']}` | {fmt(b['value'])} | {fmt(r['value'])} | {ratio} | {r['unit']} |")
    return "\n".join(lines) + "\n"


_RESULT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "value": (int, float),
    "unit": str,
    "min": (int, float),
    "max": (int, float),
    "repeats": int,
}


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a ``qfix bench ... --json`` document, refusing anything else with a DocumentError.

    Checks what :func:`render` relies on: a JSON object whose ``results`` is a list of
    objects with the fields of a result (name, value, unit, min, max, repeats) and
    whose ``machine``, if present, is an object.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{where}: not a benchmark document (not UTF-8 text)") from None
    except OSError as exc:
        raise DocumentError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"{where}: not a benchmark document (not JSON: {exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(doc, dict):
        raise DocumentError(f"{where}: not a benchmark document (a JSON {type(doc).__name__}, not an object)")
    results = doc.get("results")
    if not isinstance(results, list):
        raise DocumentError(f'{where}: not a benchmark document (no "results" list)')
    if not isinstance(doc.get("machine", {}), dict):
        raise DocumentError(f'{where}: "machine" is not an object')
    for i, result in enumerate(results):
        if not isinstance(result, dict):
            raise DocumentError(f"{where}: results[{i}] is not an object")
        for field, kind in _RESULT_FIELDS.items():
            value = result.get(field)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise DocumentError(f"{where}: results[{i}] has no valid {field!r}")
    return doc


@click.command("markdown")
@click.argument("documents", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--compare",
    is_flag=True,
    help="Exactly two documents (before, after): one table of both medians and their ratio.",
)
def command(documents: tuple[str, ...], compare: bool) -> None:
    """Print each JSON document written by `qfix bench ... --json` as a Markdown table.

    Every file is checked before anything is printed.
    """
    if compare and len(documents) != 2:
        raise click.UsageError("--compare takes exactly two documents: before and after")
    docs = [load_document(path) for path in documents]
    if compare:
        click.echo(render_comparison(docs[0], docs[1]))
        return
    for doc in docs:
        click.echo(render(doc))
