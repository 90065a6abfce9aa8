"""bench/scaleout.py's arithmetic: the steady window and the words that say what limited the rate."""

from __future__ import annotations

from bench import scaleout
from bench.scaleout import OTHERS, Sample


def _sample(at: float, done: int) -> Sample:
    return Sample(at, done, consumers=at, emulator=0.0, broker=0.0, machine=2 * at)


def test_the_steady_window_runs_from_the_first_sample_past_20_to_the_first_past_90_percent() -> None:
    samples = [_sample(t, d) for t, d in [(0, 0), (1, 100), (2, 250), (3, 500), (4, 900), (5, 1000)]]
    window = scaleout.steady(samples, 1000)
    assert window is not None
    first, last = window
    assert (first.at, first.done, last.at, last.done) == (2, 250, 4, 900)
    assert scaleout.steady(samples[:3], 1000) is None  # 90% never reached


def test_the_limit_names_a_whole_core_per_process_a_contended_machine_or_waiting() -> None:
    assert "whole core" in scaleout.limit_text({"consumers": 0.95, "emulator": 0.5, OTHERS: 0.1}, 2, 1)
    contended = scaleout.limit_text({"consumers": 0.24, "emulator": 0.1, "broker": 0.01, OTHERS: 1.65}, 2, 2)
    assert contended.startswith("CPU, shared with other work: 2.00 of 2 cores busy") and "only 0.35 cores" in contended
    assert scaleout.limit_text({"consumers": 1.2, "emulator": 0.6, OTHERS: 0.1}, 2, 2).startswith("CPU: 1.90 of 2")
    assert scaleout.limit_text({"consumers": 0.5, "emulator": 0.2, OTHERS: 0.1}, 2, 2).startswith("not CPU (0.80")
