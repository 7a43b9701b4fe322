"""Long-term ML-DSA key files and the server's client allow-list.

Theory of operation: a key file is a small UTF-8 TOML document with exactly the keys
``format``, ``alg``, ``kid``, ``public`` (and ``seed`` for a private key), values in
lowercase hex. Every check is done on the parsed document before any key object is
built, and every refusal raises :class:`KeyFileError` naming the file and the reason,
so that bad local configuration fails fast with a message an operator can act on.

Files are opened with ``O_NOFOLLOW`` and their permissions are judged on ``fstat`` of
the open descriptor, never on the path, so a file swapped between check and read
cannot slip through. A key file is written to a temporary file in the target's
folder, created with ``O_EXCL|O_NOFOLLOW`` and mode 0600 in the same call, synced, and
then hard-linked into place: there is no window where the seed sits in a readable
file, no reader ever sees part of a key file, and an existing file is never
overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qfix.crypto import primitives as _p
from qfix.crypto.primitives import CryptoError, InvalidKeyError, SignatureAlg

__all__ = [
    "KEY_FORMAT",
    "AllowEntry",
    "AllowList",
    "KeyFileError",
    "SigningKey",
    "VerifyKey",
    "generate_signing_key",
    "load_allow_list",
    "load_private_key",
    "load_public_key",
    "parse_allow_list",
    "public_key_path",
    "render_allow_entry",
    "write_key_pair",
    "write_private_key",
    "write_public_key",
]

KEY_FORMAT = "qzmq-key-1"
_NULL_ACCOUNT = 0xFFFF_FFFF
_HEX = re.compile(r"[0-9a-f]*")
_PUBLIC_KEYS = frozenset({"format", "alg", "kid", "public"})
_PRIVATE_KEYS = _PUBLIC_KEYS | {"seed"}


class KeyFileError(CryptoError):
    """A key file or allow-list is refused (permissions, format, algorithm or body)."""


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An ML-DSA public key with its algorithm and key id."""

    alg: SignatureAlg
    public: bytes
    kid: bytes
    key: _p.MLDSAPublicKey = field(repr=False, compare=False)

    @classmethod
    def from_public_bytes(cls, alg: SignatureAlg, public: bytes) -> VerifyKey:
        return cls(alg, public, _p.kid(public), _p.mldsa_load_public(alg, public))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An ML-DSA private key (held as its FIPS 204 seed) and its public half."""

    alg: SignatureAlg
    seed: bytes = field(repr=False)
    public: bytes
    kid: bytes
    key: _p.MLDSAPrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_seed(cls, alg: SignatureAlg, seed: bytes) -> SigningKey:
        key = _p.mldsa_from_seed(alg, seed)
        public = key.public_key().public_bytes_raw()
        return cls(alg, seed, public, _p.kid(public), key)

    def verify_key(self) -> VerifyKey:
        return VerifyKey.from_public_bytes(self.alg, self.public)


def generate_signing_key(alg: SignatureAlg) -> SigningKey:
    """A fresh key pair of ``alg``."""
    return SigningKey.from_seed(alg, _p.mldsa_generate(alg).private_bytes_raw())


# --- writing ------------------------------------------------------------------------


def _render(fields: Mapping[str, str]) -> bytes:
    return "".join(f'{k} = "{v}"\n' for k, v in fields.items()).encode("utf-8")


def _public_fields(alg: SignatureAlg, kid: bytes, public: bytes) -> dict[str, str]:
    return {"format": KEY_FORMAT, "alg": alg.label, "kid": kid.hex(), "public": public.hex()}


#: errno values meaning "this file system has no hard links": fall back to rename
_NO_HARD_LINKS = frozenset(
    getattr(errno, name)
    for name in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EMLINK", "EXDEV")
    if hasattr(errno, name)
)


def _fsync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable (where the platform can open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the file itself is synced
    finally:
        os.close(fd)


def _create(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` holding ``data``, all at once and never over an existing file.

    The bytes go to a temporary file in the same folder (``mkstemp``: ``O_EXCL``,
    ``O_NOFOLLOW``, mode 0600 from the start), which is given ``mode``, fsynced, and
    then hard-linked to ``path`` (``link`` fails if ``path`` exists, so nothing is
    overwritten) before its temporary name is removed. A reader therefore finds no file
    or the whole file, never a part of one; on any failure the temporary file is
    removed. On a file system without hard links the temporary file is renamed after
    an existence check instead. Every ``OSError`` becomes a :class:`KeyFileError`.
    """
    exists = KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    if os.path.lexists(path):
        raise exists
    fd = -1
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if mode != 0o600:
            os.fchmod(fd, mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise exists from None
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(path):
                raise exists from None
            os.rename(tmp, path)
            tmp = None
        _fsync_folder(path.parent)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_private_key(path: str | os.PathLike[str], key: SigningKey) -> None:
    """Create a private key file (mode 0600, written atomically, never overwrites)."""
    fields = _public_fields(key.alg, key.kid, key.public)
    fields["seed"] = key.seed.hex()
    _create(Path(path), _render(fields), 0o600)


def write_public_key(path: str | os.PathLike[str], key: SigningKey | VerifyKey) -> None:
    """Create a public key file (mode 0644, written atomically, never overwrites)."""
    _create(Path(path), _render(_public_fields(key.alg, key.kid, key.public)), 0o644)


def public_key_path(path: str | os.PathLike[str]) -> Path:
    """Where the public half of the private key file ``path`` goes: ``PATH.pub``."""
    p = Path(path)
    return p.with_name(p.name + ".pub")


def write_key_pair(path: str | os.PathLike[str], key: SigningKey) -> Path:
    """Create ``path`` (private, 0600) and ``path.pub`` (public, 0644); return the latter.

    Neither file may exist beforehand. Each is written atomically (see ``_create``);
    if the public file cannot be written the new private file is removed again, so a
    failure leaves no key file behind.
    """
    private = Path(path)
    public = public_key_path(private)
    for target in (private, public):
        if os.path.lexists(target):
            raise KeyFileError(f"{target}: already exists; refusing to overwrite a key")
    write_private_key(private, key)
    try:
        write_public_key(public, key)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(private)
        raise
    return public


# --- reading ------------------------------------------------------------------------


def _read_checked(path: Path, *, private: bool) -> str:
    # O_NONBLOCK: opening a FIFO planted in place of a key must not hang the loader
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: not a regular file")
        if private:
            if st.st_uid != os.geteuid():
                raise KeyFileError(
                    f"{path}: private key owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
                )
            if st.st_mode & 0o077:
                raise KeyFileError(
                    f"{path}: private key has mode {stat.S_IMODE(st.st_mode):04o}; it must "
                    "not be accessible to group or others (regenerate it, or chmod 600)"
                )
        elif st.st_mode & 0o022:
            raise KeyFileError(
                f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets group or others write it (chmod go-w)"
            )
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: not UTF-8") from None


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeyFileError(f"{path}: not valid TOML: {exc}") from None


def _hex_field(where: str, doc: Mapping[str, Any], name: str, size: int) -> bytes:
    value = doc[name]
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) % 2:
        raise KeyFileError(f"{where}: {name} must be lowercase hex")
    raw = bytes.fromhex(value)
    if len(raw) != size:
        raise KeyFileError(f"{where}: {name} is {len(raw)} bytes, expected {size}")
    return raw


