"""Retry policy: the one place that decides whether, and after how long, anything is tried again.

Every retry or wait on the delivery path goes through an `Attempts` started from one `RetryPolicy`
(settings `retry:`): a request's transient failures (lookups and writes alike, in the client), a record's
transient result (the writer), a token request the token endpoint is busy with, the REQUEST_LIMIT_EXCEEDED
and API-budget pauses, and Bulk job polling. Each is bounded by attempts and by a maximum total time;
when the bound is reached the caller fails the work with `RETRY_EXHAUSTED` (which replay re-drives).

Modelled on dramatiq's Retries middleware (exponential backoff with jitter, capped; a server-given delay
wins) and Vector's retry logic (the decision comes from the error's kind, never from the exception type).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from enum import StrEnum

from .salesforce.errors import ErrorKind, SalesforceError

RETRY_EXHAUSTED = "RETRY_EXHAUSTED"


class Decision(StrEnum):
    """What to do about a failure, by the kind the error taxonomy gives it."""

    RETRY = "retry"          # transient: back off, then send again
    PAUSE = "pause"          # rate limited: wait for the API allowance, then send again
    REFRESH = "refresh"      # auth: get a new token, then send again
    RECONCILE = "reconcile"  # uncertain: look before anything is sent again
    FAIL = "fail"            # permanent: report, never send again


_DECISIONS = {ErrorKind.TRANSIENT: Decision.RETRY, ErrorKind.RATE_LIMITED: Decision.PAUSE,
              ErrorKind.AUTH: Decision.REFRESH, ErrorKind.UNCERTAIN: Decision.RECONCILE,
              ErrorKind.PERMANENT: Decision.FAIL}


def decide(kind: ErrorKind) -> Decision:
    """The decision for an error kind (salesforce/errors.py classifies; this module decides)."""
    return _DECISIONS[kind]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and backoff shared by every retry loop.

    `max_attempts` counts sends of one unit of work (a request, a record); `max_elapsed_seconds` bounds
    the time from its first send, waits and pauses included. Backoff before attempt n+1 is
    `min(backoff_max_seconds, backoff_initial_seconds * 2**(n-1))`, half of it jittered."""

    max_attempts: int = 15
    max_elapsed_seconds: float = 300.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt (equal jitter: between d/2 and d)."""
        ceiling = min(self.backoff_max_seconds, self.backoff_initial_seconds * 2 ** max(failures - 1, 0))
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def start(self) -> Attempts:
        """A fresh budget for one unit of work, its clock starting now."""
        return Attempts(self)


class Attempts:
    """One unit of work's retry budget: failed attempts so far, time since the start, the last error."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0
        self.started = time.monotonic()
        self.last_error: SalesforceError | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def remaining(self) -> float:
        return self.policy.max_elapsed_seconds - self.elapsed

    def allows_another(self, error: SalesforceError) -> bool:
        """Count a failed attempt; whether one more is within the bounds (the caller does its own waiting)."""
        self.failures += 1
        self.last_error = error
        return self.failures < self.policy.max_attempts and self.remaining > 0

    async def retry(self, error: SalesforceError, delay: float | None = None) -> bool:
        """Count a failed attempt and, when another is allowed, wait its backoff (or `delay`, when the server
        or a pause names one) and return True; False when the budget is spent: fail with `exhausted()`.

        A wait is cut to the time left, so the last attempt happens at the deadline rather than never."""
        if not self.allows_another(error):
            return False
        await asyncio.sleep(min(self.policy.backoff(self.failures) if delay is None else delay,
                                max(self.remaining, 0.0)))
        return True

    async def wait(self, seconds: float, error: SalesforceError | None = None) -> bool:
        """A wait that is not a failed send (a pause for the API allowance, Bulk polling): bounded by time
        only. False, without waiting, once the time budget is spent."""
        if error is not None:
            self.last_error = error
        if self.remaining <= 0:
            return False
        await asyncio.sleep(min(seconds, self.remaining))
        return True

    def exhausted(self, what: str = "") -> SalesforceError:
        """The RETRY_EXHAUSTED error: how many attempts over how long, and the last error seen."""
        last = self.last_error
        detail = f"; last error {last.code}: {last.message}" if last is not None else ""
        prefix = f"{what}: " if what else ""
        return SalesforceError(RETRY_EXHAUSTED, f"{prefix}gave up after {max(self.failures, 1)} attempt(s) in "
                               f"{self.elapsed:.1f} s{detail}", last.fields if last is not None else ())
