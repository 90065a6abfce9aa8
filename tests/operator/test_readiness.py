"""/readyz reflects the parts a process runs, from the state they keep: the embedded event log when it is full
(SQLite's own SQLITE_FULL, through `max_page_count` on the log's connection), the sync log when it cannot
record, Salesforce when the emulator refuses the token — 503 naming the failing check, then 200 again once
the part recovers. And an ingest-only process counts the events it accepted."""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from running_emulator import CLIENT_ID, RunningEmulator
from settings_support import OPERATOR, settings_file

from destination.config import load_settings
from destination.service import Service, build

WRITE_KEY = ("web-app-demo-key", "")
UNLIMITED = 1_073_741_823  # SQLite's default max_page_count


def _lead(n: int, padding: int = 20_000) -> dict[str, Any]:
    """An identify event large enough to need new database pages wherever it is stored."""
    return {"type": "identify", "userId": f"ready-{n}", "messageId": f"ready-{n}",
            "traits": {"email": f"ready-{n}@x.example", "last_name": "Ready", "notes": "x" * padding}}


def _connection(part: Any) -> sqlite3.Connection:
    """The SQLite connection an embedded part writes through (max_page_count holds per connection)."""
    db = part._db
    assert isinstance(db, sqlite3.Connection)
    return db


def _fill(db: sqlite3.Connection) -> None:
    """Make a SQLite database full as a full disk would: no page beyond those it has."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def _free(db: sqlite3.Connection) -> None:
    db.execute(f"PRAGMA max_page_count = {UNLIMITED}")


async def _readyz_until(http: httpx.AsyncClient, status: int, seconds: float = 20) -> dict[str, Any]:
    """The /readyz body once it answers `status` (fails with the last answer when it never does)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        r = await http.get("/readyz")
        if r.status_code == status:
            return r.json()
        assert asyncio.get_running_loop().time() < deadline, (status, r.status_code, r.text)
        await asyncio.sleep(0.05)


@asynccontextmanager
async def _running(config: Path, *, consume: bool = True) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """A destination built from `config` in this process (its consume loop running when `consume`)."""
    async with AsyncExitStack() as stack:
        service = await build(load_settings(config), stack, consume=consume)
        task = asyncio.create_task(service.consumer.run()) if service.consumer is not None else None
        if service.pipeline is not None:
            service.pipeline.record_backoff = (0.05, 0.2)
        transport = httpx.ASGITransport(app=service.app())
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                yield service, http
        finally:
            if service.consumer is not None and task is not None:
                service.consumer.stop()
                await task


async def test_readyz_is_503_while_the_embedded_event_log_is_full_and_200_once_it_takes_appends_again(
        tls_emulator: RunningEmulator, tmp_path: Path) -> None:
    async with _running(settings_file(tmp_path, tls_emulator)) as (service, http):
        ready = await _readyz_until(http, 200)
        assert ready == {"ready": True, "checks": {"event_log": {"ok": True}, "consumer": {"ok": True},
                                                   "sync_log": {"ok": True}, "salesforce:default": {"ok": True}}}
        _fill(_connection(service.event_log))
        refused = await http.post("/v1/batch", json={"batch": [_lead(n) for n in range(5)]}, auth=WRITE_KEY)
        assert refused.status_code == 503 and refused.json()["code"] == "log_unavailable"
        body = (await http.get("/readyz"))
        assert body.status_code == 503
        checks = body.json()["checks"]
        assert checks["event_log"]["ok"] is False and "database or disk is full" in checks["event_log"]["problem"]
        assert all(checks[name] == {"ok": True} for name in ("consumer", "sync_log", "salesforce:default"))
        _free(_connection(service.event_log))
        accepted = await http.post("/v1/batch", json={"batch": [_lead(n) for n in range(5)]}, auth=WRITE_KEY)
        assert accepted.status_code == 200
        assert (await _readyz_until(http, 200))["ready"] is True


