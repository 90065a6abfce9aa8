"""Loop protection holds whatever the timing: a poll that runs after Salesforce applied our write or delete
but before delivery recorded it (here: the recording is held until the test releases it) does not publish
our own change; it holds it back (unpublished, the watermark stopped before it) and the next poll, once the
recording is in, suppresses it as an echo. A person's changes are not held back by our in-flight writes to
other records, and a delete of ours that failed leaves nothing that would suppress the person's delete.
Over real parts: the emulator over HTTPS, the sync log (SQLite and PostgreSQL), a Segment-compatible HTTP
endpoint on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sf_support import connection_for

from destination.actions.loader import load_text
from destination.actions.model import ActionFile
from destination.deliver import Delivery
from destination.events import Event
from destination.mapping import map_event
from destination.operations import RecordOp
from destination.outcomes import Outcome, Status
from destination.salesforce.client import SalesforceClient
from destination.sync_back.publish import publisher_for
from destination.sync_back.runner import SyncBackRunner
from destination.synclog import SyncLog, open_sync_log

PERSON = "person@emulator.test"
SOURCE = """source: app
actions:
  - name: contacts
    when: type = "identify"
    object: Contact
    operation: upsert
    match: {{any: {{Email: $.traits.email}}}}
    fields:
      Email: $.traits.email
      LastName: {{path: $.traits.last_name, default: Unknown}}
      Title: $.traits.title
  - name: removals
    when: type = "track"
    object: Contact
    operation: delete
    match: {{any: {{Email: $.properties.email}}}}
  - name: removals_by_id
    when: type = "track"
    object: Contact
    operation: delete
    match: {{any: {{Id: $.properties.id}}}}
sync_back:
  http: {{url: "http://127.0.0.1:{port}/v1/batch", write_key: back-key}}
  overlap_seconds: 5
  start: now
  objects:
    - object: Contact
      id_field: Email
      fields: {{Title: title}}
