"""``qfix keygen``: create an ML-DSA key pair for a QZMQ server or client."""

from __future__ import annotations

from pathlib import Path

import click

from qfix.crypto.keys import generate_signing_key, render_allow_entry, write_key_pair
from qfix.crypto.primitives import SignatureAlg

__all__ = ["keygen"]

_ALGS = [a.label for a in SignatureAlg]


@click.command()
@click.option(
    "--role",
    type=click.Choice(["server", "client"]),
    default="client",
    show_default=True,
    help="server keys are always ML-DSA-65 (QZMQ suite 0001).",
)
@click.option(
    "--alg",
    type=click.Choice(_ALGS),
    default=None,
    help="signature algorithm (default ML-DSA-65; clients may use 44, 65 or 87).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="private key file to create (mode 0600); the public key goes to OUT.pub.",
)
@click.option(
    "--account",
    "accounts",
    type=click.IntRange(0, 0xFFFF_FFFE),
    multiple=True,
    help="client only: print an allow-list entry with these accounts (first = SessionAccount).",
)
def keygen(role: str, alg: str | None, out: Path, accounts: tuple[int, ...]) -> None:
    """Write an ML-DSA key pair (OUT and OUT.pub) and print its key id.

    The files are TOML (format "qzmq-key-1", lowercase hex). The private file holds
    the 32-byte FIPS 204 seed and is created with mode 0600. Each file appears whole
    or not at all (written to a temporary file beside it, synced, then linked into
    place); neither is ever overwritten, and if either cannot be written no key file
    is left behind.
    """
    chosen = SignatureAlg.from_label(alg or "ML-DSA-65")
    if role == "server" and chosen is not SignatureAlg.ML_DSA_65:
        raise click.BadParameter("a server key must be ML-DSA-65", param_hint="--alg")
    if accounts and role != "client":
        raise click.BadParameter("only client keys have accounts", param_hint="--account")
    key = generate_signing_key(chosen)
    pub_path = write_key_pair(out, key)  # a KeyFileError becomes one line in qfix.cli
    click.echo(f"{role} key {chosen.label}")
    click.echo(f"kid     {key.kid.hex()}")
    click.echo(f"private {out} (mode 0600)")
    click.echo(f"public  {pub_path}")
    if accounts:
        click.echo("\nallow-list entry:\n" + render_allow_entry(key, list(accounts)))
