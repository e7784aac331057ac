"""Measurement scripts (run as `python -m benchmarks.NAME`); never imported by the product."""