"""


class HeldRecording:
    """The sync log, except that delivery's recording of what it wrote waits until the test releases it:
    the window between Salesforce applying a write and delivery noting it, as long as the test needs."""

    def __init__(self, log: SyncLog) -> None:
        self.log = log
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    async def record_written_values(self, *args: Any, **kwargs: Any) -> None:
        self.reached.set()
        await self.release.wait()
        await self.log.record_written_values(*args, **kwargs)


@dataclass
class TwoWay:
    source: ActionFile
    delivery: Delivery
    runner: SyncBackRunner
    held: HeldRecording
    collector: Any
    emulator: Any

    def op(self, action: int, body: dict[str, Any]) -> RecordOp:
        op = map_event(self.source, self.source.actions[action], Event("app", body))
        assert isinstance(op, RecordOp), op
        return op

    async def deliver_held(self, op: RecordOp) -> asyncio.Task[list[Outcome]]:
        """Start delivering `op` and return once Salesforce has answered and the recording is held."""
        self.held.reached.clear()
        self.held.release.clear()
        task = asyncio.create_task(self.delivery.deliver([op]))
        await asyncio.wait_for(self.held.reached.wait(), 30)
        return task

    async def released(self, task: asyncio.Task[list[Outcome]]) -> list[Outcome]:
        self.held.release.set()
        return await asyncio.wait_for(task, 30)

    def person(self) -> str:
        return str(next(u.id for u in self.emulator.state.org.users if u.username == PERSON))


@pytest.fixture(params=["sqlite", "postgres"])
async def two_way(request: pytest.FixtureRequest, tls_emulator: Any, tmp_path: Path,
                  collector: Any) -> AsyncIterator[TwoWay]:
    endpoint, port = collector
    url = (f"sqlite:///{tmp_path / 'sync.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    source = load_text(SOURCE.format(port=port), "app.yaml")
    assert source.sync_back is not None
    async with SalesforceClient(connection_for(tls_emulator), backoff_initial=0.01, backoff_max=0.05) as client, \
            open_sync_log(url) as log:
        held = HeldRecording(log)
        delivery = Delivery({"default": client}, sync_log=held, echo_objects=frozenset({"contact"}))
        publisher = publisher_for(source.sync_back, None)
        runner = SyncBackRunner({"app": source}, {"default": client}, log, {"app": publisher})
        await runner.poll_once("app", "Contact")  # `start: now`: the baseline
        yield TwoWay(source, delivery, runner, held, endpoint, tls_emulator)
        await publisher.close()


def _identify(email: str, title: str, message_id: str) -> dict[str, Any]:
    return {"type": "identify", "messageId": message_id, "userId": email, "timestamp": datetime.now(UTC).isoformat(),
            "traits": {"email": email, "last_name": "Lovelace", "title": title}}


async def test_our_create_and_update_polled_before_their_recording_are_held_then_suppressed_as_echoes(
        two_way: TwoWay) -> None:
    t = two_way
    for title, message_id in [("Engineer", "m-1"), ("CTO", "m-2")]:  # a create, then an update
        task = await t.deliver_held(t.op(0, _identify("ada@example.com", title, message_id)))
        during = await t.runner.poll_once("app", "Contact")  # Salesforce has it; the sync log does not yet
        assert (during.published, t.collector.events) == (0, [])  # not published as a person's change
        assert (during.echoes, during.held) == (0, 1)
        [outcome] = await t.released(task)
        assert outcome.status is Status.SUCCEEDED, outcome
        after = await t.runner.poll_once("app", "Contact")
        assert (after.published, after.echoes, after.held, t.collector.events) == (0, 1, 0, [])

    [ada] = t.emulator.state.store.records("Contact")
    t.emulator.state.store.update("Contact", ada["Id"], {"Title": "Admiral"}, user_id=t.person())
    person = await t.runner.poll_once("app", "Contact")
    assert (person.published, person.echoes, person.held) == (1, 0, 0)
    assert [e["traits"] for e in t.collector.events] == [{"title": "Admiral"}]
    [state] = [s for s in await t.runner.sync_log.sync_back_states("app") if s.object == "Contact"]
    assert (state.published, state.echoes) == (1, 2)


async def test_a_persons_change_after_a_held_one_is_published_once_though_the_watermark_stopped_before_it(
        two_way: TwoWay) -> None:
    t = two_way
    task = await t.deliver_held(t.op(0, _identify("ada@example.com", "Engineer", "m-5")))  # ours, held
    store = t.emulator.state.store
    grace = store.insert("Contact", {"LastName": "Hopper", "Email": "grace@example.com", "Title": "Admiral"},
                         user_id=t.person()).id  # a person's, after ours
    during = await t.runner.poll_once("app", "Contact")
    assert (during.published, during.held) == (1, 1)
    [state] = [s for s in await t.runner.sync_log.sync_back_states("app") if s.object == "Contact"]
    assert state.watermark == during.held_from  # not past our held create: the next poll reads it again
    await t.released(task)
    after = await t.runner.poll_once("app", "Contact")
    assert (after.published, after.echoes, after.repeats, after.held) == (0, 1, 1, 0)  # Grace's: a repeat
    assert [e["context"]["salesforce"]["id"] for e in t.collector.events] == [grace]


async def test_our_delete_polled_before_its_recording_is_held_then_suppressed_and_a_persons_is_not_held(
        two_way: TwoWay) -> None:
    t = two_way
    store = t.emulator.state.store
    ada = store.insert("Contact", {"LastName": "Lovelace", "Email": "ada@example.com", "Title": "Countess"},
                       user_id=t.person()).id
    grace = store.insert("Contact", {"LastName": "Hopper", "Email": "grace@example.com", "Title": "Admiral"},
                         user_id=t.person()).id
    await t.runner.poll_once("app", "Contact")  # two creates by a person: published
    assert len(t.collector.events) == 2

    task = await t.deliver_held(t.op(1, {"type": "track", "event": "Contact Removed", "messageId": "m-3",
                                         "properties": {"email": "ada@example.com"}}))
    assert store.delete("Contact", grace, user_id=t.person()).success  # meanwhile a person deletes Grace
    during = await t.runner.poll_once("app", "Contact")
    # Grace's delete is published; ours (Ada) is not
    assert [(e["event"], e["properties"]["id"]) for e in t.collector.events[2:]] == [("Contact Deleted", grace)]
    assert (during.deleted, during.held) == (1, 1)
    [outcome] = await t.released(task)
    assert outcome.status is Status.SUCCEEDED
    after = await t.runner.poll_once("app", "Contact")
    assert (after.deleted, after.echoes, after.held, len(t.collector.events)) == (0, 1, 0, 3)
    rows = [r for r in await t.runner.sync_log.rows() if r.action == "sync_back" and r.operation == "delete"]
    assert sorted((r.record_id, r.status.value, r.error_code) for r in rows) == sorted([
        (ada, "skipped", "ECHO_SUPPRESSED"), (grace, "succeeded", None)])


async def test_a_delete_of_ours_that_found_the_record_gone_leaves_the_persons_delete_published(
        two_way: TwoWay) -> None:
    t = two_way
    store = t.emulator.state.store
    ada = store.insert("Contact", {"LastName": "Lovelace", "Email": "ada@example.com", "Title": "Countess"},
                       user_id=t.person()).id
    await t.runner.poll_once("app", "Contact")
    assert store.delete("Contact", ada, user_id=t.person()).success  # a person deletes Ada first
    task = await t.deliver_held(t.op(2, {"type": "track", "event": "Contact Removed", "messageId": "m-4",
                                         "properties": {"id": ada}}))  # ours: ENTITY_IS_DELETED
    during = await t.runner.poll_once("app", "Contact")
    assert (during.deleted, during.echoes, during.held) == (0, 0, 1)  # it may be ours: not decided yet
    [outcome] = await t.released(task)
    assert outcome.status is Status.SUCCEEDED and any("already deleted" in w for w in outcome.warnings)
    after = await t.runner.poll_once("app", "Contact")
    assert (after.deleted, after.echoes, after.held) == (1, 0, 0)  # the person's delete
    assert [(e["event"], e["properties"]["id"]) for e in t.collector.events[1:]] == [("Contact Deleted", ada)]


async def test_a_note_left_by_a_delivery_that_died_mid_write_holds_changes_only_for_settle_seconds(
        two_way: TwoWay) -> None:
    t = two_way
    log = t.held.log
    store = t.emulator.state.store
    await log.begin_writes({"Contact": []})  # never ended: the process died mid-write
    ada = store.insert("Contact", {"LastName": "Lovelace", "Email": "ada@example.com", "Title": "Engineer"}).id
    held = await t.runner.poll_once("app", "Contact")  # by the integration user, not (yet) known as ours
    assert (held.published, held.held) == (0, 1)
    settle = t.source.sync_back.settle_seconds if t.source.sync_back else 0
    t.runner.now = lambda: datetime.now(UTC) + timedelta(seconds=settle + 1)
    judged = await t.runner.poll_once("app", "Contact")
    assert (judged.published, judged.held) == (1, 0)
    assert [e["context"]["salesforce"]["id"] for e in t.collector.events] == [ada]
