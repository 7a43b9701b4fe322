"""InstrumentConfig checks that come from the wire: the symbol and the lot size must fit
SecurityDefinition (template 47: Symbol char[16], RoundLot u32; docs/wire.md)."""

from __future__ import annotations

from typing import Any

import pytest

from qfix.engine.config import ConfigError, InstrumentConfig
from qfix.wire import schema


def _instrument(**kw: Any) -> InstrumentConfig:
    params: dict[str, Any] = {
        "security_id": 7,
        "symbol": "BTC-USD",
        "tick_size_p9": 10_000_000,
        "ref": 6_500_000,
        "band_width": 100_000,
    }
    params.update(kw)
    return InstrumentConfig(**params)


def test_wire_limits_match_the_template() -> None:
    fields = dict(schema.TEMPLATES[47].fields)
    assert (fields["Symbol"], fields["RoundLot"]) == ("16s", "I")


@pytest.mark.parametrize("symbol", ["A", "BTC-USD", "ETH-USD", "AAPL", "S4294967294", "A B", "x" * 16, " !~"])
def test_symbols_that_fit_are_accepted(symbol: str) -> None:
    assert _instrument(symbol=symbol).symbol == symbol


@pytest.mark.parametrize(
    "symbol",
    ["", "x" * 17, "BTC\u2013USD", "caf\u00e9", "A\x00", "A\tB", "A\n", "\x7f", "\x1f"],
)
def test_symbols_that_do_not_fit_are_refused(symbol: str) -> None:
    with pytest.raises(ConfigError, match=r"^instrument 7 \(.*\): symbol must be 1\.\.16 printable ASCII characters"):
        _instrument(symbol=symbol)


def test_lot_size_must_fit_round_lot() -> None:
    assert _instrument(lot_size=2**32 - 1).lot_size == 2**32 - 1
    with pytest.raises(ConfigError, match=r"^instrument 7 \('BTC-USD'\): lot_size must be <= 2\^32-1"):
        _instrument(lot_size=2**32)
    with pytest.raises(ConfigError, match=r"lot_size must be > 0"):
        _instrument(lot_size=0)
