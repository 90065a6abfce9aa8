"""The sync log's one interface: a row per (event, action) outcome, and a dead-letter queue."""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..events import Event
from ..outcomes import Outcome, Status

#: Columns of a sync-log row, in table order (both stores use the same names). The event itself is not one:
#: it is kept once in `sync_log_events` (EVENT_COLUMNS), however many outcome rows it has; a row refers to it
#: by `event_id` (written with the row, see WRITTEN_COLUMNS) and it is joined back when rows are read.
COLUMNS = ("source", "message_id", "action", "target", "object", "operation", "record_id", "created", "status",
           "error_code", "message", "fields", "reason", "attempts", "warnings", "email",
           "first_seen", "updated_at")

#: The columns an outcome row is written with: COLUMNS, then the id of its event's `sync_log_events` row.
WRITTEN_COLUMNS = (*COLUMNS, "event_id")

#: Columns of `sync_log_events` besides its integer `id`: the event body (JSON text) and the event's source and
#: messageId. Rows are appended in id order and found by id (no index on the key: an index on random
#: messageIds costs a page write per event; see migrations.py, version 7).
EVENT_COLUMNS = ("source", "message_id", "body")

#: The `written_values` field under which the push direction notes a record it deleted (its value: when, UTC
#: ISO 8601): the change feed does not publish that delete (no Salesforce field name starts with "$").
DELETED_BY_US = "$deleted"

#: The `written_values` field of a note that a delivery batch is writing to an object (record_id IN_FLIGHT + the
#: batch's key; value {"since": UTC ISO 8601, "deletes": [record Ids]}): noted before the Salesforce call, removed
#: with the recording of what was written, so the change feed can tell "not ours" from "not recorded yet".
IN_FLIGHT = "$in_flight"
#: The record_id range holding every in-flight note (for an index range scan; the field is checked as well).
IN_FLIGHT_IDS = (IN_FLIGHT, IN_FLIGHT[:-1] + chr(ord(IN_FLIGHT[-1]) + 1))


@dataclass(frozen=True, slots=True)
class SyncLogRow:
    """One outcome as stored: the latest result of one action on one event."""

    id: int
    source: str
    message_id: str
    action: str
    target: str
    object: str | None
    operation: str | None
    record_id: str | None
    created: bool | None
    status: Status
    error_code: str | None
    message: str | None
    fields: tuple[str, ...]
    reason: str | None
    attempts: int
    warnings: tuple[str, ...]
    email: str | None
    event: dict[str, Any]
    first_seen: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The row as the /v1/sync-log API returns it."""
        return {
            "id": self.id, "source": self.source, "message_id": self.message_id, "action": self.action,
            "target": self.target, "object": self.object, "operation": self.operation, "record_id": self.record_id,
            "created": self.created, "status": self.status.value, "error_code": self.error_code,
            "message": self.message, "fields": list(self.fields), "reason": self.reason,
            "attempts": self.attempts, "warnings": list(self.warnings), "email": self.email,
            "event": self.event, "first_seen": self.first_seen.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SyncLogFilter:
    """What to select from the sync log; None means any."""

    status: Status | None = None
    object: str | None = None
    source: str | None = None
    action: str | None = None
    error_code: str | None = None
    record_id: str | None = None
    message_id: str | None = None
    search: str | None = None          # a record Id, messageId or email (case-insensitive)
    since: datetime | None = None
    until: datetime | None = None


#: The empty filter: every row.
ANY = SyncLogFilter()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that could not be delivered, or an input that never became an event (poison)."""

    id: int
    source: str
    reason: str
    error_code: str | None
    payload: str                         # the event JSON, or the raw input for poison messages
    created_at: datetime
    replayed_at: datetime | None = None

    def event(self) -> Event | None:
        """The dead-lettered event, when the payload is one."""
        try:
            body = json.loads(self.payload)
        except ValueError:
            return None
        return Event(self.source, body) if isinstance(body, dict) else None


@dataclass(frozen=True, slots=True)
class SyncBackState:
    """Where one source's change feed of one object stands."""

    source: str
    object: str
    watermark: str | None  # SystemModstamp (wire format) up to which every change is published
    polled_at: datetime | None
    last_error: str | None
    published: int
    echoes: int


