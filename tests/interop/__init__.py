"""Interop tests for QZMQ (QZMQ.md §10.3); see qzmq_independent/ for the second implementation."""
