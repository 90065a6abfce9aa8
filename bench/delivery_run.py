"""A backlog in the event log (embedded SQLite or Kafka on tansu), drained by `destination run
--consumer-only` in its own process into the emulator in a third process. Reports wall time, events/s,
API calls against the floor, the destination's own CPU per event, and its peak RSS.

CPU per event (`ready_cpu_us_per_event`) is the destination's CPU from the moment it sits started and idle on
the empty log (the events are written then) to its last outcome, over the events: every step of every event,
nothing of start-up. The older `steady_cpu_us_per_event` counts only from the first recorded outcome; with a
coalescing window the destination reads, maps and plans most of the backlog before that, so it leaves that
work out and flatters a windowed run. The memory benchmark writes its backlog first and has no ready figure.

With `BENCH_GC=1`, also the garbage collector's own CPU in the destination (`gc_cpu_us_per_event`, and
collections by generation), from the moment `run` settles the collector (bench/gc_probe)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from destination.config import BatchingConfig, KafkaConfig
from destination.events import Event

from .processes import cpu_by_thread, cpu_seconds, free_port, rss_mb, start_broker, wait_idle
from .synclog_write import message_id

WINDOW_MS = 60_000
ACTIONS = """source: bench
write_keys: [bench-key]
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: upsert
    mode: {mode}
    match: {{any: {{Email: $.traits.email}}}}
    fields: {{Email: $.traits.email, LastName: {{path: $.traits.name, default: X}}, Company: n/a,
             Title: $.traits.title}}
"""


def _user(i: int, n: int, distinct: int, repeats: str) -> int:
    """`far`: user i % distinct, so a user's events are `distinct` events apart (the worst case for
    coalescing); `near`: a user's events follow each other, as identify calls of one sign-up do."""
    return i % distinct if repeats == "far" else i * distinct // n


def _events(n: int, distinct: int, repeats: str = "far") -> list[Event]:
    """The benchmark's identify events. Their messageIds are m0, m1, … unless BENCH_MESSAGE_IDS=random (UUIDs,
    as most Segment libraries send; see synclog_write.message_id)."""
    users = [_user(i, n, distinct, repeats) for i in range(n)]
    ids = os.environ.get("BENCH_MESSAGE_IDS", "sequential")
    return [Event("bench", {"type": "identify", "userId": f"user{u}", "messageId": message_id(i, ids),
                            "timestamp": "2026-01-01T00:00:00Z",
                            "traits": {"email": f"user{u}@example.com", "title": f"T{i}"}})
            for i, u in enumerate(users)]


async def _fill(kind: str, folder: Path, kafka: KafkaConfig | None, n: int, distinct: int, repeats: str) -> None:
    if kind == "kafka":
        from destination.eventlog.kafka import KafkaEventLog

        log: Any = KafkaEventLog(kafka)  # type: ignore[arg-type]
    else:
        from destination.eventlog.sqlite import SqliteEventLog

        log = SqliteEventLog(folder / "events.db")
    async with log:
        events = _events(n, distinct, repeats)
        for start in range(0, n, 5000):
            await log.append(events[start:start + 5000])