@dataclass(frozen=True, slots=True)
class WritesNote:
    """The handle of an in-flight note (begin_writes), to remove it with the recording."""

    key: str
    objects: tuple[str, ...]  # lower-case

    def rows(self) -> list[tuple[str, str, str]]:
        """The note's primary keys (object, record_id, field) in `written_values`."""
        return [(obj, IN_FLIGHT + self.key, IN_FLIGHT) for obj in self.objects]


@dataclass(frozen=True, slots=True)
class InFlight:
    """A delivery batch writing to an object right now (or that died mid-write): since when, and the records it
    deletes."""

    key: str
    since: datetime
    deletes: frozenset[str]  # 15-character Ids


@dataclass(frozen=True, slots=True)
class SeenRecord:
    """The last published version of a record."""

    modstamp: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SyncBackProgress:
    """What one poll of one object publishes, stored in one transaction after the publish."""

    source: str
    object: str
    watermark: str | None
    records: Sequence[tuple[str, str, dict[str, Any]]] = ()  # (record Id, SystemModstamp, published values)
    published: int = 0
    echoes: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent(Event):
    """An event as the sync log keeps it, already JSON: `packed` is its whole stored body (UTF-8 JSON, what
    event_text would give) and `email` its event_email. Its `body` is only a stand-in (messageId and time:
    what delivery reads of it), so the rest of the event is read from `packed`. The pipeline makes one of an
    event whose stored form is the event as it is (nothing to redact, hash or drop): its pending operations
    carry it, and its outcome rows take the JSON as it is, instead of decoding it only to encode it again."""

    packed: bytes = field(kw_only=True)
    email: str | None = field(kw_only=True)


#: Status → its text, as the stores keep it (a dict lookup: an enum's `.value` costs a descriptor call)
_STATUS_TEXT = {status: status.value for status in Status}


def outcome_row(outcome: Outcome, now: datetime | str) -> tuple[Any, ...]:
    """An outcome's column values in COLUMNS order (a tuple, not a dict: this runs once per outcome on the
    delivery path); `fields` and `warnings` are JSON text; `now` as the store keeps it."""
    event = outcome.event
    email = event.email if isinstance(event, StoredEvent) else event_email(event.body)
    # most outcomes have neither fields nor warnings
    return (event.source, event.message_id, outcome.action or "", outcome.target, outcome.object,
            outcome.operation, outcome.record_id, outcome.created, _STATUS_TEXT[outcome.status],
            outcome.error_code, outcome.message, _json_list(outcome.fields) if outcome.fields else "[]",
            outcome.reason, outcome.attempts, _json_list(outcome.warnings) if outcome.warnings else "[]",
            email, now, now)


def _json_list(values: Sequence[str]) -> str:
    return _json_text(list(values))


def event_rows(outcomes: Sequence[Outcome]) -> list[tuple[str, str, str]]:
    """The `sync_log_events` rows (source, messageId, body JSON) of a batch's outcomes: one per event however
    many outcomes (actions, records) it has, the last one's body when a messageId repeats; sorted by key, so
    concurrent writers (PostgreSQL replicas) lock them in one order."""
    events: dict[tuple[str, str], Event] = {}
    for outcome in outcomes:
        event = outcome.event
        events[(event.source, event.message_id)] = event
    return [(source, message_id, stored_text(event)) for (source, message_id), event in sorted(events.items())]


def stored_text(event: Event) -> str:
    """The event's body as the sync log and its dead letters keep it (JSON text)."""
    return event.packed.decode() if isinstance(event, StoredEvent) else _json_text(event.body)


