"""Loaded by the destination process when `BENCH_GC` names a file (bench/delivery_run.py puts this folder
on its PYTHONPATH): the garbage collector's own CPU, per generation, from the moment `destination run`
settles the collector (gc.set_threshold) to the process's exit, written to that file as JSON."""

import atexit
import gc
import json
import os
import time

_started = [0.0]
_settled = [False]
_collections: dict[int, list[float]] = {0: [0, 0.0, 0], 1: [0, 0.0, 0], 2: [0, 0.0, 0]}


def _observe(phase: str, info: dict) -> None:
    if not _settled[0]:
        return
    if phase == "start":
        _started[0] = time.thread_time()
        return
    count = _collections[info["generation"]]
    count[0] += 1
    count[1] += time.thread_time() - _started[0]
    count[2] += info.get("collected", 0)


_set_threshold = gc.set_threshold


def _settle(*thresholds: int) -> None:
    _set_threshold(*thresholds)
    _settled[0] = True


def _write() -> None:
    if _settled[0]:
        with open(os.environ["BENCH_GC"], "w") as file:
            json.dump({str(g): {"collections": c[0], "cpu_seconds": round(c[1], 4), "collected": c[2]}
                       for g, c in _collections.items()}, file)


if os.environ.get("BENCH_GC"):
    gc.callbacks.append(_observe)
    gc.set_threshold = _settle
    atexit.register(_write)
