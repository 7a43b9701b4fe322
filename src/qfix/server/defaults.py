"""The embedded default setup: what ``qfix server`` uses when no ``--config`` is given.

On first use it writes a complete, editable setup into a directory (``.qfix`` in the
working directory unless told otherwise): a server key, four client keys with one
account each, an admin key, the allow-list and a ``qfix.toml`` with three sample instruments. Later
starts reuse the files, so clients made for the first run keep working. Nothing is
overwritten; a half-written directory is reported, not patched over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from qfix.crypto.keys import generate_signing_key, render_allow_entry, write_private_key, write_public_key
from qfix.crypto.primitives import SignatureAlg

__all__ = ["DEFAULT_DIR", "DEMO_CLIENTS", "ensure_default_setup"]

DEFAULT_DIR: Final = Path(".qfix")
#: client key names and their accounts (the first account is the SessionAccount)
ADMIN_ACCOUNT: Final = 900
DEMO_CLIENTS: Final = (("client-1", 101), ("client-2", 102), ("client-3", 103), ("client-4", 104))

_CONFIG: Final = """\
# qfix server configuration (docs/server.md describes every key).
# Written by `qfix server` on first start; edit freely.

[server]
host = "127.0.0.1"          # bind address (loopback by default)
fix_port = 5555             # order entry (QZMQ over a ZeroMQ ROUTER)
md_port = 5556              # market data (PUB: L3, L2, BBO and trade feeds; docs/marketdata.md)
batch = 10000               # most messages per engine call
latency_budget_us = 200     # longest wait for more input before matching a batch
idle_spin_us = 0            # polling before the idle loop sleeps (latency for a core); 0 = sleep at once
compiled_path = true        # order frames through stage S, the engine and routing in one compiled call
compiled_sockets = true     # and read off the socket, and the reports sent, in compiled code
status_interval = 1.0       # seconds between status lines; 0 = off
metrics_port = 0            # Prometheus on 127.0.0.1:PORT; 0 = off
cancel_on_disconnect = true
handshake_workers = 1       # processes doing handshake crypto off the trading loop; 0 = inline
handshake_share = 0.2       # loop time handshakes may take before strangers' hellos are dropped
end_of_day = "21:00"        # UTC; Day orders expire then ("" = never)
memory_limit_mib = 8192

[keys]
server_key = "server.key"
allow_list = "allow.toml"
admin_kids = ["{admin_kid}"]   # admin.key: may halt, resume, kill accounts, reload (qfix admin)

[journal]
dir = "journal"             # write-ahead journal and checkpoints (docs/journal.md)
durability = "fsync"        # reports leave only once their orders are on disk; or "batch-async", "none"
checkpoint_every_messages = 1000000
checkpoint_every_s = 300

[marketdata]
enabled = true
snapshot_port = 5557        # snapshot and replay service (ROUTER)
retention = 1000000         # records kept per feed for replay

[engine]
max_orders = 1048576
max_levels = 262144
max_sessions = 4096

[qzmq]
mode = "hybrid"             # or "pq-only" (--pq-only)

[[instrument]]
security_id = 1
symbol = "BTC-USD"
tick = "0.01"
ref = "65000.00"
band_bps = 1000             # limit prices within 10% of the reference
max_order_qty = 1000000

[[instrument]]
security_id = 2
symbol = "ETH-USD"
tick = "0.01"
ref = "3500.00"
band_bps = 1000
max_order_qty = 1000000

[[instrument]]
security_id = 3
symbol = "AAPL"
tick = "0.01"
ref = "190.00"
band_ticks = 2000
max_order_qty = 100000
"""


def ensure_default_setup(directory: Path = DEFAULT_DIR) -> Path:
    """Create the default setup in ``directory`` if absent; return its ``qfix.toml``."""
    config = directory / "qfix.toml"
    if config.exists():
        return config
    if directory.exists() and any(directory.iterdir()):
        from qfix.server.config import ServerConfigError

        raise ServerConfigError(
            f"{directory}: exists without qfix.toml; remove it or pass --config to use your own setup"
        )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    server_key = generate_signing_key(SignatureAlg.ML_DSA_65)
    write_private_key(directory / "server.key", server_key)
    write_public_key(directory / "server.key.pub", server_key)
    entries = []
    for name, account in DEMO_CLIENTS:
        key = generate_signing_key(SignatureAlg.ML_DSA_65)
        write_private_key(directory / f"{name}.key", key)
        write_public_key(directory / f"{name}.key.pub", key)
        entries.append(f"# {name}\n" + render_allow_entry(key, [account]))
    admin = generate_signing_key(SignatureAlg.ML_DSA_65)
    write_private_key(directory / "admin.key", admin)
    write_public_key(directory / "admin.key.pub", admin)
    entries.append(
        f"# admin (operator key; its account {ADMIN_ACCOUNT} holds no orders)\n"
        + render_allow_entry(admin, [ADMIN_ACCOUNT])
    )
    allow = directory / "allow.toml"
    allow.write_text("# clients allowed to connect: key and accounts (first = SessionAccount)\n\n" + "\n".join(entries))
    allow.chmod(0o644)
    tmp = directory / "qfix.toml.tmp"
    tmp.write_text(_CONFIG.replace("{admin_kid}", admin.kid.hex()))
    tmp.replace(config)
    return config
