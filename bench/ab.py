"""A/B runs: the same benchmarks in two checkouts, interleaved, with medians and ratios.

    python -m bench.ab --against 19b0436 --only backlog_kafka_rest --events 20000 --rounds 3
    python -m bench.ab --baseline-dir /work/wt/base --only mapping,backlog_kafka_bulk --rounds 5

A is the baseline (`--against REF`: a git commit checked out into a temporary `git worktree` with its own
venv made by `make .venv/.installed`; or `--baseline-dir DIR`: an existing checkout, its venv made there
when missing), B is this checkout. Each round runs every selected benchmark as `python -m bench --only NAME
--events N` with A's venv against A's code, then the same in B's — so A, B, A, B…, and a slow minute of this
shared machine hits both sides rather than one. Both sides run this tree's bench/ (a copy, with BENCH_TREE
naming A's checkout), so a figure means the same on both; `--own-harness` runs A's own bench/ instead. Every JSON line a run prints is kept (a baseline whose
`--only` matches by substring may print several; each is compared by its `benchmark` name).

It prints one line per run as it goes, then per benchmark and figure both series, their medians and the
ratio B/A; `--json FILE` also writes every run's full result. Prefer the CPU figures: wall-clock ones move
with the machine's load (`uptime` is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# Figures compared, in print order: (label, the result keys that carry it, first present wins).
FIGURES: list[tuple[str, tuple[str, ...]]] = [
    ("CPU µs/event", ("ready_cpu_us_per_event", "server_cpu_us_per_event", "cpu_us_per_event")),
    ("GC µs/event", ("gc_cpu_us_per_event",)),  # with BENCH_GC=1 (bench/gc_probe)
    ("events/s", ("events_per_second", "events_per_second_per_core")),
    ("API calls", ("api_calls",)),
    ("peak RSS MB", ("destination_peak_rss_mb", "peak_rss_mb")),
    ("p99 ms", ("p99_ms",)),
    ("open-loop p99 ms", ("open_loop_p99_ms",)),
    ("wall s", ("wall_seconds",)),
]


@dataclass
class Side:
    """One checkout to run benchmarks in: its tree and its venv's python."""

    label: str
    tree: Path
    python: Path
    harness: Path | None = None  # a copy of B's bench/ (its parent folder) run against this tree's code


@dataclass
class Series:
    """The results of one benchmark on both sides, round by round."""

    a: list[dict[str, Any]] = field(default_factory=list)
    b: list[dict[str, Any]] = field(default_factory=list)


def interleave(rounds: int, names: Sequence[str]) -> list[tuple[int, str, str]]:
    """The run order: (round, benchmark, side) with each benchmark's A run right before its B run."""
    return [(r, name, side) for r in range(rounds) for name in names for side in ("A", "B")]


def figure(result: dict[str, Any], keys: Iterable[str]) -> float | None:
    """The first of `keys` that the result holds as a number."""
    for key in keys:
        value = result.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def compare(series: Series) -> list[dict[str, Any]]:
    """Per figure present on either side: both series, their medians and the ratio B/A of the medians."""
    rows = []
    for label, keys in FIGURES:
        a = [figure(r, keys) for r in series.a]
        b = [figure(r, keys) for r in series.b]
        if all(v is None for v in a + b):
            continue
        ma, mb = median(a), median(b)
        ratio = round(mb / ma, 3) if ma and mb is not None else None
        rows.append({"figure": label, "a": a, "b": b, "median_a": ma, "median_b": mb, "ratio": ratio})
    return rows


def parse_results(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects of a `python -m bench` run's output (its table lines are skipped)."""
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and "benchmark" in value:
                out.append(value)
    return out


def _clean_env() -> dict[str, str]:
    """This process's environment without what would make the other tree import this one's code."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def run_once(side: Side, name: str, bench_args: Sequence[str], timeout: float) -> list[dict[str, Any]]:
    """One `python -m bench --only NAME` in the side's tree (or its harness against the tree's code); the results
    it printed."""
    env = _clean_env()
    if side.harness is not None:
        env.update(BENCH_TREE=str(side.tree), PYTHONPATH=str(side.tree))
    proc = subprocess.run([str(side.python), "-m", "bench", "--only", name, *bench_args],
                          cwd=side.harness or side.tree, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{side.label} ({side.tree}) `bench --only {name}` exited {proc.returncode}:\n"
                           f"{proc.stderr[-3000:]}")
    return parse_results(proc.stdout)


def ensure_venv(tree: Path) -> Path:
    """The tree's .venv python, made with the tree's own `make .venv/.installed` when missing."""
    python = tree / ".venv" / "bin" / "python"
    if not (tree / ".venv" / ".installed").exists():
        print(f"# making the venv of {tree} (make .venv/.installed, a few minutes)…", flush=True)
        made = subprocess.run(["make", ".venv/.installed"], cwd=tree, env=_clean_env(), capture_output=True,
                              text=True)
        if made.returncode != 0:
            raise SystemExit(f"make .venv/.installed in {tree} failed:\n{(made.stdout + made.stderr)[-3000:]}")
    return python


def add_worktree(ref: str) -> Path:
    """REF checked out (detached) into a new temporary git worktree of this repository."""
    folder = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), ref], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    return folder


def remove_worktree(folder: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(folder, ignore_errors=True)


def _commit(tree: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=tree,
                           capture_output=True, text=True).stdout.strip()
    return (out.stdout.strip() or "?") + ("+dirty" if dirty else "")


def _uptime() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average ?"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def report(all_series: dict[str, Series], out: Callable[[str], None] = print) -> None:
    """Per benchmark: each figure's A and B series, medians and ratio B/A."""
    for name, series in all_series.items():
        out(f"\n{name}  (A = baseline, B = this tree; {len(series.a)} + {len(series.b)} runs)")
        out(f"  {'figure':<18} {'median A':>10} {'median B':>10} {'B/A':>7}   A runs | B runs")
        for row in compare(series):
            a = " ".join(_fmt(v) for v in row["a"])
            b = " ".join(_fmt(v) for v in row["b"])
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
            out(f"  {row['figure']:<18} {_fmt(row['median_a']):>10} {_fmt(row['median_b']):>10} {ratio:>7}"
                f"   {a} | {b}")


