"""The matching engine: configuration, continuous kernels, auctions (no I/O)."""

from qfix.engine.buffers import output_buffer
from qfix.engine.config import ConfigError, EngineConfig, InstrumentConfig, worst_case_records
from qfix.engine.contract import OUTPUT_FULL, STATUS_OK, EngineInvariantError, MatchingEngine, ProcessResult
from qfix.engine.engine import Engine
from qfix.engine.snapshot import SnapshotError

__all__ = [
    "OUTPUT_FULL",
    "STATUS_OK",
    "ConfigError",
    "Engine",
    "EngineConfig",
    "EngineInvariantError",
    "InstrumentConfig",
    "MatchingEngine",
    "ProcessResult",
    "SnapshotError",
    "output_buffer",
    "worst_case_records",
]
