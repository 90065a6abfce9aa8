"""An ingest server for tests: the real HTTP API on a loopback port, in front of a real embedded event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from hypothesis import strategies as st
from running_emulator import free_port

from destination.actions.loader import load_text
from destination.config import IngestConfig
from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.ingest.app import Ingest, IngestFastPath
from destination.ingest.keys import WriteKeys

# any JSON, and objects whose keys are the Segment spec's fields with any JSON values (hypothesis)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
_EVENT_FIELDS = st.sampled_from(["type", "userId", "anonymousId", "groupId", "previousId", "event", "messageId",
                                 "timestamp", "sentAt", "originalTimestamp", "context", "traits", "properties",
                                 "integrations", "name", "writeKey", "batch"])
EVENT_BODIES = st.dictionaries(_EVENT_FIELDS, JSON_VALUES, max_size=8)

SOURCES = {name: load_text(f"source: {name}\nwrite_keys: [{key}]\nactions:\n  - name: a\n    when: type exists\n"
                           "    object: Lead\n    operation: create\n", f"{name}.yaml")
           for name, key in (("web", "web-key"), ("app", "app-key"))}


@dataclass
class IngestServer:
    url: str
    log: SqliteEventLog
    path: Path

    async def logged(self) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
        consumer = SqliteLogConsumer(self.path, consumer="test-reader")
        await consumer.start()
        records = await consumer.fetch(10_000, wait_seconds=0.05)
        await consumer.stop()
        return [(r.event.source, r.event.body) for r in records if r.event]




@asynccontextmanager
async def serve_ingest(tmp_path: Path, limits: IngestConfig | None = None,
                       server_options: dict[str, Any] | None = None) -> AsyncIterator[IngestServer]:
    """Serve the ingest API on a free port for the duration of the block (`server_options`: uvicorn's)."""
    path = tmp_path / "events.db"
    async with SqliteEventLog(path) as log:
        app = FastAPI()
        ingest = Ingest(WriteKeys(SOURCES), log, limits=limits)
        app.include_router(ingest.router)
        app.add_middleware(IngestFastPath, ingest=ingest)  # as the service serves it
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off", **(server_options or {})))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        try:
            yield IngestServer(f"http://127.0.0.1:{port}", log, path)
        finally:
            server.should_exit = True
            await task
