"""Running `destination run` as a real process that can be SIGKILLed, and sending events that must get a
200 (retrying while the process is down)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
from destination_process import DestinationProcess

__all__ = ["DestinationProcess", "send_until_accepted"]


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
