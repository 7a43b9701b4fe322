"""The ``qfix`` command line: thin adapters over the library packages.

Subcommands are registered lazily by dotted path so that ``qfix --help`` stays fast
(numba and cryptography load only for the command that needs them) and so that each
package owns its own command module.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

#: top-level subcommands: name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "demo": "qfix.demo:demo",
    "keygen": "qfix.crypto.cli:keygen",
}

#: ``qfix bench NAME``: name -> "module:attribute"
BENCHMARKS: dict[str, str] = {
    "wire": "qfix.bench.wire:command",
    "engine": "qfix.bench.engine:command",
    "qzmq": "qfix.bench.qzmq:command",
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


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="qfix")
def main() -> None:
    """qfix: post-quantum-secure order matching over binary FIX and ZeroMQ."""


@main.group(cls=LazyGroup, lazy=BENCHMARKS)
def bench() -> None:
    """Benchmarks that print a table and write a JSON document (docs/benchmarks.md)."""
