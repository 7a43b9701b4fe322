"""Paths of the SBE XML schemas shipped as package data (WIRE.md §7).

``qfix/wire/sbe/`` is a plain data directory (no ``__init__.py``): the files are found
through :mod:`importlib.resources` relative to the ``qfix.wire`` package, so they resolve
both in a source checkout and in an installed wheel. Where the package is not on a file
system (a zip import), the file is extracted once to a temporary file that lives until the
interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path
from typing import Final

#: schema 60: order entry and session messages
ORDER_ENTRY_XML: Final = "qfix-order-entry.xml"
#: schema 61: market data and snapshot/replay requests
MARKET_DATA_XML: Final = "qfix-market-data.xml"

_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


@cache
def _path(name: str) -> Path:
    resource = files("qfix.wire").joinpath("sbe").joinpath(name)
    if isinstance(resource, Path):
        return resource
    return _extracted.enter_context(as_file(resource))


def order_entry_xml_path() -> Path:
    """Path of ``qfix-order-entry.xml`` (SBE schema id 60)."""
    return _path(ORDER_ENTRY_XML)


def market_data_xml_path() -> Path:
    """Path of ``qfix-market-data.xml`` (SBE schema id 61)."""
    return _path(MARKET_DATA_XML)
