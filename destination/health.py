"""What a component remembers about its own work for /readyz: when it last succeeded and last failed, and
why. The component records it as it works (an append, a fetch, a sync-log write); a readiness probe only
reads it, so a probe never calls the broker, the database or Salesforce."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

FAILURE_HOLD_SECONDS = 30.0


@dataclass
class Health:
    """The last success and failure of one kind of work.

    A failure counts until a later success, or for `hold_seconds` (staleness bound) when nothing else
    happens: an instance taken out of service by its probe gets no traffic, so without the bound a failed
    append would keep it out forever. Work that its owner retries by itself until it succeeds (the
    sync-log writes) uses an infinite hold."""

    hold_seconds: float = FAILURE_HOLD_SECONDS
    succeeded_at: float | None = None
    failed_at: float | None = None
    problem: str = ""

    def success(self) -> None:
        self.succeeded_at = time.monotonic()

    def failure(self, problem: str) -> None:
        self.failed_at = time.monotonic()
        self.problem = problem[:300]

    def failing(self) -> str | None:
        """Why the work is failing now (None: it is not), with how long ago it last failed."""
        if self.failed_at is None or (self.succeeded_at is not None and self.succeeded_at >= self.failed_at):
            return None
        age = time.monotonic() - self.failed_at
        if not math.isinf(self.hold_seconds) and age > self.hold_seconds:
            return None
        return f"{self.problem} ({age:.0f} s ago)"
