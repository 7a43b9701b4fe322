"""Primitive known-answer tests (QZMQ.md §10.2) against Wycheproof vectors."""
