"""Poison input against the real `destination run` process: an event that ingest now refuses, but that is
already in the event log (logged before events were validated), fails alone with INVALID_EVENT while its
neighbours are delivered, and the process keeps running across restarts."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from destination_process import DestinationProcess
from hypothesis import HealthCheck, Phase, given, settings
from ingest_support import EVENT_BODIES
from running_emulator import free_port
from settings_support import settings_file

from destination.eventlog.sqlite import SqliteEventLog
from destination.events import Event
from destination.outcomes import Status
from destination.synclog import open_sync_log

KEY = "web-app-demo-key"  # the shipped web-app source's key


def _deep(levels: int) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for _ in range(levels):
        nested = {"a": nested}
    return nested


POISON = [
    {"type": "identify", "userId": "u", "context": "x"},  # the reproduced one: exit 0, nothing logged
    {"type": "identify", "userId": "u", "traits": "x"},
    {"type": "identify", "userId": {"id": 1}, "traits": {"email": "o@x.example"}},
    {"type": "identify", "userId": "u", "traits": {"email": ["a@x.example"]}, "properties": []},
    {"type": "track", "userId": "u", "event": 7, "properties": {"total": "1"}},
    {"type": "identify", "userId": "u", "timestamp": {"t": 1}, "traits": {"email": "t@x.example"}},
    {"type": "identify", "userId": "u", "traits": {"email": "d@x.example", "deep": _deep(250)}},  # the log's limit
]


def _corpus(size: int) -> list[dict[str, Any]]:
    """`size` event bodies drawn by hypothesis: Segment's field names with any JSON values."""
    found: list[dict[str, Any]] = []

    @settings(max_examples=size, phases=[Phase.generate], database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(EVENT_BODIES)
    def collect(body: dict[str, Any]) -> None:
        found.append(orjson.loads(json.dumps(body)))  # as a JSON parser hands it over (no 65-bit integers)

    collect()
    return found


def _good(i: int) -> dict[str, Any]:
    return {"type": "identify", "userId": f"good-{i}", "messageId": f"good-{i}",
            "traits": {"email": f"good{i}@x.example", "last_name": f"L{i}"}}


async def _outcomes(sync_db: Path, wanted: int, process: DestinationProcess, seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        assert process.process is not None and process.process.poll() is None, \
            f"destination run exited ({process.process.returncode if process.process else None}); see {process.log}"
        if sync_db.exists():
            async with open_sync_log(f"sqlite:///{sync_db}") as sync_log:
                rows = await sync_log.rows(limit=1000)
            if len(rows) >= wanted:
                return {r.message_id: r for r in rows}
        assert time.monotonic() < deadline, f"only some outcomes recorded; see {process.log}"
        await asyncio.sleep(0.3)


async def test_poison_events_in_the_log_fail_alone_and_destination_run_survives_restarts(
        tls_emulator: Any, tmp_path: Path) -> None:
    config = settings_file(tmp_path, tls_emulator)
    events = []
    for i, body in enumerate(POISON):
        events += [Event("web-app", _good(2 * i)), Event("web-app", {**body, "messageId": f"poison-{i}"})]
    events.append(Event("web-app", _good(2 * len(POISON))))
    corpus = _corpus(60)
    events += [Event("web-app", {**body, "messageId": f"corpus-{i}"}) for i, body in enumerate(corpus)]
    async with SqliteEventLog(tmp_path / "events.db") as log:  # as an older version (or a Kafka producer) left it
        await log.append(events)
    process = DestinationProcess(config, free_port(), tmp_path / "run.log")
    process.start()
    try:
        rows = await _outcomes(tmp_path / "sync.db", len(events), process)
        for i in range(len(POISON)):
            row = rows[f"poison-{i}"]
            assert row.status is Status.FAILED and row.error_code == "INVALID_EVENT", row
        goods = [rows[f"good-{2 * i}"] for i in range(len(POISON) + 1)]
        assert all(r.status is Status.SUCCEEDED for r in goods), [(r.message_id, r.message) for r in goods]
        assert all(f"corpus-{i}" in rows for i in range(len(corpus)))  # every logged event has its outcome
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{process.port}", auth=(KEY, "")) as http:
            answers = [(await http.post("/v1/identify", json={"userId": f"c{i}", **body, "messageId": f"http-{i}"})
                        ).status_code for i, body in enumerate(corpus)]
        assert set(answers) <= {200, 400}, answers  # never a 5xx
        accepted = answers.count(200)
        assert 0 < accepted < len(corpus)  # the corpus is derandomized: some of it is valid, some not
        # what ingest now answers for the reproduced event: a 400 naming the field, nothing logged
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{process.port}", auth=(KEY, "")) as http:
            r = await http.post("/v1/identify", json={"userId": "u", "context": "x"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_event" and "context" in r.json()["message"]
        process.stop()
        assert process.process is not None and process.process.returncode == 0
        process.start()  # the poison is committed with its outcome: a restart neither dies nor re-reads it
        await asyncio.sleep(2)
        assert process.process.poll() is None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{process.port}", auth=(KEY, "")) as http:
            r = await http.post("/v1/identify", json=_good(99))
        assert r.status_code == 200
        rows = await _outcomes(tmp_path / "sync.db", len(events) + accepted + 1, process)
        assert rows["good-99"].status is Status.SUCCEEDED
        assert sum(1 for m in rows if m.startswith("http-")) == accepted  # one outcome per accepted event
    finally:
        process.stop()
    assert process.process.returncode == 0


async def test_a_store_failure_is_logged_and_waited_out_without_exiting_or_acknowledging(
        tls_emulator: Any, tmp_path: Path) -> None:
    """Was: the consumer task died on the failure and `destination run` exited 0 with nothing logged."""
    config = settings_file(tmp_path, tls_emulator)
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}"):
        pass  # the tables, then a store failure for one event: no outcome can be recorded for it
    with sqlite3.connect(tmp_path / "sync.db") as db:
        db.execute("CREATE TRIGGER boom BEFORE INSERT ON sync_log WHEN NEW.message_id = 'boom' "
                   "BEGIN SELECT RAISE(ABORT, 'injected store failure'); END")
    async with SqliteEventLog(tmp_path / "events.db") as log:
        # no action matches a page call: its outcome (skipped) is recorded by the consumer itself
        await log.append([Event("web-app", {"type": "page", "userId": "u", "messageId": "boom"})])
    process = DestinationProcess(config, free_port(), tmp_path / "run.log")
    process.start()
    assert process.process is not None
    try:
        deadline = time.monotonic() + 60
        while "injected store failure" not in (tmp_path / "run.log").read_text():
            assert time.monotonic() < deadline, "the store failure was never logged"
            assert process.process.poll() is None, "the process exited on a store failure"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        assert process.process.poll() is None  # still running: the failure is waited out
        with sqlite3.connect(tmp_path / "events.db") as db:  # and the event is not acknowledged
            assert all(offset <= 1 for (offset,) in db.execute("SELECT next_offset FROM commits"))  # boom is 1
        with sqlite3.connect(tmp_path / "sync.db") as db:
            db.execute("DROP TRIGGER boom")  # the store recovers: the outcome lands without a restart
        while True:
            with sqlite3.connect(tmp_path / "sync.db") as db:
                if db.execute("SELECT count(*) FROM sync_log WHERE message_id = 'boom'").fetchone()[0]:
                    break
            assert time.monotonic() < deadline + 30, "the outcome never landed after the store recovered"
            await asyncio.sleep(0.2)
    finally:
        process.stop()
    assert "injected store failure" in (tmp_path / "run.log").read_text()