def _parse_public(where: str, doc: Mapping[str, Any], allowed: frozenset[str]) -> VerifyKey:
    keys = set(doc)
    if missing := sorted(allowed - keys):
        raise KeyFileError(f"{where}: missing key(s) {', '.join(missing)}")
    if extra := sorted(keys - allowed):
        raise KeyFileError(f"{where}: unknown key(s) {', '.join(extra)}")
    if doc["format"] != KEY_FORMAT:
        raise KeyFileError(f"{where}: format is {doc['format']!r}, expected {KEY_FORMAT!r}")
    if not isinstance(doc["alg"], str):
        raise KeyFileError(f"{where}: alg must be a string")
    try:
        alg = SignatureAlg.from_label(doc["alg"])
    except InvalidKeyError as exc:
        raise KeyFileError(f"{where}: {exc}") from None
    public = _hex_field(where, doc, "public", alg.public_key_len)
    kid = _hex_field(where, doc, "kid", _p.KID_LEN)
    if kid != _p.kid(public):
        raise KeyFileError(f"{where}: kid does not match the public key")
    try:
        return VerifyKey.from_public_bytes(alg, public)
    except InvalidKeyError as exc:
        raise KeyFileError(f"{where}: corrupt public key: {exc}") from None


def load_public_key(path: str | os.PathLike[str], *, alg: SignatureAlg | None = None) -> VerifyKey:
    """Load a public key file (a private key file, holding a seed, is refused).

    Args:
        path: the file.
        alg: if given, the algorithm the key must have (the pinned server key is
            ML-DSA-65 in suite 0001).
    """
    p = Path(path)
    doc = _parse_toml(p, _read_checked(p, private=False))
    if "seed" in doc:
        raise KeyFileError(f"{p}: holds a private seed; pass the public (.pub) file instead")
    key = _parse_public(str(p), doc, _PUBLIC_KEYS)
    if alg is not None and key.alg != alg:
        raise KeyFileError(f"{p}: key is {key.alg.label}, expected {alg.label}")
    return key


