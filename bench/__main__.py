"""Run the benchmarks and print JSON lines, then a short table."""

from __future__ import annotations

import argparse
import json
import platform

from . import api_cost, mapping


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--events", type=int, default=20_000, help="events for the end-to-end runs")
    args = parser.parse_args()
    import os

    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    results = [mapping.run(), api_cost.run(args.events, "rest"), api_cost.run(args.events // 4, "bulk")]
    for result in results:
        print(json.dumps({**result, "machine": machine}))
    print()
    print(f"{'benchmark':<20} {'events':>8} {'events/s':>10} {'API calls':>10} {'floor':>7}")
    for r in results:
        rate = r.get("events_per_second") or r.get("events_per_second_per_core")
        print(f"{r['benchmark']:<20} {r['events']:>8} {rate:>10} {r.get('api_calls', '-')!s:>10} "
              f"{r.get('floor') or '-'!s:>7}")


if __name__ == "__main__":
    main()