def run_ab(a: Side, b: Side, names: Sequence[str], rounds: int, bench_args: Sequence[str],
           timeout: float, runner: Callable[[Side, str, Sequence[str], float], list[dict[str, Any]]] = run_once,
           failures: list[str] | None = None) -> dict[str, Series]:
    """Every (round, benchmark, side) of `interleave`, the results gathered by their `benchmark` name. A run
    that fails (or times out) is reported and left out of its series; the others go on. Ctrl-C stops early
    with what was gathered so far."""
    all_series: dict[str, Series] = {}
    failures = failures if failures is not None else []
    try:
        for r, name, label in interleave(rounds, names):
            side = a if label == "A" else b
            started = time.monotonic()
            try:
                results = runner(side, name, bench_args, timeout)
                if not results:
                    raise RuntimeError(f"`bench --only {name}` printed no result")
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                failures.append(f"round {r + 1} {label} {name}: {exc}")
                print(f"# round {r + 1} {label} {name} FAILED ({time.monotonic() - started:.0f} s): {exc}", flush=True)
                continue
            for result in results:
                series = all_series.setdefault(str(result["benchmark"]), Series())
                (series.a if label == "A" else series.b).append(result)
                shown = ", ".join(f"{label_} {_fmt(value)}" for label_, keys in FIGURES
                                  if (value := figure(result, keys)) is not None)
                print(f"# round {r + 1} {label} {result['benchmark']}: {shown} "
                      f"({time.monotonic() - started:.0f} s, {_uptime()})", flush=True)
    except KeyboardInterrupt:
        print("# interrupted: the report below covers the runs so far", flush=True)
    return all_series


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--against", metavar="REF", help="baseline commit, checked out into a temporary worktree")
    where.add_argument("--baseline-dir", type=Path, help="an existing baseline checkout (its .venv reused)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", required=True,
                        help="comma-separated benchmark names as `python -m bench --only` takes them")
    parser.add_argument("--events", type=int, help="passed to both sides' `python -m bench`")
    parser.add_argument("--backlog", type=int, help="passed to both sides' `python -m bench`")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per single run")
    parser.add_argument("--own-harness", action="store_true",
                        help="run the baseline's own bench/ (default: this tree's bench/ against the baseline's code, "
                             "so both sides are measured the same way)")
    parser.add_argument("--keep", action="store_true", help="keep the --against worktree (reuse: --baseline-dir)")
    parser.add_argument("--json", type=Path, help="write every run's result here")
    args = parser.parse_args(argv)
    bench_args = [*(["--events", str(args.events)] if args.events else []),
                  *(["--backlog", str(args.backlog)] if args.backlog else [])]
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    made = add_worktree(args.against) if args.against else None
    harness: Path | None = None
    try:
        base = made or args.baseline_dir.resolve()
        a = Side("A", base, ensure_venv(base))
        if not args.own_harness:
            harness = Path(tempfile.mkdtemp(prefix="bench-harness-"))
            shutil.copytree(REPO / "bench", harness / "bench", ignore=shutil.ignore_patterns("__pycache__"))
            a.harness = harness
        b = Side("B", REPO, ensure_venv(REPO))
        print(f"# A = {a.tree} @ {_commit(a.tree)} ({'its own' if args.own_harness else 'this'} bench/), "
              f"B = {b.tree} @ {_commit(b.tree)}; {args.rounds} rounds of "
              f"{', '.join(names)} {' '.join(bench_args)}; {_uptime()}", flush=True)
        failures: list[str] = []
        all_series = run_ab(a, b, names, args.rounds, bench_args, args.timeout, failures=failures)
        report(all_series)
        for failure in failures:
            print(f"# failed: {failure[:500]}")
        print(f"\n# {_uptime()}")
        if args.json:
            args.json.write_text(json.dumps({"a": {"tree": str(a.tree), "commit": _commit(a.tree)},
                                             "b": {"tree": str(b.tree), "commit": _commit(b.tree)},
                                             "failures": failures,
                                             "results": {n: {"a": s.a, "b": s.b} for n, s in all_series.items()}},
                                            indent=1))
    finally:
        if harness is not None:
            shutil.rmtree(harness, ignore_errors=True)
        if made is not None:
            if args.keep:
                print(f"# kept {made}: pass --baseline-dir {made} next time", file=sys.stderr)
            else:
                remove_worktree(made)


if __name__ == "__main__":
    main()