def _outcomes(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM sync_log").fetchone()[0])
    except sqlite3.Error:
        return 0


def start_emulator(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The emulator (HTTPS, its CA in folder/tls) in its own process once its CA exists, and its port."""
    port = free_port()
    emulator = subprocess.Popen([sys.executable, "-m", "salesforce_emulator", "--port", str(port),
                                 "--tls-dir", str(folder / "tls")], stdout=subprocess.DEVNULL,
                                stderr=open(os.environ["BENCH_EMULATOR_LOG"], "w") if os.environ.get("BENCH_EMULATOR_LOG") else subprocess.DEVNULL)
    for _ in range(100):
        if (folder / "tls" / "ca.pem").exists():
            break
        time.sleep(0.1)
    time.sleep(1.0)
    return emulator, port


def write_config(folder: Path, emulator_port: int, mode: str, kafka: KafkaConfig | None) -> Path:
    """The bench action and a destination.yaml for the emulator and the event log (Kafka when given)."""
    (folder / "actions").mkdir(exist_ok=True)
    (folder / "actions" / "bench.yaml").write_text(ACTIONS.format(mode=mode))
    config = folder / "destination.yaml"
    # the coalescing window where the destination has one (a baseline checkout may predate it: its strict
    # config would refuse the key)
    window = f", window_ms: {WINDOW_MS}" if "window_ms" in BatchingConfig.model_fields else ""
    kafka_lines = (f"event_log: {{kind: kafka}}\nkafka: {{bootstrap_servers: '{kafka.bootstrap_servers}', "
                   "idempotent: false}\n") if kafka else f"event_log: {{path: {folder / 'events.db'}}}\n"
    config.write_text(f"""connections:
  default:
    login_url: https://127.0.0.1:{emulator_port}
    auth: {{method: client_credentials, client_id: emulator-client, client_secret: emulator-secret}}
    ca_bundle: {folder / 'tls' / 'ca.pem'}
    allowed_hosts: [127.0.0.1]
actions_dir: {folder / 'actions'}
sync_log_url: sqlite:///{folder / 'sync.db'}
batching: {{linger_ms: 200{window}}}
{kafka_lines}""")
    return config


def kafka_config(broker_port: int) -> KafkaConfig:
    return KafkaConfig(bootstrap_servers=f"127.0.0.1:{broker_port}", idempotent=False,
                       create_topics={"enabled": True, "replication_factor": 1})


def emulator_stats(folder: Path, emulator_port: int) -> dict[str, Any]:
    return httpx.get(f"https://127.0.0.1:{emulator_port}/__admin/stats",
                     verify=ssl.create_default_context(cafile=folder / "tls" / "ca.pem")).json()


def floor_of(stats: dict[str, Any]) -> int:
    """Each record written once in collections of 200, plus the lookups made."""
    return -(-stats["records"].get("Lead", 0) // 200) + stats["api_calls"]["by_endpoint"].get("query", 0)


def run(n: int = 100_000, distinct: int = 50_000, mode: str = "rest", kind: str = "kafka",
        stop_after: float | None = None, repeats: str = "far") -> dict[str, Any]:
    """Drain a backlog of `n` events; with `stop_after` seconds, stop early (the memory benchmark)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        emulator, emulator_port = start_emulator(folder)
        broker = None
        kafka = None
        if kind == "kafka":
            broker, broker_port = start_broker()
            kafka = kafka_config(broker_port)
        config = write_config(folder, emulator_port, mode, kafka)
        # the memory benchmark faces its whole backlog at start; the others fill once the destination is ready
        backlog_first = stop_after is not None
        fill_started = time.monotonic()
        asyncio.run(_fill(kind, folder, kafka, n if backlog_first else 0, distinct, repeats))
        fill_seconds = time.monotonic() - fill_started
        profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        gc_file = folder / "gc.json"
        destination = subprocess.Popen([sys.executable, *profile, "-m", "destination", "--config", str(config), "run",
                                        "--consumer-only"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       cwd=folder, env=_gc_probe_env(gc_file))
        # Start-up (imports, config, describe, joining the group) is left out of the CPU per event: it is counted
        # from the moment the destination sits idle on the empty log. The backlog is written then.
        cpu_ready = None if backlog_first else wait_idle(destination.pid)
        spy = None
        if os.environ.get("BENCH_PYSPY"):  # a sampling profile of the destination (py-spy on PATH or in the venv)
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                                    str(destination.pid), "--format", "raw", "--rate", "250", "--nonblocking",
                                    *os.environ.get("BENCH_PYSPY_ARGS", "").split(), "-o", os.environ["BENCH_PYSPY"]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        if not backlog_first:
            asyncio.run(_fill(kind, folder, kafka, n, distinct, repeats))
            fill_seconds = time.monotonic() - started
        peak = 0.0
        done = 0
        cpu_at_first = None
        done_at_first = 0
        try:
            while True:
                peak = max(peak, rss_mb(destination.pid))
                done = _outcomes(folder / "sync.db")
                if cpu_at_first is None and done:
                    cpu_at_first, done_at_first = cpu_seconds(destination.pid), done
                cpu_now = cpu_seconds(destination.pid)
                elapsed = time.monotonic() - started
                if done >= n or (stop_after and elapsed >= stop_after) or elapsed > 1800:
                    break
                time.sleep(0.5)
            wall = time.monotonic() - started
            threads = cpu_by_thread(destination.pid)
            destination.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(destination.pid, 0)
            del status
            cpu = usage.ru_utime + usage.ru_stime
            stats = emulator_stats(folder, emulator_port)
            collector = json.loads(gc_file.read_text()) if gc_file.exists() else None
        finally:
            if destination.poll() is None:
                destination.kill()
            if spy is not None:
                spy.wait(timeout=30)
            emulator.terminate()
            emulator.wait(timeout=30)
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=10)
    calls = stats["api_calls"]["by_endpoint"]
    records = stats["records"].get("Lead", 0)
    floor = floor_of(stats)
    total = stats["api_calls"]["total"]
    steady = (cpu_now - (cpu_at_first or 0)) / max(done - done_at_first, 1)  # CPU seconds per event
    from_ready = None if cpu_ready is None else (cpu_now - cpu_ready) / max(done, 1)
    name = f"backlog_{kind}_{mode}" + ("_near" if repeats == "near" else "") + ("_memory" if stop_after else "")
    return {"benchmark": name, "events": n, "repeats": repeats,
            "outcomes_recorded": done, "records": records, "fill_seconds": round(fill_seconds, 1),
            "wall_seconds": round(wall, 1), "events_per_second": round(done / wall) if wall else None,
            "api_calls": total, "api_calls_by_endpoint": calls, "floor": floor,
            "ratio_to_floor": round(total / floor, 3) if floor else None, "bulk_jobs": stats.get("bulk_jobs"),
            "destination_cpu_seconds": round(cpu, 1),
            "destination_cpu_us_per_event": round(cpu / done * 1e6) if done else None,
            "ready_cpu_us_per_event": None if from_ready is None else round(from_ready * 1e6),
            "destination_cpu_seconds_by_thread": threads,
            "steady_cpu_us_per_event": round(steady * 1e6),
            "steady_cpu_seconds_per_1000_events": round(steady * 1000, 3),
            "destination_peak_rss_mb": round(peak),
            **({} if collector is None else {
                "gc_by_generation": collector,
                "gc_cpu_us_per_event": round(sum(g["cpu_seconds"] for g in collector.values()) / max(done, 1) * 1e6,
                                             1)})}


def _gc_probe_env(gc_file: Path) -> dict[str, str] | None:
    """With BENCH_GC set, the destination's environment loading bench/gc_probe (the collector's CPU from the
    moment `run` settles it, written to `gc_file`); otherwise None (the environment as it is)."""
    if not os.environ.get("BENCH_GC"):
        return None
    probe = str(Path(__file__).with_name("gc_probe"))
    path = os.pathsep.join(p for p in (probe, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "BENCH_GC": str(gc_file), "PYTHONPATH": path}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
