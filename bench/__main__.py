"""Run the benchmarks and print JSON lines, then a short table (`make bench`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

from . import delivery_run, ingest, mapping, scaleout


def main() -> None:
    if any(a.startswith(("--against", "--baseline-dir")) for a in sys.argv[1:]):
        from . import ab  # an A/B run against another checkout: see bench/ab.py

        ab.main()
        return
    parser = argparse.ArgumentParser(prog="python -m bench", epilog="A/B against another checkout: python -m bench "
                                     "--against REF | --baseline-dir DIR --only NAME[,NAME] [--rounds N] [--events N] "
                                     "(python -m bench.ab --help)")
    parser.add_argument("--events", type=int, default=100_000, help="events for the delivery runs")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="events in the memory benchmark's backlog")
    parser.add_argument("--only", help="run only benchmarks whose name contains this")
    args = parser.parse_args()
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    plan = [
        ("mapping", lambda: mapping.run()),
        ("ingest_embedded", lambda: ingest.run("embedded")),
        ("ingest_kafka", lambda: ingest.run("kafka")),
        ("backlog_kafka_rest", lambda: delivery_run.run(args.events, args.events // 2, "rest", "kafka")),
        ("backlog_kafka_rest_near", lambda: delivery_run.run(args.events, args.events // 2, "rest", "kafka",
                                                             repeats="near")),
        ("backlog_kafka_bulk", lambda: delivery_run.run(args.events, args.events // 2, "bulk", "kafka")),
        ("scaleout_kafka_rest", lambda: scaleout.run(args.events, args.events // 2)),
        ("memory", lambda: delivery_run.run(args.backlog, args.backlog // 2, "rest", "embedded", stop_after=45)),
    ]
    results = []
    for name, bench in plan:
        if args.only and args.only not in name:
            continue
        result = bench()
        results.append(result)
        print(json.dumps({**result, "machine": machine}), flush=True)
    print()
    print(f"{'benchmark':<30} {'events':>9} {'events/s':>9} {'p99 ms':>7} {'API calls':>9} {'floor':>6} "
          f"{'CPU µs/ev':>9} {'RSS MB':>7}  open loop: {'events/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for r in results:
        rate = r.get("events_per_second") or r.get("events_per_second_per_core")
        cpu = r.get("ready_cpu_us_per_event") or r.get("server_cpu_us_per_event", "-")
        print(f"{r['benchmark']:<30} {r['events']:>9} {rate!s:>9} {r.get('p99_ms', '-')!s:>7} "
              f"{r.get('api_calls', '-')!s:>9} {r.get('floor') or '-'!s:>6} "
              f"{cpu!s:>9} {r.get('destination_peak_rss_mb', '-')!s:>7}"
              f"             {r.get('open_loop_rate', '-')!s:>8} {r.get('open_loop_p50_ms', '-')!s:>7} "
              f"{r.get('open_loop_p99_ms', '-')!s:>7}")
    for r in results:
        if r.get("limit"):
            print(f"{r['benchmark']}: two consumers {r.get('speedup_two_over_one')} times one's events/s; limit: {r['limit']}")


if __name__ == "__main__":
    main()
