"""Scale-out: one `destination run --consumer-only` process against two in one consumer group, each time
draining the same backlog of identify events from the same Kafka topic (tansu, 8 partitions) into the
emulator over REST.

Per setting: events/s (over the whole drain, and over the steady part from 20% to 90% of the outcomes, which
leaves out start-up and the group's rebalance), API calls against the floor, the consumers' CPU per event,
and where the machine's CPU went in the steady part — the consumers, the emulator, the broker, and everything
else on the machine (other work sharing it) — from /proc. `limit` says in words what held the rate back.

The two consumers share one SQLite sync log (WAL; its write lock serialises their outcome transactions);
a deployment with several consumer processes would point them at PostgreSQL instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from destination.synclog import open_sync_log

from .delivery_run import (
    _fill,
    _outcomes,
    emulator_stats,
    floor_of,
    kafka_config,
    start_emulator,
    write_config,
)
from .processes import cpu_seconds, rss_mb, start_broker

STEADY_FROM, STEADY_TO = 0.2, 0.9
OTHERS = "other work on the machine"


@dataclass
class Sample:
    """One look at the processes: when, outcomes so far, CPU seconds so far (by part), machine busy ticks."""

    at: float
    done: int
    consumers: float
    emulator: float
    broker: float
    machine: float


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def _create_sync_log(path: Path) -> None:
    """Made before the consumers start, so that they do not race to create its tables."""
    log = open_sync_log(f"sqlite:///{path}")
    await log.open()
    await log.close()


def steady(samples: list[Sample], n: int) -> tuple[Sample, Sample] | None:
    """The first samples at or beyond STEADY_FROM and STEADY_TO of the n outcomes (None if never reached)."""
    first = next((s for s in samples if s.done >= n * STEADY_FROM), None)
    last = next((s for s in samples if s.done >= n * STEADY_TO), None)
    if first is None or last is None or last.at <= first.at:
        return None
    return first, last


def limit_text(shares: dict[str, float], cores: int, consumers: int) -> str:
    """What held the rate back, in words, from where the cores' time went in the steady part."""
    busy = sum(shares.values())
    others = shares.get(OTHERS, 0.0)
    ours = busy - others
    per_consumer = shares.get("consumers", 0.0) / max(consumers, 1)
    parts = ", ".join(f"{name} {share:.2f}" for name, share in sorted(shares.items(), key=lambda kv: -kv[1]))
    if per_consumer >= 0.85:
        return (f"each consumer process used a whole core ({per_consumer:.2f}; the interpreter runs one thread at "
                f"a time), so one core per process is the limit; {busy:.2f} of {cores} cores busy ({parts})")
    if busy >= 0.85 * cores and others >= 0.5:
        return (f"CPU, shared with other work: {busy:.2f} of {cores} cores busy ({parts}), so the destination's "
                f"processes got only {ours:.2f} cores; each further process gets its own share of a contended "
                "machine, so a speed-up measured here overstates what a quiet 2-core machine would show")
    if busy >= 0.85 * cores:
        return (f"CPU: {busy:.2f} of {cores} cores busy ({parts}); consumers, emulator and broker share the "
                "cores, so a further consumer process can only take CPU from the others")
    return (f"not CPU ({busy:.2f} of {cores} cores busy: {parts}); the rest of the time the consumers wait "
            "(batch linger, round trips to the emulator, sync-log commits)")


def drain(n: int, distinct: int, consumers: int, repeats: str) -> dict[str, Any]:
    """Fill a fresh topic with the n events and drain it with `consumers` processes in one group."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        emulator, emulator_port = start_emulator(folder)
        broker, broker_port = start_broker()
        kafka = kafka_config(broker_port)
        config = write_config(folder, emulator_port, "rest", kafka)
        asyncio.run(_fill("kafka", folder, kafka, n, distinct, repeats))
        asyncio.run(_create_sync_log(folder / "sync.db"))
        procs = [subprocess.Popen([sys.executable, "-m", "destination", "--config", str(config), "run",
                                   "--consumer-only"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  cwd=folder) for _ in range(consumers)]
        started = time.monotonic()
        samples: list[Sample] = []
        peak = 0.0
        try:
            while True:
                peak = max(peak, sum(rss_mb(p.pid) for p in procs))
                sample = Sample(time.monotonic(), _outcomes(folder / "sync.db"),
                                sum(cpu_seconds(p.pid) for p in procs), cpu_seconds(emulator.pid),
                                cpu_seconds(broker.pid), machine_busy_seconds())
                samples.append(sample)
                if sample.done >= n or sample.at - started > 1800 or any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.5)
            wall = time.monotonic() - started
            stats = emulator_stats(folder, emulator_port)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            emulator.terminate()
            emulator.wait(timeout=30)
            broker.terminate()
            broker.wait(timeout=10)
    done = samples[-1].done
    if done < n:
        raise RuntimeError(f"{consumers} consumer(s) recorded {done} of {n} outcomes (a process ended early?)")
    window = steady(samples, n)
    cores = os.cpu_count() or 1
    result: dict[str, Any] = {"consumers": consumers, "events": n, "wall_seconds": round(wall, 1),
                              "events_per_second": round(done / wall), "api_calls": stats["api_calls"]["total"],
                              "floor": floor_of(stats), "consumers_peak_rss_mb": round(peak)}
    if window is not None:
        a, b = window
        seconds, events = b.at - a.at, b.done - a.done
        ours = {"consumers": b.consumers - a.consumers, "emulator": b.emulator - a.emulator,
                "broker": b.broker - a.broker}
        shares = {k: v / seconds for k, v in ours.items()}
        shares[OTHERS] = max(0.0, (b.machine - a.machine) / seconds - sum(shares.values()))
        result.update({"steady_events_per_second": round(events / seconds),
                       "steady_cpu_us_per_event": round(ours["consumers"] / events * 1e6),
                       "steady_cores_busy": {k: round(v, 2) for k, v in shares.items()},
                       "limit": limit_text(shares, cores, consumers)})
    return result


def run(n: int = 100_000, distinct: int = 50_000, repeats: str = "near") -> dict[str, Any]:
    """One consumer, then two, on the same events; the two-consumer figures at the top level."""
    one = drain(n, distinct, 1, repeats)
    two = drain(n, distinct, 2, repeats)
    rate = "steady_events_per_second" if "steady_events_per_second" in one and "steady_events_per_second" in two \
        else "events_per_second"
    return {"benchmark": "scaleout_kafka_rest", "events": n, "repeats": repeats,
            "events_per_second": two["events_per_second"], "api_calls": two["api_calls"], "floor": two["floor"],
            "steady_cpu_us_per_event": two.get("steady_cpu_us_per_event"),
            "speedup_two_over_one": round(two[rate] / one[rate], 2), "speedup_measured_on": rate,
            "one_consumer": one, "two_consumers": two,
            "limit": f"one consumer: {one.get('limit')}; two consumers: {two.get('limit')}"}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
