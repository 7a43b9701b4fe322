"""The qfix server: the composition root that wires QZMQ, the session layer, the engine,
market data and metrics together (ARCHITECTURE.md: the only package that does)."""

from qfix.server.config import ServerConfig, ServerConfigError, load_config, parse_config, with_overrides
from qfix.server.defaults import DEFAULT_DIR, ensure_default_setup
from qfix.server.server import Server
from qfix.server.session import OrderEntry

__all__ = [
    "DEFAULT_DIR",
    "OrderEntry",
    "Server",
    "ServerConfig",
    "ServerConfigError",
    "ensure_default_setup",
    "load_config",
    "parse_config",
    "with_overrides",
]
