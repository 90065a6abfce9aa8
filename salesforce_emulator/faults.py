"""Injected faults: latency, 503 SERVER_UNAVAILABLE, per-record UNABLE_TO_LOCK_ROW, token lifetime."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """Fault settings and the seeded random source that decides each injection."""

    latency_ms: float = 0.0
    error_503_rate: float = 0.0
    lock_error_rate: float = 0.0
    token_lifetime_seconds: float | None = None
    seed: int | None = None
    limit_exceeded_for_seconds: float = 0.0  # opens a REQUEST_LIMIT_EXCEEDED window of this length, from now
    _limit_until: float = field(default=0.0, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> Faults:
        """Build from YAML or admin JSON keys."""
        faults = cls()
        faults.update(raw)
        return faults

    def update(self, raw: dict[str, Any]) -> None:
        """Change some settings at run time; a new seed restarts the random sequence."""
        known = {"latency_ms", "error_503_rate", "lock_error_rate", "token_lifetime_seconds", "seed",
                 "limit_exceeded_for_seconds"}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        for key, value in raw.items():
            setattr(self, key, value)
        if raw.get("limit_exceeded_for_seconds"):
            self._limit_until = time.monotonic() + float(raw["limit_exceeded_for_seconds"])
        if "seed" in raw:
            self._rng = random.Random(self.seed)

    def roll(self, rate: float) -> bool:
        """True with probability `rate`, drawn from the seeded sequence."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def limit_window_open(self) -> bool:
        """Whether a REQUEST_LIMIT_EXCEEDED window set at run time is still open."""
        return self._limit_until > time.monotonic()

    def lock_error(self) -> bool:
        """Whether this record write should fail with UNABLE_TO_LOCK_ROW."""
        return self.roll(self.lock_error_rate)

    def as_dict(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "error_503_rate": self.error_503_rate,
                "lock_error_rate": self.lock_error_rate, "token_lifetime_seconds": self.token_lifetime_seconds,
                "seed": self.seed, "limit_exceeded_for_seconds": self.limit_exceeded_for_seconds,
                "limit_window_open": self.limit_window_open()}
