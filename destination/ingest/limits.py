"""Per-write-key request rate: a token bucket per key, so one client (a runaway loop, a leaked browser key)
gets 429 with Retry-After instead of taking the ingest API's time from every other source."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

_MAX_KEYS = 10_000  # buckets kept; a full bucket of an idle key carries no state worth keeping


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class KeyRateLimit:
    """`rate` requests per second per key with bursts up to `burst`; `rate <= 0` turns the limit off. Only
    known keys reach it (unknown ones are refused first), so the buckets stay as few as the configured keys."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._now = time.monotonic
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait_seconds(self, key: str) -> float:
        """0 when a request of `key` may go ahead now (and takes a token); otherwise how long until one may."""
        if self.rate <= 0:
            return 0.0
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            if len(self._buckets) > _MAX_KEYS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(seconds: float) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(seconds)))

