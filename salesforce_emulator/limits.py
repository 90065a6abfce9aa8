"""API usage: every data call counted as Salesforce counts it, reported in Sforce-Limit-Info."""

from __future__ import annotations

import threading
from collections import Counter

from fastapi import FastAPI


class ApiUsage:
    """Calls made today, by endpoint and in total, against a daily maximum."""

    def __init__(self, daily_max: int) -> None:
        self.daily_max = daily_max
        self.total = 0
        self.by_endpoint: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, endpoint: str) -> int:
        """Record one call; returns the new total."""
        with self._lock:
            self.total += 1
            self.by_endpoint[endpoint] += 1
            return self.total

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_endpoint.clear()

    def header(self) -> str:
        return f"api-usage={self.total}/{self.daily_max}"


def install_limits(app: FastAPI, state: object) -> None:
    """Install the middleware that counts calls, adds Sforce-Limit-Info and injects request faults."""
    del app, state  # filled in by the limits/faults work
