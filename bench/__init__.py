"""Benchmarks and the fixed-step reference model (plain scripts, run with python -m)."""
