"""Fixtures of the sync-log tests: every test taking `log_url` or `log` runs against SQLite and a real
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from postgres_server import postgres_server_url, postgres_url  # noqa: F401  (fixtures)

from destination.synclog import SyncLog, open_sync_log


@pytest.fixture(params=["sqlite", "postgres"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A sync-log URL: a SQLite file, or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sync.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def log(log_url: str) -> AsyncIterator[SyncLog]:
    """The sync log at `log_url`, open for the test."""
    async with open_sync_log(log_url) as store:
        yield store
