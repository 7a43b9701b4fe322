"""WIRE.md §7 conformance of the SBE XML schemas: XML = dtypes, independent decoders, XSD."""
