"""Running `destination run` as a real process that can be SIGKILLed, and sending events that must get a
200 (retrying while the process is down)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx


class DestinationProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "destination", "--config", str(self.config), "run",
                                         "--port", str(self.port)], stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"destination did not start; see {self.log}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def send_until_accepted(url: str, key: str, batch: list[dict[str, Any]], deadline: float, *,
                        seen: Counter[str] | None = None) -> int:
    """POST a batch until it gets a 200 (the process may be down); returns the attempts it took. `seen`
    counts the answers: the status code, or `unreachable` (refused, reset or timed out)."""
    attempts = 0
    while True:
        attempts += 1
        try:
            r = httpx.post(f"{url}/v1/batch", json={"batch": batch}, auth=(key, ""), timeout=10)
        except httpx.HTTPError:
            answer = "unreachable"
        else:
            answer = str(r.status_code)
        if seen is not None:
            seen[answer] += 1
        if answer == "200":
            return attempts
        if time.monotonic() > deadline:
            raise RuntimeError("events were never accepted")
        time.sleep(0.2)
