"""Ingest tests: the real HTTP API on a loopback port, in front of a real embedded event log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ingest_support import IngestServer, serve_ingest


@pytest.fixture
async def ingest(tmp_path: Path) -> AsyncIterator[IngestServer]:
    async with serve_ingest(tmp_path) as server:
        yield server