def _json_text(value: Any) -> str:
    """Compact JSON text (orjson; stdlib json for what it refuses, such as integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        try:
            return json.dumps(value, separators=(",", ":"), default=str)
        except (RecursionError, ValueError):  # nested beyond what JSON encoders follow: an invalid event
            return json.dumps({"unstorable": "the event is nested too deeply to store"})


def event_text(body: Any) -> str:
    """An event body as JSON text for the sync log and its dead letters (any body, even a malformed one)."""
    return _json_text(body)


def event_email(body: dict[str, Any]) -> str | None:
    """The email an event is about (traits, properties or context traits), lower-cased for search."""
    context = body.get("context")
    context_traits = context.get("traits") if isinstance(context, dict) else None  # a logged event may be malformed
    for scope in (body.get("traits"), body.get("properties"), context_traits):
        if isinstance(scope, dict) and isinstance(scope.get("email"), str) and scope["email"].strip():
            return scope["email"].strip().lower()
    return None


def row_from_values(values: Sequence[Any]) -> SyncLogRow:
    """A SyncLogRow from `id`, COLUMNS and the event's body (JSON text; NULL reads as {}), as either store
    returns them."""
    v = dict(zip(("id", *COLUMNS, "event"), values, strict=True))
    return SyncLogRow(
        id=v["id"], source=v["source"], message_id=v["message_id"], action=v["action"], target=v["target"],
        object=v["object"],
        operation=v["operation"], record_id=v["record_id"],
        created=None if v["created"] is None else bool(v["created"]), status=Status(v["status"]),
        error_code=v["error_code"], message=v["message"], fields=tuple(json.loads(v["fields"])),
        reason=v["reason"], attempts=v["attempts"], warnings=tuple(json.loads(v["warnings"])),
        email=v["email"], event=json.loads(v["event"]) if v["event"] is not None else {},
        first_seen=_dt(v["first_seen"]), updated_at=_dt(v["updated_at"]))


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def in_flight_rows(objects: Mapping[str, Sequence[str]], now: datetime
                   ) -> tuple[WritesNote, list[tuple[str, str, str, str]]]:
    """A new in-flight note: its handle and its `written_values` rows (object, record_id, field, JSON value)."""
    note = WritesNote(uuid.uuid4().hex, tuple(sorted({obj.lower() for obj in objects})))
    deletes: dict[str, set[str]] = {}
    for obj, ids in objects.items():
        deletes.setdefault(obj.lower(), set()).update(i[:15] for i in ids)
    since = now.isoformat()
    return note, [(obj, record_id, name, json.dumps({"since": since, "deletes": sorted(deletes[obj])}))
                  for obj, record_id, name in note.rows()]


def in_flight_note(record_id: str, value: str) -> InFlight:
    """An in-flight note as stored back (in_flight_rows)."""
    body = json.loads(value)
    return InFlight(record_id[len(IN_FLIGHT):], datetime.fromisoformat(body["since"]), frozenset(body["deletes"]))


def utcnow() -> datetime:
    return datetime.now(UTC)


class SyncLog(ABC):
    """Where outcomes are kept. One row per (source, messageId, action, target): a replay updates the row.
    `target` is '' except under `on_many_matches: all`, where it is the record written (one row each)."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the tables when missing."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Store outcomes durably (one transaction); attempts add up over replays."""

    @abstractmethod
    async def rows(self, where: SyncLogFilter = ANY, *, limit: int = 100,
                   offset: int = 0) -> list[SyncLogRow]:
        """Rows matching the filter, most recently updated first."""

    @abstractmethod
    async def row(self, row_id: int) -> SyncLogRow | None:
        """One row by its id."""

    @abstractmethod
    async def counts(self, where: SyncLogFilter = ANY) -> dict[Status, int]:
        """Number of rows per status under the filter (status in the filter is ignored)."""

    async def created_record(self, source: str, message_id: str, action: str) -> str | None:
        """The record Id a create already made for this event and action, so it is never re-sent."""
        return (await self.created_records(source, action, [message_id])).get(message_id)

    @abstractmethod
    async def created_records(self, source: str, action: str, message_ids: Sequence[str]) -> dict[str, str]:
        """`created_record` for many events of one source and action at once: messageId → record Id."""

    @abstractmethod
    async def value_times(self, object: str, record_ids: Sequence[str], fields: Sequence[str]
                          ) -> dict[str, dict[str, datetime]]:
        """For `most_recent`: the event time of the value last written to each (record, field) we wrote,
        record Id → field → time."""

    @abstractmethod
    async def record_value_times(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        """Remember (object, record Id, field, event time) of values written; an older time never replaces
        a newer one."""

    @abstractmethod
    async def record_intents(self, intents: Sequence[tuple[str, str, str, str, str]]) -> None:
        """Before creates are sent: (source, message_id, action, object, matchers) with a fate unknown until
        settled (an intent already there keeps what it knows)."""

    @abstractmethod
    async def settle_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None:
        """(source, message_id, action, record_id): created with that Id, or (None) certainly not created."""

    @abstractmethod
    async def open_intents(self, source: str, action: str, message_ids: Sequence[str]) -> dict[str, str | None]:
        """Intents still open for these events: messageId → record Id (created) or None (fate unknown)."""

    @abstractmethod
    async def record_key_intents(self, intents: Sequence[tuple[str, str, str]]) -> None:
        """Before upserts planned as creates are sent: (connection, object, record key) with a fate unknown
        until settled, recorded now (an intent already there for the key is renewed: this create is its)."""

    @abstractmethod
    async def settle_key_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None:
        """(connection, object, record key, record_id): created with that Id (kept until an outcome saying
        created for it is recorded), or (None) certainly not created (removed)."""

    @abstractmethod
    async def open_key_intents(self, connection: str, object: str, keys: Sequence[str]
                               ) -> dict[str, tuple[str | None, datetime]]:
        """Record intents still open for these keys: key → (record Id (created) or None (fate unknown), when
        the intent was recorded)."""

    @abstractmethod
    async def record_written_values(self, rows: Sequence[tuple[str, str, str, Any]], *,
                                    in_flight: WritesNote | None = None) -> None:
        """Remember (object, record Id, field, value) the push direction wrote (the latest value wins); a
        delete is field DELETED_BY_US with the time it succeeded. In the same transaction, the in-flight note
        `in_flight` (begin_writes) is removed."""

    @abstractmethod
    async def begin_writes(self, objects: Mapping[str, Sequence[str]]) -> WritesNote:
        """Before a delivery batch calls Salesforce: note that it writes to these objects (object → the record
        Ids it deletes), until record_written_values(..., in_flight=the returned handle) removes the note."""

    @abstractmethod
    async def writes_in_flight(self, object: str) -> list[InFlight]:
        """The in-flight notes of an object (case-insensitive), oldest first."""

    @abstractmethod
    async def written_values(self, object: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What the push direction last wrote: record Id → field → value."""

    @abstractmethod
    async def sync_back_states(self, source: str | None = None) -> list[SyncBackState]:
        """Change-feed positions, of one source or all."""

    @abstractmethod
    async def seen_records(self, source: str, object: str, record_ids: Sequence[str]) -> dict[str, SeenRecord]:
        """The last published version of these records (absent: never published)."""

    @abstractmethod
    async def save_sync_back(self, progress: SyncBackProgress) -> None:
        """In one transaction: the published records' versions, the counters, the watermark (never moved
        back; None keeps it) and the last error (None clears it)."""

    @abstractmethod
    async def dead_letter(self, source: str, reason: str, payload: str,
                          error_code: str | None = None) -> int:
        """Append to the dead-letter queue; returns the entry's id."""

    @abstractmethod
    async def dead_letters(self, *, replayed: bool | None = False, limit: int = 1000) -> list[DeadLetter]:
        """Dead letters, oldest first; by default those not replayed yet."""

    @abstractmethod
    async def mark_replayed(self, ids: Sequence[int]) -> None:
        """Mark dead letters as re-driven."""

    @abstractmethod
    async def prune_outcomes(self, before: datetime, *, failed: bool, limit: int) -> int:
        """Retention: delete at most `limit` rows last updated before `before` — the failed ones (`failed`),
        which replay needs and which are kept longer, or all the others; returns how many went (events that no
        row is left with go too, in the same transaction). One short transaction, so callers repeat it until
        fewer than `limit` go."""

    @abstractmethod
    async def prune_dead_letters(self, before: datetime, *, limit: int) -> int:
        """Retention: delete at most `limit` dead letters made before `before`; returns how many went."""

    async def __aenter__(self) -> SyncLog:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
