"""Benchmarks: `make bench` (python -m bench) prints JSON and a short table."""
