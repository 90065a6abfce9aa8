"""The pipeline end to end (without the event log): every event ends in recorded outcomes, `done` is
called only after they are recorded, failed events are dead-lettered, batches respect size and linger."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from destination.actions.loader import load_text
from destination.deliver import Delivery
from destination.events import Event
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLogFilter

SOURCE = load_text("""source: app
actions:
  - name: leads
    when: type = "identify" and traits.email exists
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: {path: $.traits.name, default: X}, Company: n/a,
             Title: {path: $.traits.title, truncate: false}}
  - name: cases
    when: type = "track" and event = "Help"
    object: Case
    operation: create
    fields: {Subject: $.properties.subject}
""", "app.yaml")


async def test_every_event_gets_recorded_outcomes_before_done(delivery: Delivery, tls_emulator: Any,
                                                              tmp_path: Path) -> None:
    log = open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}")
    async with log:
        from destination.config import BatchingConfig

        pipeline = Pipeline({"app": SOURCE}, delivery, log, batching=BatchingConfig(linger_ms=50, rest_size=50))
        done: list[str] = []
        events = [Event("app", {"type": "identify", "messageId": f"i{i}", "traits": {"email": f"e{i}@x.example"}})
                  for i in range(120)]
        events += [Event("app", {"type": "identify", "messageId": "bad", "traits": {"email": "b@x.example",
                                                                                   "title": "t" * 300}}),
                   Event("app", {"type": "track", "event": "Help", "messageId": "h1", "properties": {"subject": "S"}}),
                   Event("app", {"type": "page", "messageId": "p1"})]
        for event in events:
            await pipeline.submit(event, lambda e=event: done.append(e.message_id))
        await pipeline.drain()
        await asyncio.sleep(0)
        assert sorted(done) == sorted(e.message_id for e in events)
        counts = await log.counts()
        assert counts[Status.SUCCEEDED] == 121 and counts[Status.FAILED] == 1 and counts[Status.SKIPPED] == 1
        failed = await log.rows(SyncLogFilter(status=Status.FAILED))
        assert failed[0].error_code == "STRING_TOO_LONG"
        dead = await log.dead_letters()
        assert len(dead) == 1 and '"bad"' in dead[0].payload
        sizes = pipeline.metrics.render().decode()
        assert 'destination_outcomes_total{error_code="",object="Lead",status="succeeded"} 120.0' in sizes
    assert len(tls_emulator.state.store.records("Lead")) == 120


async def test_a_full_batcher_makes_the_producer_wait(delivery: Delivery, tmp_path: Path) -> None:
    from destination.config import BatchingConfig

    log = open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}")
    async with log:
        pipeline = Pipeline({"app": SOURCE}, delivery, log,
                            batching=BatchingConfig(linger_ms=10_000, rest_size=200, max_pending=5))
        events = [Event("app", {"type": "identify", "messageId": f"w{i}", "traits": {"email": f"w{i}@x.example"}})
                  for i in range(6)]
        for event in events[:5]:
            await pipeline.submit(event)
        blocked = asyncio.create_task(pipeline.submit(events[5]))
        await asyncio.sleep(0.2)
        assert not blocked.done() and pipeline.batcher.pending == 5
        await pipeline.batcher.drain()
        await asyncio.wait_for(blocked, 5)
        await pipeline.drain()


async def test_bulk_row_failures_reach_the_sync_log_with_their_codes(delivery: Delivery, tmp_path: Path) -> None:
    from destination.config import BatchingConfig

    source = load_text("""source: app
actions:
  - name: surveys
    when: type = "track"
    object: Survey_Response__c
    operation: create
    mode: bulk
    fields: {Sentiment__c: $.properties.s, Score__c: {path: $.properties.score, transform: to_number}}
""", "app.yaml")
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": source}, delivery, log, batching=BatchingConfig(linger_ms=50))
        for i, sentiment in enumerate(["Positive", "Furious", "Neutral", "Bad"]):
            await pipeline.submit(Event("app", {"type": "track", "event": "S", "messageId": f"s{i}",
                                                "properties": {"s": sentiment, "score": i}}))
        await pipeline.drain()
        failed = await log.rows(SyncLogFilter(status=Status.FAILED))
        assert sorted(r.message_id for r in failed) == ["s1", "s3"]
        assert {r.error_code for r in failed} == {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}
        assert all(r.fields == ["Sentiment__c"] or r.fields == ("Sentiment__c",) for r in failed)
        assert (await log.counts())[Status.SUCCEEDED] == 2


async def test_an_event_stored_as_it_is_keeps_its_whole_json_in_its_row_and_dead_letter(delivery: Delivery,
                                                                                       tmp_path: Path) -> None:
    """Without redact/hash rules or a writeKey the stored event is the packed JSON itself (never decoded
    again): the row and the dead letter hold the whole event, non-ASCII text and the email included."""
    ok = {"type": "identify", "messageId": "plain", "timestamp": "2026-01-01T00:00:00Z", "userId": "ü1",
          "traits": {"email": "Zoe@X.example", "name": "Zoë ☃", "n": 1.5, "tags": ["a", None]}}
    bad = {"type": "identify", "messageId": "long", "name": "Größe", "context": {"traits": {"email": "Long@x.example"}},
           "traits": {"email": "long@x.example", "title": "t" * 300}}
    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        pipeline = Pipeline({"app": SOURCE}, delivery, log)
        for body in (ok, bad):
            await pipeline.submit(Event("app", body))
        await pipeline.drain()
        [kept] = await log.rows(SyncLogFilter(message_id="plain"))
        [failed] = await log.rows(SyncLogFilter(message_id="long"))
        [letter] = await log.dead_letters()
    assert kept.status is Status.SUCCEEDED and kept.event == ok and kept.email == "zoe@x.example"
    assert failed.status is Status.FAILED and failed.event == bad and failed.email == "long@x.example"
    assert letter.event() == Event("app", bad) and letter.payload == json.dumps(bad, separators=(",", ":"), ensure_ascii=False)
