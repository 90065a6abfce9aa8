"""Sync-back tests: a Kafka broker (tansu) for the published changes; PostgreSQL for the sync log variant; a
Segment-compatible HTTP endpoint."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kafka_broker import kafka_bootstrap
from postgres_server import postgres_server_url, postgres_url
from sync_back_support import serve_collector


@pytest.fixture
async def collector() -> AsyncIterator[Any]:
    """(Collector, port): a Segment-compatible batch endpoint on a real socket."""
    async for served in serve_collector():
        yield served


__all__ = ["collector", "kafka_bootstrap", "postgres_server_url", "postgres_url"]
