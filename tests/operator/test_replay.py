"""Replay: failed events re-driven after a data fix update their sync-log rows; dead letters too."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from settings_support import settings_file

from destination.cli import main
from destination.config import load_settings
from destination.events import Event
from destination.outcomes import Status
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLogFilter


async def _deliver(config: Path, events: list[Event]) -> None:
    from contextlib import AsyncExitStack

    from destination.service import build

    async with AsyncExitStack() as stack:
        service = await build(load_settings(config), stack)
        assert service.pipeline is not None
        for event in events:
            await service.pipeline.submit(event)
        await service.pipeline.drain()


async def _rows(config: Path, **where: Any) -> list[Any]:
    async with open_sync_log(load_settings(config).sync_log_url) as log:
        return await log.rows(SyncLogFilter(**where))


async def test_failed_events_are_replayed_after_a_fix(tls_emulator: Any, tmp_path: Path) -> None:
    config = settings_file(tmp_path, tls_emulator)
    orders = [Event("web-app", {"type": "track", "event": "Order Completed", "messageId": f"o{i}", "userId": "u",
                                "timestamp": "2026-01-05T10:00:00Z", "context": {"groupId": "acme"},
                                "properties": {"order_id": f"O-{i}", "total": 10 * i}}) for i in range(3)]
    tls_emulator.state.faults.update({"lock_error_rate": 1.0})  # every write fails
    config.write_text(config.read_text().replace("batching: {linger_ms: 50}", "batching: {linger_ms: 50, max_attempts: 1}"))
    await _deliver(config, orders)
    failed = await _rows(config, status=Status.FAILED)
    assert len(failed) == 3 and {r.error_code for r in failed} == {"RETRY_EXHAUSTED"}
    assert all("last error UNABLE_TO_LOCK_ROW" in (r.message or "") for r in failed)
    tls_emulator.state.faults.update({"lock_error_rate": 0.0})  # the "fix"
    code = await asyncio.to_thread(main, ["--config", str(config), "replay", "--error-code", "RETRY_EXHAUSTED",
                                          "--object", "Opportunity"])
    assert code == 0
    rows = await _rows(config)
    assert [(r.status, r.message_id) for r in sorted(rows, key=lambda r: r.message_id)] == [
        (Status.SUCCEEDED, "o0"), (Status.SUCCEEDED, "o1"), (Status.SUCCEEDED, "o2")]
    assert sorted(r["External_Id__c"] for r in tls_emulator.state.store.records("Opportunity")) == ["O-0", "O-1", "O-2"]


async def test_dead_letters_are_replayed_and_marked(tls_emulator: Any, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = settings_file(tmp_path, tls_emulator, "")
    config.write_text(config.read_text().replace("batching: {linger_ms: 50}", "batching: {linger_ms: 50, max_attempts: 1}"))
    bad = Event("web-app", {"type": "identify", "messageId": "d1", "userId": "u", "traits": {"email": "d@x.example"}})
    tls_emulator.state.faults.update({"lock_error_rate": 1.0})
    await _deliver(config, [bad])
    async with open_sync_log(load_settings(config).sync_log_url) as log:
        [letter] = await log.dead_letters()
        assert letter.error_code == "RETRY_EXHAUSTED"
    tls_emulator.state.faults.update({"lock_error_rate": 0.0})
    assert await asyncio.to_thread(main, ["--config", str(config), "replay", "--dead-letters", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"command": "replay", "replayed": 1, "held": 0, "sync_log": {
        "succeeded": 1, "skipped": 0, "failed": 0}}
    async with open_sync_log(load_settings(config).sync_log_url) as log:
        assert await log.dead_letters() == []
        assert (await log.counts())[Status.SUCCEEDED] == 1
