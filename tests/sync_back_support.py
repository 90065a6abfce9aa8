"""A two-way sync set-up for tests: an action file whose Contacts are pushed and synced back, settings with
a Kafka broker for the published changes, a reader of that topic, and the emulator's person writes."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from running_emulator import free_port
from settings_support import REPO, settings_file

WRITE_KEY = "sync-back-test-key"


def actions_dir(tmp_path: Path, topic: str, *, interval: float = 0.5, overlap: float = 5.0,
                merge: str = "most_recent", email_synced: bool = False, deletes: bool = False) -> Path:
    """An action folder: source `app` upserts Contacts by Email and publishes their changes to `topic`; with
    `deletes`, a track "Contact Removed" deletes the Contact of `properties.email`."""
    folder = tmp_path / "actions"
    folder.mkdir(exist_ok=True)
    (folder / "app.yaml").write_text(f"""
source: app
write_keys: ["{WRITE_KEY}"]
actions:
  - name: contacts
    when: type = "identify" and traits.email exists
    object: Contact
    operation: upsert
    match: {{any: {{Email: $.traits.email}}}}
    fields:
      Email: $.traits.email
      LastName: {{path: $.traits.last_name, default: Unknown}}
      Title: $.traits.title
""" + ("""  - name: contact_removals
    when: type = "track" and event = "Contact Removed"
    object: Contact
    operation: delete
    match: {any: {Email: $.properties.email}}
""" if deletes else "") + f"""sync_back:
  kafka_topic: {topic}
  interval_seconds: {interval}
  overlap_seconds: {overlap}
  start: now
  objects:
    - object: Contact
      id_field: Email
      fields:
        Title: {{as: title, direction: both, merge: {merge}}}
        Department: {{as: department, direction: from_salesforce}}
""" + ("        Email: {as: email, direction: both}\n" if email_synced else ""))
    return folder


def settings(tmp_path: Path, emulator: Any, kafka: str, actions: Path, *, log_topic: str | None = None) -> Path:
    """destination.yaml: the emulator, Kafka for the published changes, and an embedded event log for the
    push — or, with `log_topic`, the push consuming that Kafka topic (the one changes are published to)."""
    log = f"topic: {log_topic}, group_id: g-{log_topic}, dead_letter_topic: d-{log_topic}, " if log_topic else ""
    path = settings_file(tmp_path, emulator, f"kafka: {{bootstrap_servers: '{kafka}', idempotent: false, {log}"
                         "create_topics: {enabled: true, replication_factor: 1, partitions: 1}}\n",
                         event_log="{kind: kafka}" if log_topic else None)
    path.write_text(path.read_text().replace(f"actions_dir: {REPO / 'actions'}",
                                             f"actions_dir: {actions}"))
    return path


class Collector:
    """A Segment-compatible batch endpoint (write key `back-key`): checks the write key, keeps the batches,
    may refuse."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.refuse = False
        self.app = FastAPI()
        self.app.post("/v1/batch")(self.batch)

    async def batch(self, request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        if auth != "Basic " + base64.b64encode(b"back-key:").decode() or self.refuse:
            return JSONResponse({"success": False}, status_code=401 if not self.refuse else 503)
        self.batches.append((await request.json())["batch"])
        return JSONResponse({"success": True})

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]


async def serve_collector() -> AsyncIterator[tuple[Collector, int]]:
    """A Collector served over a real socket on a free port, as long as the iteration is not resumed."""
    port = free_port()
    found = Collector()
    server = uvicorn.Server(uvicorn.Config(found.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.01)
    yield found, port
    server.should_exit = True
    await task


class TopicReader:
    """Every message of a topic from its start, as parsed JSON."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                         group_id=None, enable_auto_commit=False)
        self.messages: list[dict[str, Any]] = []

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def read(self, seconds: float = 0.2) -> list[dict[str, Any]]:
        """Read what arrived within `seconds`; returns everything read so far."""
        batches = await self.consumer.getmany(timeout_ms=int(seconds * 1000))
        for records in batches.values():
            self.messages += [json.loads(r.value) for r in records]
        return self.messages

    async def until(self, predicate: Any, seconds: float) -> list[dict[str, Any]]:
        """Read until some message satisfies `predicate` (AssertionError after `seconds`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            found = [m for m in await self.read() if predicate(m)]
            if found:
                return found
        raise AssertionError(f"no such message within {seconds} s; got {self.messages}")


def person_update(emulator: Any, obj: str, record_id: str, values: dict[str, Any]) -> None:
    """A person changes a record in the org (LastModifiedById is not the integration user)."""
    httpx.patch(f"{emulator.url}/__admin/records/{obj}/{record_id}", json=values,
                verify=_trust(emulator)).raise_for_status()


def person_create(emulator: Any, obj: str, values: dict[str, Any]) -> str:
    """A person creates a record in the org; returns its Id."""
    response = httpx.post(f"{emulator.url}/__admin/records/{obj}", json=values, verify=_trust(emulator))
    response.raise_for_status()
    return str(response.json()["id"])


def person_delete(emulator: Any, obj: str, record_id: str) -> None:
    httpx.delete(f"{emulator.url}/__admin/records/{obj}/{record_id}", verify=_trust(emulator)).raise_for_status()


def _trust(emulator: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(emulator.ca_pem))


def records(emulator: Any, obj: str) -> list[dict[str, Any]]:
    return httpx.get(f"{emulator.url}/__admin/records/{obj}", verify=_trust(emulator)).json()


def identify(email: str, title: str, message_id: str) -> dict[str, Any]:
    return {"type": "identify", "messageId": message_id, "userId": email,
            "traits": {"email": email, "last_name": "Lovelace", "title": title}}
