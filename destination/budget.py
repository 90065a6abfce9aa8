"""API budget: delivery pauses when usage passes a ceiling of the daily allocation, and when Salesforce
answers REQUEST_LIMIT_EXCEEDED; it resumes as usage falls. Nothing is dropped while paused."""

from __future__ import annotations

import asyncio
import logging

from .salesforce.client import SalesforceClient
from .salesforce.errors import SalesforceApiError

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

    async def wait(self, client: SalesforceClient) -> None:
        """Return once usage is under the ceiling (re-reading /limits while paused)."""
        while self.over(client):
            if not self.paused:
                self.pauses += 1
                log.warning("API usage %s/%s is over %.0f%% of the daily allocation: delivery paused",
                            client.usage.used, client.usage.max, self.ceiling * 100)
            self.paused = True
            await asyncio.sleep(self.recheck_seconds)
            try:
                await client.limits()
            except SalesforceApiError:
                continue
        if self.paused:
            log.warning("API usage back under the ceiling: delivery resumed")
        self.paused = False

    async def rate_limited(self, client: SalesforceClient, exc: SalesforceApiError) -> None:
        """Salesforce refused a call with REQUEST_LIMIT_EXCEEDED: wait, then let the caller retry."""
        self.pauses += 1
        self.paused = True
        log.warning("REQUEST_LIMIT_EXCEEDED (%s): delivery paused for %.0f s", exc, self.recheck_seconds)
        await asyncio.sleep(self.recheck_seconds)
        self.paused = False
        del client
