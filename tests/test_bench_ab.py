"""The A/B harness (bench/ab.py): run order, medians and ratios, result parsing, and a real worktree."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import ab
from bench.processes import wait_idle

REPO = Path(__file__).resolve().parents[1]


def test_each_round_runs_every_benchmark_on_a_then_b_before_the_next_round() -> None:
    order = ab.interleave(2, ["mapping", "backlog_kafka_rest"])
    assert order == [(0, "mapping", "A"), (0, "mapping", "B"), (0, "backlog_kafka_rest", "A"),
                     (0, "backlog_kafka_rest", "B"), (1, "mapping", "A"), (1, "mapping", "B"),
                     (1, "backlog_kafka_rest", "A"), (1, "backlog_kafka_rest", "B")]


def test_medians_and_ratio_compare_b_to_a_per_figure_whichever_key_a_benchmark_uses() -> None:
    series = ab.Series(
        a=[{"ready_cpu_us_per_event": 200, "api_calls": 501}, {"ready_cpu_us_per_event": 180, "api_calls": 501},
           {"ready_cpu_us_per_event": 260, "api_calls": 503}],
        b=[{"ready_cpu_us_per_event": 100, "api_calls": 501}, {"ready_cpu_us_per_event": 95, "api_calls": 500},
           {"ready_cpu_us_per_event": 140, "api_calls": 501}])
    rows = {row["figure"]: row for row in ab.compare(series)}
    assert rows["CPU µs/event"]["median_a"] == 200 and rows["CPU µs/event"]["median_b"] == 100
    assert rows["CPU µs/event"]["ratio"] == 0.5
    assert rows["API calls"]["a"] == [501, 501, 503] and rows["API calls"]["ratio"] == 1.0
    assert "p99 ms" not in rows  # a figure neither side reported is left out
    mapping = ab.compare(ab.Series(a=[{"events_per_second_per_core": 10_000}],
                                   b=[{"events_per_second_per_core": 25_000}]))
    assert mapping[0]["figure"] == "events/s" and mapping[0]["ratio"] == 2.5


def test_a_figure_missing_from_some_runs_is_the_median_of_the_runs_that_have_it() -> None:
    assert ab.median([3.0, None, 1.0, 2.0]) == 2.0
    assert ab.median([None, None]) is None
    rows = ab.compare(ab.Series(a=[{"p99_ms": 10}], b=[{"other": 1}]))
    assert rows[0]["median_b"] is None and rows[0]["ratio"] is None


def test_only_the_json_result_lines_of_a_bench_run_are_read() -> None:
    stdout = ('{"benchmark": "backlog_kafka_rest", "events": 10}\n{"benchmark": "backlog_kafka_rest_near"}\n\n'
              "benchmark   events  events/s\n{not json\n"
              '{"no_name": 1}\nbacklog_kafka_rest   10 5\n')
    assert [r["benchmark"] for r in ab.parse_results(stdout)] == ["backlog_kafka_rest", "backlog_kafka_rest_near"]


def test_results_are_gathered_by_benchmark_name_in_the_interleaved_order(tmp_path: Path) -> None:
    calls: list[tuple[str, str]] = []

    def runner(side: ab.Side, name: str, args: Any, timeout: float) -> list[dict[str, Any]]:
        calls.append((side.label, name))
        # a baseline whose --only matches by substring prints both delivery runs
        return [{"benchmark": name, "ready_cpu_us_per_event": len(calls)},
                {"benchmark": name + "_near", "ready_cpu_us_per_event": 100 + len(calls)}]

    a = ab.Side("A", tmp_path, tmp_path / "python")
    b = ab.Side("B", tmp_path, tmp_path / "python")
    series = ab.run_ab(a, b, ["rest"], 2, [], 10, runner)
    assert calls == [("A", "rest"), ("B", "rest"), ("A", "rest"), ("B", "rest")]
    assert [r["ready_cpu_us_per_event"] for r in series["rest"].a] == [1, 3]
    assert [r["ready_cpu_us_per_event"] for r in series["rest_near"].b] == [102, 104]
    lines: list[str] = []
    ab.report(series, lines.append)
    rest_cpu = lines[lines.index(next(x for x in lines if x.startswith("\nrest "))) + 2]
    assert rest_cpu.split()[2:6] == ["2", "3", "1.500", "1"]  # medians 2 and 3, B/A 1.5, then A's runs 1 3


def test_against_a_commit_checks_it_out_into_a_worktree_that_is_removed_afterwards() -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    folder = ab.add_worktree(head)
    try:
        checked_out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                     check=True).stdout.strip()
        assert checked_out == head
        assert (folder / "bench" / "__main__.py").exists()
    finally:
        ab.remove_worktree(folder)
    assert not folder.exists()
    listed = subprocess.run(["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True).stdout
    assert str(folder) not in listed


def test_a_failed_run_is_reported_and_left_out_while_the_other_runs_go_on(tmp_path: Path) -> None:
    def runner(side: ab.Side, name: str, args: Any, timeout: float) -> list[dict[str, Any]]:
        if side.label == "B" and name == "broken":
            raise RuntimeError("B (tree) `bench --only broken` exited 1")
        return [{"benchmark": name, "api_calls": 7}]

    failures: list[str] = []
    side = ab.Side("A", tmp_path, tmp_path / "python")
    series = ab.run_ab(side, ab.Side("B", tmp_path, tmp_path / "python"), ["broken", "fine"], 2, [], 10, runner,
                       failures=failures)
    assert len(series["broken"].a) == 2 and series["broken"].b == []
    assert len(series["fine"].a) == len(series["fine"].b) == 2
    assert failures == ["round 1 B broken: B (tree) `bench --only broken` exited 1",
                        "round 2 B broken: B (tree) `bench --only broken` exited 1"]


def test_the_harness_of_b_runs_against_the_code_of_a_when_a_side_has_one(tmp_path: Path) -> None:
    tree = tmp_path / "a"  # A's checkout: its own `destination` package
    (tree / "destination").mkdir(parents=True)
    (tree / "destination" / "__init__.py").write_text("WHICH = 'a'\n")
    harness = tmp_path / "harness"  # B's bench/, copied
    (harness / "bench").mkdir(parents=True)
    (harness / "bench" / "__init__.py").write_text("")
    (harness / "bench" / "__main__.py").write_text(
        "import json, os, destination\n"
        "print(json.dumps({'benchmark': 'probe', 'which': destination.WHICH, 'tree': os.environ['BENCH_TREE'],"
        " 'cwd': os.getcwd()}))\n")
    side = ab.Side("A", tree, Path(sys.executable), harness=harness)
    [result] = ab.run_once(side, "probe", [], 60)
    assert result["which"] == "a" and result["tree"] == str(tree) and result["cwd"] == str(harness)


def test_a_process_is_idle_once_it_stops_using_cpu_and_its_cpu_then_is_returned() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                             "while time.process_time() - t < 0.6: pass\ntime.sleep(30)"])
    try:
        started = time.monotonic()
        cpu = wait_idle(busy.pid, quiet_seconds=0.5, at_most=20)
        assert cpu >= 0.6 and time.monotonic() - started >= 0.5
    finally:
        busy.kill()
        busy.wait()
