"""The watermark survives a SIGKILL of `destination run`: after a restart every change made before, during
and after the kill is published, and a change published twice is one the kill caught between its publish and
its checkpoint (within the overlap before the checkpointed watermark)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from destination_process import DestinationProcess
from running_emulator import free_port
from sync_back_support import TopicReader, actions_dir, settings

from destination.sync_back.changes import parse_modstamp
from destination.synclog.sqlite import SqliteSyncLog

OVERLAP = 5.0


def _person_create(emulator: Any, email: str) -> None:
    import ssl

    trust = ssl.create_default_context(cafile=str(emulator.ca_pem))
    httpx.post(f"{emulator.url}/__admin/records/Contact", json={"LastName": "P", "Email": email, "Title": "T"},
               verify=trust).raise_for_status()


async def _watermark(tmp_path: Path) -> str | None:
    async with SqliteSyncLog(tmp_path / "sync.db") as log:
        states = [s for s in await log.sync_back_states("app") if s.object == "Contact"]
    return states[0].watermark if states else None


async def test_after_sigkill_nothing_is_missed_and_repeats_are_within_the_overlap(
        tls_emulator: Any, kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"sf-kill-{uuid.uuid4().hex[:8]}"
    path = settings(tmp_path, tls_emulator, kafka_bootstrap, actions_dir(tmp_path, topic, interval=0.3,
                                                                         overlap=OVERLAP))
    process = DestinationProcess(path, free_port(), tmp_path / "run.log")
    reader = TopicReader(kafka_bootstrap, topic)
    await reader.start()
    emails: list[str] = []
    try:
        process.start()
        for _ in range(100):
            if await _watermark(tmp_path):
                break
            await asyncio.sleep(0.1)
        for i in range(40):  # changes while it runs; the kill lands in the middle of them
            emails.append(f"before-{i}@example.com")
            await asyncio.to_thread(_person_create, tls_emulator, emails[-1])
            await asyncio.sleep(0.03)
            if i == 25:
                process.kill()
        checkpoint = await _watermark(tmp_path)
        assert checkpoint is not None
        for i in range(20):  # changes while it is down
            emails.append(f"down-{i}@example.com")
            await asyncio.to_thread(_person_create, tls_emulator, emails[-1])
        process.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(emails) <= {m.get("userId") for m in reader.messages}:
            await reader.read(0.3)
    finally:
        process.stop()
        await reader.stop()
    assert process.kills == 1
    published = Counter(m["userId"] for m in reader.messages if m.get("type") == "identify")
    assert set(emails) <= set(published), f"missed: {sorted(set(emails) - set(published))}"
    repeats = [e for e, n in published.items() if n > 1]
    stamps = {m["userId"]: parse_modstamp(m["context"]["salesforce"]["systemModstamp"]) for m in reader.messages}
    floor = parse_modstamp(checkpoint) - timedelta(seconds=OVERLAP)
    assert all(stamps[e] >= floor for e in repeats), f"repeated outside the overlap: {repeats}"
    assert all(n <= 2 for n in published.values())
