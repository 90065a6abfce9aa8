"""Injected faults: latency, 503 SERVER_UNAVAILABLE, per-record UNABLE_TO_LOCK_ROW, token lifetime, a
REQUEST_LIMIT_EXCEEDED window, and batch-level trigger errors (an Apex governor limit that fails a whole
write call above a record count, or whenever one poisonous record is in it)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
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
    # A write call (a Collections request, or one 200-row chunk of a Bulk job) with more records than this
    # fails whole: every record CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY "...Apex CPU time limit exceeded".
    trigger_error_above: int | None = None
    # A write call holding a record with a value containing this text fails whole ("Too many SOQL queries").
    trigger_error_marker: str | None = None
    # a data call whose work is done but whose response is lost on the way (an edge proxy's empty 502):
    # the client cannot know whether its write applied
    lost_response_rate: float = 0.0
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
        """Change some settings at run time (all or none); a new seed restarts the random sequence.

        Raises ValueError naming every unknown key or bad value, before changing anything."""
        problems = [f"unknown fault setting: {key}" for key in sorted(set(raw) - set(_CHECKS))]
        problems += [f"{key}: {_CHECKS[key][1]}, not {value!r}" for key, value in raw.items()
                     if key in _CHECKS and not _CHECKS[key][0](value)]
        if problems:
            raise ValueError("; ".join(problems))
        for key, value in raw.items():
            setattr(self, key, value)
        if "limit_exceeded_for_seconds" in raw:  # 0 closes a window that is still open
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

    def trigger_error(self, obj: str, records: list[list[Any]]) -> tuple[str, str] | None:
        """(code, message) failing every record of this write call (records as lists of their values), or
        None. What a trigger or flow hitting a governor limit does to a whole transaction in Salesforce."""
        if self.trigger_error_above is not None and len(records) > self.trigger_error_above:
            return ("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                    f"{obj}Trigger: execution of BeforeInsert caused by: System.LimitException: "
                    "Apex CPU time limit exceeded")
        marker = self.trigger_error_marker
        if marker and any(isinstance(v, str) and marker in v for values in records for v in values):
            return ("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                    f"{obj}Trigger: System.LimitException: Too many SOQL queries: 101")
        return None

    def as_dict(self) -> dict[str, Any]:
        """The settings, and whether a REQUEST_LIMIT_EXCEEDED window is open now (admin GET /faults)."""
        return {"latency_ms": self.latency_ms, "error_503_rate": self.error_503_rate,
                "lock_error_rate": self.lock_error_rate, "token_lifetime_seconds": self.token_lifetime_seconds,
                "seed": self.seed, "limit_exceeded_for_seconds": self.limit_exceeded_for_seconds,
                "limit_window_open": self.limit_window_open(), "trigger_error_above": self.trigger_error_above,
                "trigger_error_marker": self.trigger_error_marker, "lost_response_rate": self.lost_response_rate}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Each setting: the check its value must pass, and what that check asks for (in the error message).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "latency_ms": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "error_503_rate": (lambda v: _number(v) and 0 <= v <= 1, "a rate between 0 and 1"),
    "lock_error_rate": (lambda v: _number(v) and 0 <= v <= 1, "a rate between 0 and 1"),
    "token_lifetime_seconds": (lambda v: v is None or (_number(v) and v > 0), "a number > 0 or null"),
    "seed": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "an integer or null"),
    "limit_exceeded_for_seconds": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "trigger_error_above": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                            "an integer >= 0 or null"),
    "trigger_error_marker": (lambda v: v is None or (isinstance(v, str) and v != ""), "a non-empty text or null"),
    "lost_response_rate": (lambda v: _number(v) and 0 <= v <= 1, "a rate between 0 and 1"),
}