async def test_readyz_is_503_while_the_sync_log_cannot_record_and_200_once_it_records_again(
        tls_emulator: RunningEmulator, tmp_path: Path) -> None:
    async with _running(settings_file(tmp_path, tls_emulator)) as (service, http):
        await _readyz_until(http, 200)
        _fill(_connection(service.sync_log))
        assert (await http.post("/v1/identify", json=_lead(1), auth=WRITE_KEY)).status_code == 200
        checks = (await _readyz_until(http, 503))["checks"]
        assert checks["sync_log"]["ok"] is False and "database or disk is full" in checks["sync_log"]["problem"]
        assert checks["event_log"] == checks["consumer"] == {"ok": True}
        _free(_connection(service.sync_log))
        await _readyz_until(http, 200)  # the pipeline's own retry recorded the outcome
        rows = (await http.get("/v1/sync-log", headers=OPERATOR)).json()["rows"]
        assert [(r["message_id"], r["status"]) for r in rows] == [("ready-1", "succeeded")]


async def test_readyz_is_503_while_salesforce_refuses_the_token_and_200_once_it_issues_one_again(
        tls_emulator: RunningEmulator, tmp_path: Path) -> None:
    app = next(c for c in tls_emulator.state.org.clients if c.client_id == CLIENT_ID)
    secret = app.client_secret
    config = settings_file(tmp_path, tls_emulator, "readiness: {token_recheck_seconds: 0.2}\n")
    try:
        async with _running(config) as (service, http):
            await _readyz_until(http, 200)
            # the connected app's secret is rotated in Salesforce and the session revoked: the next call gets a
            # 401, the client asks for a new token, and the login endpoint refuses the old secret
            app.client_secret = "rotated-elsewhere"
            held = service.clients["default"].tokens._token
            assert held is not None
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(tls_emulator.ca_pem))) as sf:
                revoke = await sf.post(f"{tls_emulator.url}/services/oauth2/revoke",
                                       data={"token": held.access_token})
            assert revoke.status_code == 200
            assert (await http.post("/v1/identify", json=_lead(2, 10), auth=WRITE_KEY)).status_code == 200
            checks = (await _readyz_until(http, 503))["checks"]
            problem = checks["salesforce:default"]["problem"]
            assert checks["salesforce:default"]["ok"] is False and "invalid_client" in problem, problem
            assert "rotated-elsewhere" not in str(checks) and (secret or "") not in str(checks)
            assert checks["event_log"] == checks["consumer"] == checks["sync_log"] == {"ok": True}
            app.client_secret = secret
            await _readyz_until(http, 200)  # the background recheck got a token: no event needed
    finally:
        app.client_secret = secret


async def test_an_ingest_only_process_counts_the_events_it_accepted_and_is_ready_with_its_event_log_alone(
        tls_emulator: RunningEmulator, tmp_path: Path) -> None:
    async with _running(settings_file(tmp_path, tls_emulator), consume=False) as (service, http):
        assert service.consumer is None
        ready = await _readyz_until(http, 200)
        assert ready == {"ready": True, "checks": {"event_log": {"ok": True}}}
        batch = {"batch": [_lead(n, 10) for n in range(3)]}
        assert (await http.post("/v1/batch", json=batch, auth=WRITE_KEY)).status_code == 200
        assert (await http.post("/v1/batch", json=batch, auth=WRITE_KEY)).status_code == 200  # repeats: not again
        metrics = (await http.get("/metrics", headers=OPERATOR)).text
        assert 'destination_events_accepted_total{source="web-app"} 3.0' in metrics
        assert 'destination_events_consumed_total{' not in metrics


async def test_a_full_run_counts_events_accepted_and_consumed_and_reports_the_embedded_log_lag(
        tls_emulator: RunningEmulator, tmp_path: Path) -> None:
    async with _running(settings_file(tmp_path, tls_emulator)) as (service, http):
        assert service.consumer is not None
        service.consumer.lag_interval = 0.05
        await _readyz_until(http, 200)
        assert (await http.post("/v1/batch", json={"batch": [_lead(n, 10) for n in range(4)]},
                                auth=WRITE_KEY)).status_code == 200
        for _ in range(200):
            metrics = (await http.get("/metrics", headers=OPERATOR)).text
            lags = [line for line in metrics.splitlines() if line.startswith("destination_consumer_lag_events{")]
            if service.consumer.consumed == 4 and lags and all(line.endswith(" 0.0") for line in lags):
                break
            await asyncio.sleep(0.05)
        assert 'destination_events_accepted_total{source="web-app"} 4.0' in metrics
        assert 'destination_events_consumed_total{source="web-app"} 4.0' in metrics
        assert len(lags) == 8 and all(line.endswith(" 0.0") for line in lags), lags  # every partition, caught up
