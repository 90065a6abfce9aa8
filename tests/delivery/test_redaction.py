"""A source's `redact:` and `hash:` paths change what the sync log and the dead-letter queue keep, not what
Salesforce gets: the record holds the real values, the stored event the placeholder or the SHA-256."""

from __future__ import annotations

import hashlib
from typing import Any

from destination.actions.loader import load_text
from destination.deliver import Delivery
from destination.events import Event
from destination.pipeline import Pipeline
from destination.redaction import REDACTED
from destination.synclog.sqlite import SqliteSyncLog

SOURCE = """source: app
redact: [traits.phone, context.ip]
hash: [traits.email]
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: create
    fields:
      LastName: $.traits.last_name
      Company: {value: Co}
      Email: $.traits.email
      Phone: $.traits.phone
      NumberOfEmployees: {path: $.traits.size, transform: to_number}
"""


async def test_redacted_and_hashed_paths_are_replaced_in_the_stored_event_only(tls_emulator: Any, tmp_path: Any,
                                                                               delivery: Delivery) -> None:
    sources = {"app": load_text(SOURCE, "app.yaml")}
    async with SqliteSyncLog(tmp_path / "sync.db") as sync_log:
        delivery.sync_log = sync_log
        pipeline = Pipeline(sources, delivery, sync_log)
        good = {"type": "identify", "messageId": "r1", "userId": "u1", "context": {"ip": "203.0.113.9"},
                "traits": {"email": "pii@x.example", "phone": "+1 555 0100", "last_name": "P"}}
        bad = {"type": "identify", "messageId": "r2", "userId": "u2",
               "traits": {"email": "bad@x.example", "phone": "+1 555 0199", "last_name": "Q", "size": "lots"}}
        await pipeline.submit(Event("app", good))
        await pipeline.submit(Event("app", bad))
        await pipeline.drain()
        [lead] = tls_emulator.state.store.records("Lead")
        assert lead["Email"] == "pii@x.example" and lead["Phone"] == "+1 555 0100"  # Salesforce got the values
        rows = {r.message_id: r for r in await sync_log.rows(limit=10)}
        stored = rows["r1"].event
        assert stored["traits"]["phone"] == REDACTED and stored["context"]["ip"] == REDACTED
        assert stored["traits"]["email"] == hashlib.sha256(b"pii@x.example").hexdigest()
        assert stored["traits"]["last_name"] == "P"
        assert good["traits"]["phone"] == "+1 555 0100"  # the event itself is not changed
        letters = await sync_log.dead_letters()
        assert len(letters) == 1 and "+1 555 0199" not in letters[0].payload and "bad@x.example" not in letters[0].payload
        everything = str([r.to_json() for r in rows.values()])
        for secret in ("+1 555 0100", "+1 555 0199", "pii@x.example", "bad@x.example", "203.0.113.9"):
            assert secret not in everything, secret


async def test_a_write_key_field_is_never_kept_even_from_kafka(tls_emulator: Any, tmp_path: Any,
                                                               delivery: Delivery) -> None:
    source = load_text(SOURCE.replace("redact: [traits.phone, context.ip]\nhash: [traits.email]\n", ""), "app.yaml")
    async with SqliteSyncLog(tmp_path / "sync.db") as sync_log:
        delivery.sync_log = sync_log
        pipeline = Pipeline({"app": source}, delivery, sync_log)
        await pipeline.submit(Event("app", {"type": "identify", "messageId": "k1", "userId": "u1", "writeKey": "wk-1",
                                            "traits": {"last_name": "K", "size": "lots"}}))
        await pipeline.drain()
        [row] = await sync_log.rows(limit=10)
        assert "writeKey" not in row.event and row.status.value == "failed"
        assert "wk-1" not in (await sync_log.dead_letters())[0].payload
