"""API budget: delivery pauses when usage passes a ceiling of the daily allocation, and when Salesforce
answers REQUEST_LIMIT_EXCEEDED; it resumes as usage falls. Every pause is a wait under the retry policy:
bounded by its maximum total time, after which the caller fails the work with RETRY_EXHAUSTED."""

from __future__ import annotations

import logging

from .retry import Attempts
from .salesforce.client import SalesforceClient
from .salesforce.errors import SalesforceApiError, SalesforceError

log = logging.getLogger("destination.budget")


class Budget:
    """The ceiling (share of the daily allocation) and how often to re-check while paused."""

    def __init__(self, ceiling: float = 0.8, recheck_seconds: float = 30.0) -> None:
        self.ceiling = ceiling
        self.recheck_seconds = recheck_seconds
        self.paused = False
        self.pauses = 0

    def over(self, client: SalesforceClient) -> bool:
        fraction = client.usage.fraction
        return fraction is not None and fraction >= self.ceiling

    async def wait(self, client: SalesforceClient, attempts: Attempts) -> bool:
        """True once usage is under the ceiling (re-reading /limits while paused); False when the policy's
        time ran out first (`attempts.exhausted()` says why)."""
        over = SalesforceError("API_BUDGET_EXCEEDED", f"API usage is over {self.ceiling:.0%} of the daily allocation")
        while self.over(client):
            if not self.paused:
                self.pauses += 1
                log.warning("API usage %s/%s is over %.0f%% of the daily allocation: delivery paused",
                            client.usage.used, client.usage.max, self.ceiling * 100)
            self.paused = True
            if not await attempts.wait(self.recheck_seconds, over):
                log.warning("API usage still over the ceiling after %.0f s: giving up on this batch", attempts.elapsed)
                return False
            try:
                await client.limits()
            except SalesforceApiError:
                continue
        if self.paused:
            log.warning("API usage back under the ceiling: delivery resumed")
        self.paused = False
        return True

    async def rate_limited(self, client: SalesforceClient, exc: SalesforceApiError, attempts: Attempts) -> bool:
        """Salesforce refused a call with REQUEST_LIMIT_EXCEEDED: wait, then True for the caller to retry;
        False when the policy's time is spent."""
        self.pauses += 1
        self.paused = True
        log.warning("REQUEST_LIMIT_EXCEEDED (%s): delivery paused for %.0f s", exc, self.recheck_seconds)
        try:
            return await attempts.wait(self.recheck_seconds, exc.error)
        finally:
            self.paused = False
            del client
