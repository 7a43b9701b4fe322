"""Benchmark drivers: each ``qfix bench NAME`` prints a table and writes a JSON document."""
