"""The matching engine: configuration, continuous kernels, auctions (no I/O)."""

from qfix.engine.config import ConfigError, EngineConfig, InstrumentConfig

__all__ = ["ConfigError", "EngineConfig", "InstrumentConfig"]
