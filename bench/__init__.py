"""Benchmarks: `python -m bench NAME` prints figures beside a baseline run alongside."""
