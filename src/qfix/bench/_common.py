"""Shared benchmark plumbing (BENCHMARKS.md): timing, results, the JSON document, tables.

Every figure is the median of several timed repeats after a warm-up, with min and max
kept; ratios are computed from medians measured in the same run. Nothing here knows a
particular benchmark.

A command checks its output paths before it measures anything (:func:`check_outputs`),
so a typo in ``--json`` costs nothing, and shows a :class:`Progress` display on stderr
that is redrawn only between timed runs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _RichProgress
from rich.table import Table

from qfix.errors import OutputPathError


@dataclass(frozen=True)
class Result:
    """One named figure: median of ``repeats`` samples, with their min and max."""

    name: str
    value: float
    unit: str
    min: float
    max: float
    repeats: int
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "min": self.min,
            "max": self.max,
            "repeats": self.repeats,
        }
        if self.note:
            doc["note"] = self.note
        return doc


def from_samples(name: str, samples: Iterable[float], unit: str, note: str = "") -> Result:
    """A Result whose value is the median of ``samples``."""
    values = list(samples)
    if not values:
        raise ValueError(f"{name}: no samples")
    return Result(name, statistics.median(values), unit, min(values), max(values), len(values), note)


def single(name: str, value: float, unit: str, note: str = "") -> Result:
    """A Result measured once (or already aggregated), e.g. a ratio of medians."""
    return Result(name, value, unit, value, value, 1, note)


def ratio(name: str, numerator: Result, denominator: Result, note: str = "") -> Result:
    """numerator/denominator of two medians from the same run; min/max bracket the spread."""
    if denominator.value == 0:
        raise ZeroDivisionError(f"{name}: denominator {denominator.name} is 0")
    lo = numerator.min / denominator.max if denominator.max else 0.0
    hi = numerator.max / denominator.min if denominator.min else float("inf")
    value = numerator.value / denominator.value
    repeats = min(numerator.repeats, denominator.repeats)
    return Result(name, value, "ratio", lo, hi, repeats, note)


def time_repeats(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e9)
    return samples


def rate_samples(
    fn: Callable[[], object], items_per_call: int, repeats: int, warmup: int = 1, min_seconds: float = 0.0
) -> list[float]:
    """Items per second of each repeat; calls ``fn`` enough times that a repeat lasts
    at least ``min_seconds`` (so timer resolution does not dominate tiny batches)."""
    for _ in range(warmup):
        fn()
    inner = 1
    if min_seconds > 0:
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-9)
        inner = max(1, int(min_seconds / once))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        elapsed = (time.perf_counter_ns() - start) / 1e9
        rates.append(items_per_call * inner / elapsed)
    return rates


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine_info(gpu: str | None = None) -> dict[str, Any]:
    """The ``machine`` object of the JSON document."""
    return {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "qfix": _version("qfix"),
        "gpu": gpu,
    }


@dataclass
class Report:
    """A benchmark run: collects Results, then prints a table and writes the document."""

    benchmark: str
    quick: bool
    command: str = field(default_factory=lambda: " ".join(["qfix", *sys.argv[1:]]))
    started: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    results: list[Result] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    gpu: str | None = None
    #: raw series for --plot; never written to the JSON document
    plot_data: dict[str, Any] = field(default_factory=dict)

    def add(self, result: Result) -> Result:
        self.results.append(result)
        return result

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "benchmark": self.benchmark,
            "command": self.command,
            "quick": self.quick,
            "started": self.started,
            "machine": machine_info(self.gpu),
            "results": [r.to_json() for r in self.results],
        }
        doc.update(self.extra)
        return doc

    def write_json(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.document(), indent=2) + "\n", encoding="utf-8")

    def table(self) -> Table:
        table = Table(title=f"qfix bench {self.benchmark}" + (" (quick)" if self.quick else ""))
        with_notes = any(r.note for r in self.results)
        columns = [
            ("result", "left"),
            ("median", "right"),
            ("unit", "left"),
            ("min", "right"),
            ("max", "right"),
            ("n", "right"),
        ] + ([("note", "left")] if with_notes else [])
        for column, justify in columns:
            table.add_column(column, justify=justify, overflow="fold", no_wrap=column == "result")  # type: ignore[arg-type]
        for r in self.results:
            cells = [r.name, fmt(r.value), r.unit, fmt(r.min), fmt(r.max), str(r.repeats)]
            table.add_row(*cells, *([r.note] if with_notes else []))
        return table

    def print(self, console: Console | None = None) -> None:
        if console is None:
            console = Console()
            if not console.is_terminal:
                console = Console(width=160)  # logs and pipes: no reason to fold the table
        console.print(self.table())


def fmt(value: float) -> str:
    """Human-readable number: engineering-style grouping, 3-4 significant digits."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:.3f}G"
    if magnitude >= 1e6:
        return f"{value / 1e6:.3f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.1f}k"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.4g}"


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (benchmarks never open windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    """Write a figure as PNG (creating the folder) and release it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def check_output_path(path: str | os.PathLike[str], option: str) -> Path:
    """Fail now, before any benchmark work, if a file cannot be written at ``path``.

    Creates the missing folders (as writing would), refuses a folder as the target, and
    proves the folder writable by creating and removing a temporary file in it (an
    existing target is opened for writing, not truncated). Raises OutputPathError
    naming ``option``.
    """
    target = Path(path)
    where = f"{option} {target}"
    if target.is_dir():
        raise OutputPathError(f"{where}: is a folder; give a file name")
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{where}: cannot create the folder {folder}: {exc.strerror or exc}") from None
    try:
        if target.exists():
            with open(target, "r+b"):
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", suffix=".probe"):
                pass
    except OSError as exc:
        raise OutputPathError(f"{where}: cannot write there: {exc.strerror or exc}") from None
    return target


def check_outputs(json_path: str | None, plot_path: str | None) -> None:
    """:func:`check_output_path` for the ``--json`` and ``--plot`` files that were given."""
    for path, option in ((json_path, "--json"), (plot_path, "--plot")):
        if path:
            check_output_path(path, option)


_F = TypeVar("_F", bound=Callable[..., Any])


def output_options(fn: _F) -> _F:
    """``--json``, ``--plot`` and ``--quiet``, the options every measuring command has."""
    fn = click.option("--quiet", "-q", is_flag=True, help="No progress display on stderr.")(fn)
    fn = click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG plot here.")(fn)
    return click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the JSON document here.")(
        fn
    )


def _progress_console() -> Console:
    """Where progress goes: stderr (a function, so that tests can substitute a console)."""
    return Console(stderr=True)


class Progress:
    """What a benchmark is doing and how far it is, shown on stderr.

    A driver calls :meth:`step` before each unit of work (a timed run, a warm-up, a
    proof run): the previous unit counts as done and ``description`` is shown as
    running. The display has no refresh thread: it is redrawn only inside
    :meth:`step`, which drivers call between timed regions, never inside one, so it
    cannot disturb what is measured. It is off (every call does nothing) when stderr
    is not a terminal or ``quiet`` is set.
    """

    def __init__(self, total: int, *, quiet: bool = False, console: Console | None = None) -> None:
        self.total = total
        self.steps = 0
        console = console if console is not None else _progress_console()
        self._bar: _RichProgress | None = None
        if not quiet and console.is_terminal:
            self._bar = _RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task("starting", total=total)

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def step(self, description: str) -> None:
        """The previous step is done; ``description`` runs next (call outside timed code)."""
        self.steps += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.steps - 1, description=description)
            self._bar.refresh()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            if kind is None:
                self._bar.update(self._task, completed=self.steps, description="done")
            self._bar.refresh()
            self._bar.stop()


def finish(
    report: Report,
    json_path: str | None,
    plot_path: str | None,
    plot: Callable[[Report, str], None] | None = None,
) -> None:
    """What every ``qfix bench`` command does with its report: table, document, plot.

    The paths were checked before the run (:func:`check_outputs`); the document is
    written before the plot so that a plotting failure cannot lose the figures.
    """
    report.print()
    if json_path:
        report.write_json(json_path)
    if plot_path and plot is not None:
        plot(report, plot_path)
