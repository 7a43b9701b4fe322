"""The ``qfix`` command line: thin adapters over the library packages.

Subcommands are registered lazily by dotted path so that ``qfix --help`` stays fast
(numba and cryptography load only for the command that needs them) and so that each
package owns its own command module.

Errors: commands let a :class:`qfix.errors.QfixError` (or an ``OSError`` from a path
the user gave) propagate; :class:`QfixGroup`, the ``qfix`` group itself, is the one
place that turns it into ``Error: <one line>`` on stderr and exit status 1, without a
traceback. click's own usage errors keep their behaviour (exit status 2); anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
from typing import Any

import click

from qfix import numba_cache
from qfix.errors import QfixError

# before any subcommand imports numba: a cache keyed by the engine's sources (qfix.numba_cache)
numba_cache.configure()

#: top-level subcommands: name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "admin": "qfix.client.admin_cli:admin",
    "client": "qfix.client.cli:client",
    "demo": "qfix.demo:demo",
    "journal": "qfix.journal.cli:journal",
    "keygen": "qfix.crypto.cli:keygen",
    "md": "qfix.marketdata.cli:md",
    "server": "qfix.server.cli:server",
}

#: ``qfix bench NAME``: name -> "module:attribute"
BENCHMARKS: dict[str, str] = {
    "wire": "qfix.bench.wire:command",
    "engine": "qfix.bench.engine:command",
    "qzmq": "qfix.bench.qzmq:command",
    "net": "qfix.bench.net:command",
    "journal": "qfix.bench.journal:command",
    "paths": "qfix.bench.paths:command",
    "auction": "qfix.bench.auction:command",
    "markdown": "qfix.bench.markdown:command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def _available(self) -> list[str]:
        names = []
        for name, target in self._lazy.items():
            module = target.split(":", 1)[0]
            try:
                if importlib.util.find_spec(module) is not None:
                    names.append(name)
            except ModuleNotFoundError:
                continue
        return names

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and cmd_name in self._available():
            module_name, attr = self._lazy[cmd_name].split(":", 1)
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


def one_line(text: str) -> str:
    """``text`` with its lines joined by single spaces (an error message is one line)."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def describe_os_error(exc: OSError) -> str:
    """``PATH: reason`` for an OSError about a path, its own text otherwise."""
    if exc.filename is None:
        return str(exc)
    names = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    return f"{names}: {exc.strerror or exc}"


class QfixGroup(LazyGroup):
    """The ``qfix`` group: the one place where an expected failure becomes a message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QfixError as exc:
            raise click.ClickException(one_line(str(exc)) or type(exc).__name__) from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # click silences a closed stdout pipe itself
            raise click.ClickException(one_line(describe_os_error(exc))) from exc


@click.group(cls=QfixGroup, lazy=COMMANDS)
@click.version_option(package_name="qfix")
def main() -> None:
    """qfix: post-quantum-secure order matching over binary FIX and ZeroMQ."""


@main.group(cls=LazyGroup, lazy=BENCHMARKS)
def bench() -> None:
    """Benchmarks that print a table and write a JSON document (docs/benchmarks.md)."""
