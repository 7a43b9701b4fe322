"""The Numba cache directory is keyed by the engine, market-data and wire sources (build
item of issue 8; market data since its kernels span modules too).

Numba's cache only watches the file of each cached function, so a stale directory could
serve machine code compiled against an older ``types.py`` or ``wire/codes.py``. Both
scripts/test.sh and ``qfix.numba_cache`` (used by tests/conftest.py and the ``qfix``
command) derive ``.numba_cache/<key>`` from the sources; these tests run both derivations
on a scratch tree and check that they agree and that an edit to any watched module
changes the key.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from qfix import numba_cache

ROOT = Path(__file__).resolve().parents[2]


def _module_dir(tree: Path) -> str:
    """The directory ``qfix.numba_cache`` names for the scratch checkout ``tree``."""
    return str(tree / ".numba_cache" / numba_cache.source_key(tree / "src" / "qfix"))


def _script_key(tree: Path, env_dir: str | None = None) -> str:
    """Run the NUMBA_CACHE_DIR block of scripts/test.sh in ``tree``; return what it exports."""
    text = (ROOT / "scripts" / "test.sh").read_text()
    match = re.search(r'^if \[ -z "\$\{NUMBA_CACHE_DIR:-\}" \]; then\n.*?^fi\n', text, re.S | re.M)
    assert match, "scripts/test.sh has no NUMBA_CACHE_DIR block"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    if env_dir is not None:
        env["NUMBA_CACHE_DIR"] = env_dir
    script = "set -euo pipefail\n" + match.group(0) + 'printf %s "${NUMBA_CACHE_DIR:-}"\n'
    done = subprocess.run(["bash", "-c", script], cwd=tree, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def _tree(tmp_path: Path) -> Path:
    for rel in (
        "src/qfix/engine/_kernels.py",
        "src/qfix/engine/types.py",
        "src/qfix/engine/auction/clearing.py",
        "src/qfix/marketdata/_store.py",
        "src/qfix/wire/codes.py",
    ):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"# {rel}\nX = 1\n")
    (tmp_path / "src/qfix/other.py").write_text("Y = 1\n")
    return tmp_path


def test_script_and_module_agree(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    assert _script_key(tree) == _module_dir(tree)


def test_module_agrees_with_the_script_on_this_checkout() -> None:
    assert _script_key(ROOT) == str(ROOT / ".numba_cache" / numba_cache.source_key())
    assert numba_cache.default_base() == ROOT / ".numba_cache"


def test_key_changes_with_any_engine_market_data_or_wire_module(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    before = _script_key(tree)
    assert before.startswith(str(tree / ".numba_cache") + "/")
    for rel in (
        "src/qfix/engine/types.py",
        "src/qfix/wire/codes.py",
        "src/qfix/engine/_kernels.py",
        "src/qfix/engine/auction/clearing.py",
        "src/qfix/marketdata/_store.py",
    ):
        (tree / rel).write_text((tree / rel).read_text() + "Z = 2\n")
        after = _script_key(tree)
        assert after != before, rel
        assert after == _module_dir(tree)
        before = after
    (tree / "src/qfix/other.py").write_text("Y = 2\n")
    assert _script_key(tree) == before


def test_explicit_cache_dir_is_kept(tmp_path: Path) -> None:
    assert _script_key(_tree(tmp_path), env_dir="/somewhere/else") == "/somewhere/else"


def test_module_keeps_an_explicit_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    assert numba_cache.configure() == Path("/somewhere/else")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    with warnings.catch_warnings():  # numba, imported by other tests, keeps its directory
        warnings.simplefilter("ignore", RuntimeWarning)
        assert numba_cache.configure(Path("/base")) == Path("/base") / numba_cache.source_key()


def test_the_qfix_command_sets_the_keyed_dir() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    code = "import os, qfix.cli; print(os.environ['NUMBA_CACHE_DIR'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(numba_cache.default_base() / numba_cache.source_key())


def test_importing_numba_before_qfix_warns() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    code = "import numba, warnings; warnings.simplefilter('always'); import qfix"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "numba was imported before qfix" in done.stderr
    quiet = subprocess.run([sys.executable, "-W", "error", "-c", "import qfix, numba"], env=env, check=False)
    assert quiet.returncode == 0
