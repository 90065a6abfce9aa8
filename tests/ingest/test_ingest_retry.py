"""A client that times out and retries while its first request is still being appended: the retry's 200
waits for that append, and when it fails the retry stores the events itself — never a 200 for an event
that is not durable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
from fastapi import FastAPI
from ingest_support import SOURCES

from destination.eventlog.base import EventLog, LogUnavailable
from destination.events import Event
from destination.ingest.app import Ingest
from destination.ingest.keys import WriteKeys


class _SlowThenFailing(EventLog):
    """The first append waits for `release` and then fails (a broker outage); later appends succeed."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0
        self.stored: list[str] = []

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, events: Sequence[Event]) -> None:
        self.calls += 1
        if self.calls == 1:
            await self.release.wait()
            raise LogUnavailable("the broker did not acknowledge")
        self.stored += [e.body["messageId"] for e in events]


async def test_a_retry_during_a_failing_append_is_answered_only_once_stored() -> None:
    log = _SlowThenFailing()
    app = FastAPI()
    app.include_router(Ingest(WriteKeys(SOURCES), log).router)
    batch = {"batch": [{"type": "track", "event": "e", "userId": "u", "messageId": f"m{i}"} for i in range(3)]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest",
                                 auth=("web-key", "")) as client:
        first = asyncio.create_task(client.post("/v1/batch", json=batch))
        while log.calls == 0:  # noqa: ASYNC110 - the fake log exposes only a counter
            await asyncio.sleep(0.01)
        retry = asyncio.create_task(client.post("/v1/batch", json=batch))
        await asyncio.sleep(0.1)
        assert not retry.done()  # not a 200 while the first append may still fail
        log.release.set()
        assert (await first).status_code == 503
        assert (await retry).status_code == 200
    assert log.stored == ["m0", "m1", "m2"]  # the retry stored what the failed append did not
