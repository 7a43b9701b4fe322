"""WIRE.md §7 test 3: both XML files validate against the vendored SBE 1.0 ``sbe.xsd``."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from ._common import XML_PATHS

XSD_DIR = Path(__file__).resolve().parents[2] / "vectors" / "sbe-xsd"
XSD = XSD_DIR / "sbe.xsd"
#: sha256 of upstream v1-0-STANDARD/resources/sbe.xsd, as recorded in its README.md
XSD_SHA256 = "7b1ff8371ba5bf58212048f57228c67571a29a9a32f7d6fe611cca573b13db98"
XMLLINT = shutil.which("xmllint")

needs_xmllint = pytest.mark.skipif(
    XMLLINT is None,
    reason="xmllint not installed (Debian/Ubuntu: apt-get install libxml2-utils)",
)
needs_xsd = pytest.mark.skipif(not XSD.is_file(), reason=f"{XSD} absent")


def xmllint(path: Path) -> subprocess.CompletedProcess[str]:
    assert XMLLINT is not None
    return subprocess.run(
        [XMLLINT, "--noout", "--nonet", "--schema", str(XSD), str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )


@needs_xsd
def test_vendored_xsd_is_upstream_copy() -> None:
    assert hashlib.sha256(XSD.read_bytes()).hexdigest() == XSD_SHA256
    assert XSD_SHA256 in (XSD_DIR / "README.md").read_text(encoding="utf-8")
    assert (XSD_DIR / "LICENSE").read_bytes().startswith(
        b"Creative Commons Attribution-NoDerivatives 4.0 International Public License")


@needs_xmllint
@needs_xsd
@pytest.mark.parametrize("schema_id", sorted(XML_PATHS))
def test_xml_validates_against_sbe_xsd(schema_id: int) -> None:
    result = xmllint(XML_PATHS[schema_id])
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("validates")


@needs_xmllint
@needs_xsd
def test_xsd_rejects_a_broken_schema(tmp_path: Path) -> None:
    """Control: a field without its required ``id`` and a name with a dash are refused."""
    text = XML_PATHS[60].read_text(encoding="utf-8")
    broken = tmp_path / "broken.xml"
    broken.write_text(
        text.replace('<field name="ClOrdID" id="11" ', '<field name="ClOrd-ID" ', 1),
        encoding="utf-8",
    )
    assert broken.read_text(encoding="utf-8") != text
    result = xmllint(broken)
    assert result.returncode != 0
    assert "ClOrd-ID" in result.stderr and "'id' is required" in result.stderr
