"""/readyz: whether this process can do its job now, per process kind — an ingest process needs its event log
to take appends; a consumer needs its consume loop reading, its sync log recording and a Salesforce token
per connection; `run` (both) needs all of it. Each check reads state its component keeps as it works
(destination/health.py), so a probe costs no request to the broker, the database or Salesforce. Salesforce
tokens are the exception that needs a request now and then: while a connection holds no usable token, one
is requested every `TOKEN_RECHECK_SECONDS` in the background (never per probe), so readiness comes back by
itself once the login endpoint accepts the credentials again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .background import in_background
from .consume import Consumer
from .eventlog.base import EventLog
from .pipeline import Pipeline
from .salesforce.client import SalesforceClient

TOKEN_RECHECK_SECONDS = 30.0


@dataclass(frozen=True)
class Readiness:
    """The answer of /readyz: each check by name, None when it passes, else why it fails (no secrets)."""

    checks: dict[str, str | None]

    @property
    def ready(self) -> bool:
        return all(problem is None for problem in self.checks.values())

    def to_json(self) -> dict[str, object]:
        return {"ready": self.ready,
                "checks": {name: {"ok": True} if problem is None else {"ok": False, "problem": problem}
                           for name, problem in self.checks.items()}}


def readiness(*, event_log: EventLog | None = None, consumer: Consumer | None = None,
              pipeline: Pipeline | None = None, clients: Mapping[str, SalesforceClient] | None = None) -> Readiness:
    """The checks of the parts this process runs: `event_log` for ingest; `consumer`, `pipeline` (its sync-log
    writes) and `clients` (their tokens) for delivery."""
    checks: dict[str, str | None] = {}
    if event_log is not None:
        checks["event_log"] = event_log.readiness()
    if consumer is not None:
        checks["consumer"] = consumer.readiness()
    if pipeline is not None:
        checks["sync_log"] = pipeline.recording.failing()
    for name, client in (clients or {}).items():
        problem = client.tokens.problem
        checks[f"salesforce:{name}"] = None if problem is None else f"no usable access token: {problem}"
    return Readiness(checks)


@asynccontextmanager
async def watching_tokens(clients: Mapping[str, SalesforceClient],
                          every: float = TOKEN_RECHECK_SECONDS) -> AsyncIterator[None]:
    """While the block runs: request a token for each connection that holds no usable one, at once and then
    every `every` seconds (a connection with a good token costs nothing)."""
    async def recheck() -> None:
        while True:
            for client in clients.values():
                await client.tokens.recheck()
            await asyncio.sleep(every)

    async with in_background(recheck()):
        yield
