"""Slow clients (slowloris) and a well-behaved client's latency against a running ingest API: shared by the
fast check in make test and the longer measurement in tests/slow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

AUTH = ("web-app-demo-key", "")
EVENT = {"userId": "u1", "event": "Viewed", "properties": {"page": "/pricing"}}


async def _trickle(port: int, body: bool, stop: asyncio.Event, every: float) -> int:
    """One attacker: connects, sends a request head (or, with `body`, a head and then a body) one byte at a
    time, and reconnects whenever the server closes the connection. Returns how often it was cut off."""
    cut = 0
    head = b"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(every)
            continue
        try:
            if body:
                writer.write(head + b"Authorization: Basic d2ViLWFwcC1kZW1vLWtleTo=\r\nContent-Length: 100000\r\n\r\n")
                drip = b"{"
            else:
                writer.write(head[:10])
                drip = b"X"
            while not stop.is_set():
                writer.write(drip)
                await writer.drain()
                try:
                    await asyncio.wait_for(reader.read(1024), every)
                except TimeoutError:
                    continue
                break  # answered (408) or closed by the server
        except OSError:
            pass
        finally:
            writer.close()
        cut += 0 if stop.is_set() else 1
    return cut


async def _attack(port: int, count: int, every: float) -> None:
    """Runs in the attackers' own process: trickles until stdin closes, then prints how often each was cut off."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_trickle(port, i % 2 == 1, stop, every)) for i in range(count)]
    print("trickling", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    print(json.dumps(await asyncio.gather(*tasks)), flush=True)


@contextlib.asynccontextmanager
async def slow_connections(port: int, count: int = 50, every: float = 0.2) -> AsyncIterator[list[int]]:
    """`count` slow connections held open (half trickling headers, half bodies) for the block.

    The attackers run in a process of their own, as they would on other machines: sharing the measuring client's
    event loop, their reconnect bursts delayed the client itself and were counted as the server's latency.
    Yields a list that holds, after the block, how often each attacker was cut off; an attacker that crashed
    fails the block."""
    attackers = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"import asyncio, slow_clients; asyncio.run(slow_clients._attack({port}, {count}, {every}))",
        cwd=Path(__file__).parent, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert attackers.stdin and attackers.stdout
    cut: list[int] = []
    try:
        assert await attackers.stdout.readline() == b"trickling\n"
        await asyncio.sleep(1)  # all connected and trickling
        yield cut
    finally:
        attackers.stdin.close()
        out, _ = await attackers.communicate()
    assert attackers.returncode == 0, "an attacker process failed"
    cut.extend(json.loads(out))


async def latencies(port: int, requests: int) -> list[float]:
    """Seconds per request of a well-behaved client sending one small track call at a time."""
    out = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=30) as http:
        for _ in range(requests):
            started = time.perf_counter()
            r = await http.post("/v1/track", json=EVENT)
            out.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text
    return out


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
