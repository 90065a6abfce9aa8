"""bench/gc_probe: the destination's garbage-collector CPU, counted only once `run` has settled the collector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.delivery_run import _gc_probe_env

_SCRIPT = """
import gc
gc.collect()                      # start-up: not counted
gc.set_threshold(20000, 100, 10)  # what `destination run` does once started
for _ in range(3):
    a, b = [], []
    a.append(b); b.append(a)      # a cycle only the collector frees
    del a, b
    gc.collect(1)
"""


def test_the_probe_counts_collections_from_the_settled_collector_on_and_writes_them_at_exit(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_GC", "1")
    out = tmp_path / "gc.json"
    subprocess.run([sys.executable, "-c", _SCRIPT], env=_gc_probe_env(out), check=True, timeout=60)
    by_generation = json.loads(out.read_text())
    assert by_generation["1"]["collections"] == 3 and by_generation["1"]["collected"] == 6
    assert by_generation["2"]["collections"] == 0  # the start-up collection is not counted
    assert all(g["cpu_seconds"] >= 0 for g in by_generation.values())


def test_without_bench_gc_the_destination_runs_in_the_environment_as_it_is(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BENCH_GC", raising=False)
    assert _gc_probe_env(tmp_path / "gc.json") is None