def load_private_key(path: str | os.PathLike[str], *, alg: SignatureAlg | None = None) -> SigningKey:
    """Load a private key file after checking owner, permissions, format and body."""
    p = Path(path)
    doc = _parse_toml(p, _read_checked(p, private=True))
    pub = _parse_public(str(p), doc, _PRIVATE_KEYS)
    seed = _hex_field(str(p), doc, "seed", _p.MLDSA_SEED_LEN)
    key = SigningKey.from_seed(pub.alg, seed)
    if key.public != pub.public:
        raise KeyFileError(f"{p}: seed does not produce the public key in the file")
    if alg is not None and key.alg != alg:
        raise KeyFileError(f"{p}: key is {key.alg.label}, expected {alg.label}")
    return key


# --- allow-list ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One client: its key and the accounts it may trade (the first is SessionAccount)."""

    key: VerifyKey
    accounts: tuple[int, ...]

    @property
    def kid(self) -> bytes:
        return self.key.kid

    @property
    def alg(self) -> SignatureAlg:
        return self.key.alg


class AllowList(Mapping[bytes, AllowEntry]):
    """Immutable map ``client kid -> AllowEntry``."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[AllowEntry] = ()) -> None:
        table: dict[bytes, AllowEntry] = {}
        publics: set[bytes] = set()
        for entry in entries:
            if entry.kid in table or entry.key.public in publics:
                raise KeyFileError(f"allow-list: client kid {entry.kid.hex()} appears twice")
            table[entry.kid] = entry
            publics.add(entry.key.public)
        self._entries = table

    def __getitem__(self, kid: bytes) -> AllowEntry:
        return self._entries[kid]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _parse_accounts(where: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise KeyFileError(f"{where}: accounts must be a non-empty list of integers")
    for acct in value:
        if isinstance(acct, bool) or not isinstance(acct, int):
            raise KeyFileError(f"{where}: account {acct!r} is not an integer")
        if not 0 <= acct < _NULL_ACCOUNT:
            raise KeyFileError(f"{where}: account {acct} is outside 0..4294967294 (4294967295 is null)")
    if len(set(value)) != len(value):
        raise KeyFileError(f"{where}: an account is listed twice")
    return tuple(value)


def parse_allow_list(text: str, *, source: str = "allow-list") -> AllowList:
    """Parse allow-list TOML (``[[client]]`` tables); any bad entry refuses the whole list."""
    doc = _parse_toml(Path(source), text)
    if extra := sorted(set(doc) - {"client"}):
        raise KeyFileError(f"{source}: unknown top-level key(s) {', '.join(extra)}")
    clients = doc.get("client", [])
    if not isinstance(clients, list):
        raise KeyFileError(f"{source}: client must be an array of tables ([[client]])")
    entries = []
    for i, table in enumerate(clients):
        where = f"{source}: client #{i + 1}"
        if not isinstance(table, dict):
            raise KeyFileError(f"{where}: not a table")
        key_doc = {k: v for k, v in table.items() if k != "accounts"}
        if "accounts" not in table:
            raise KeyFileError(f"{where}: missing key(s) accounts")
        key = _parse_public(where, key_doc, _PUBLIC_KEYS)
        entries.append(AllowEntry(key, _parse_accounts(where, table["accounts"])))
    try:
        return AllowList(entries)
    except KeyFileError as exc:
        raise KeyFileError(f"{source}: {exc}") from None


def load_allow_list(path: str | os.PathLike[str]) -> AllowList:
    """Load the server's client allow-list (refused if group- or other-writable)."""
    p = Path(path)
    return parse_allow_list(_read_checked(p, private=False), source=str(p))


def render_allow_entry(key: VerifyKey | SigningKey, accounts: list[int]) -> str:
    """A ``[[client]]`` table for ``key`` (what ``qfix keygen --role client`` prints)."""
    body = _render(_public_fields(key.alg, key.kid, key.public)).decode()
    return "[[client]]\n" + body + f"accounts = [{', '.join(str(a) for a in accounts)}]\n"
