"""A lean HTTP/1.1 load generator for the ingest benchmark, meant to run in its own process
(`python -m bench.loadgen HOST PORT --mode closed|open ...`); it prints one JSON object on stdout.

It keeps `connections` keep-alive sockets open and writes pre-encoded `/v1/batch` requests (headers and
body built before the clock starts), reading each response by its Content-Length — no HTTP library, no
per-request allocation beyond the response bytes, uvloop when installed, so the load costs the server
little of the machine's CPU.

- closed: every connection sends its next request as soon as the previous answer arrived
  (saturation: events/s the server sustains with `connections` requests in flight).
- open: request i is *scheduled* at start + i / rate; a free connection takes the next scheduled request
  and sends it at its scheduled time (or at once, when it is already late). Latency is measured from the
  scheduled time, so a slow server is charged for the requests it made wait (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import resource
import time
from typing import Any


def batch_body(tag: str, seq: int, events: int = 100) -> bytes:
    """One /v1/batch body of `events` identify events with messageIds unique to (tag, seq)."""
    items = [{"type": "identify", "userId": f"u{tag}{seq}-{i}", "messageId": f"b{tag}{seq}-{i}",
              "traits": {"email": f"u{tag}{seq}-{i}@example.com", "plan": "pro"}} for i in range(events)]
    return json.dumps({"batch": items}, separators=(",", ":")).encode()


def encode_request(host: str, port: int, body: bytes, write_key: str) -> bytes:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    head = (f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _response(reader: asyncio.StreamReader) -> int:
    """Read one response; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length is None:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    if length:
        await reader.readexactly(length)
    return status


async def _run(host: str, port: int, mode: str, requests: list[bytes], connections: int, rate: float) -> dict[str, Any]:
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    before = resource.getrusage(resource.RUSAGE_SELF)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = itertools.count()
    total = len(requests)
    clock = time.perf_counter
    start = clock() + 0.01
    finished = start

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal finished
        while True:
            i = next(next_index)
            if i >= total:
                return
            if mode == "open":
                scheduled = start + i / rate
                delay = scheduled - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                scheduled = clock()
            writer.write(requests[i])
            status = await _response(reader)
            done = clock()
            latencies.append(done - scheduled)
            statuses[status] = statuses.get(status, 0) + 1
            finished = max(finished, done)

    if mode == "closed":
        start = clock()
    await asyncio.gather(*(worker(r, w) for r, w in streams))
    for _, writer in streams:
        writer.close()
    wall = finished - start
    latencies.sort()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"mode": mode, "requests": total, "connections": connections, "wall_seconds": wall,
            "requests_per_second": total / wall if wall > 0 else 0.0, "statuses": statuses,
            "p50_ms": _quantile(latencies, 0.50) * 1000, "p99_ms": _quantile(latencies, 0.99) * 1000,
            "max_ms": latencies[-1] * 1000 if latencies else 0.0,
            "mean_ms": sum(latencies) / len(latencies) * 1000 if latencies else 0.0,
            "loadgen_cpu_seconds": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime}


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=300.0, help="open mode: requests per second offered")
    parser.add_argument("--events", type=int, default=100, help="events per /v1/batch request")
    parser.add_argument("--tag", default="", help="makes messageIds unique across runs")
    parser.add_argument("--write-key", default="web-app-demo-key")
    args = parser.parse_args()
    requests = [encode_request(args.host, args.port, batch_body(args.tag, i, args.events), args.write_key)
                for i in range(args.requests)]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    result = runner(_run(args.host, args.port, args.mode, requests, args.connections, args.rate))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
