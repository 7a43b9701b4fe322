"""WIRE.md §7 test 3: both XML files validate against the vendored SBE 1.0 ``sbe.xsd``.

Validation uses lxml (libxml2's XML Schema support, a dev dependency), so these tests
run everywhere the suite runs instead of depending on a system ``xmllint``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from ._common import XML_PATHS

XSD_DIR = Path(__file__).resolve().parents[2] / "vectors" / "sbe-xsd"
XSD = XSD_DIR / "sbe.xsd"
#: sha256 of upstream v1-0-STANDARD/resources/sbe.xsd, as recorded in its README.md
XSD_SHA256 = "7b1ff8371ba5bf58212048f57228c67571a29a9a32f7d6fe611cca573b13db98"


def _parser() -> etree.XMLParser:
    # no network, no external entities: the files must stand on their own
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD), _parser()))


def validate(data: bytes) -> list[str]:
    """The XSD's complaints about ``data`` as ``line N: message``; empty when it validates."""
    schema = _schema()
    document = etree.ElementTree(etree.fromstring(data, _parser()))
    if schema.validate(document):
        return []
    return [f"line {error.line}: {error.message}" for error in schema.error_log]


def test_vendored_xsd_is_upstream_copy() -> None:
    assert hashlib.sha256(XSD.read_bytes()).hexdigest() == XSD_SHA256
    assert XSD_SHA256 in (XSD_DIR / "README.md").read_text(encoding="utf-8")
    assert (
        (XSD_DIR / "LICENSE")
        .read_bytes()
        .startswith(b"Creative Commons Attribution-NoDerivatives 4.0 International Public License")
    )


@pytest.mark.parametrize("schema_id", sorted(XML_PATHS))
def test_xml_validates_against_sbe_xsd(schema_id: int) -> None:
    assert validate(XML_PATHS[schema_id].read_bytes()) == []


def test_xsd_rejects_a_broken_schema() -> None:
    """Control: a field without its required ``id`` and a name with a dash are refused."""
    text = XML_PATHS[60].read_text(encoding="utf-8")
    broken = text.replace('<field name="ClOrdID" id="11" ', '<field name="ClOrd-ID" ', 1)
    assert broken != text
    errors = "\n".join(validate(broken.encode("utf-8")))
    assert "'ClOrd-ID' is not accepted by the pattern" in errors
    assert "The attribute 'id' is required but missing" in errors
