"""Segment Tracking API payloads: decoding, size limits, batch merging, messageId, receivedAt and clock-skew
correction — as Segment's own API does (field_survey.md §3)."""

from __future__ import annotations

import functools
import itertools
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .validate import InvalidEvent, check

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_EVENTS = 2500
SHORT_PATHS = {"i": "identify", "t": "track", "g": "group", "p": "page", "s": "screen", "a": "alias", "b": "batch"}
TYPES = ("identify", "track", "group", "page", "screen", "alias")


class BadRequest(ValueError):
    """A payload Segment's API would refuse with 400 {code, message}."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body, already decompressed and size-checked by `body.read_limited`
    (JSON or text/plain)."""
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("invalid_json", "the body is not valid JSON (or nested too deeply)") from None
    if not isinstance(data, dict):
        raise BadRequest("invalid_json", "the body must be a JSON object")
    return data


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise(event: dict[str, Any], kind: str, received: datetime, sent_at: Any = None,
              received_iso: str | None = None, where: str = "", *, max_bytes: int | None = MAX_EVENT_BYTES
              ) -> dict[str, Any]:
    """One event ready for the log: type, messageId, receivedAt, skew-corrected timestamp (`received_iso` is
    `received` as ISO-8601, when the caller already has it: one per request, not one per event). An event
    without the Segment spec's shape is a 400 naming the field (`where` prefixes it: `batch[3].`).
    `max_bytes` None: the caller has checked the size already."""
    out = dict(event)
    _normalise_in_place(out, kind, received, sent_at, received_iso or _iso(received), where)
    if max_bytes is not None and len(orjson.dumps(out)) > max_bytes:
        raise BadRequest("event_too_large", f"{where}an event is larger than {max_bytes} bytes")
    return out


def _normalise_in_place(out: dict[str, Any], kind: str, received: datetime, sent_at: Any, received_iso: str,
                        where: str) -> None:
    """`normalise` on a dict the caller owns, without the size check."""
    kind = out["type"] = kind if kind != "batch" else str(out.get("type", ""))
    if kind not in TYPES:
        raise BadRequest("invalid_type", f"{where}unknown event type {kind!r}")
    try:
        check(out, numbers_as_ids=True)
    except InvalidEvent as exc:
        raise BadRequest("invalid_event", f"{where}{exc}") from None
    get = out.get
    if not get("userId") and not get("anonymousId") and kind != "alias":
        raise BadRequest("missing_id", f"{where}an event needs userId or anonymousId")
    if kind == "track" and not get("event"):
        raise BadRequest("missing_event", f"{where}a track call needs `event`")
    if kind == "group" and not get("groupId"):
        raise BadRequest("missing_group", f"{where}a group call needs `groupId`")
    if not get("messageId"):
        out["messageId"] = f"ajs-{uuid.uuid4()}"
    out["receivedAt"] = received_iso
    if get("timestamp") is None:  # _correct_time's first case, without its calls (most server-side events)
        out["timestamp"] = received_iso
        return
    try:
        _correct_time(out, received, sent_at, received_iso)
    except (OverflowError, ValueError):
        raise BadRequest("invalid_timestamp", "timestamp or sentAt is out of range") from None


_WRITE_KEY_MEMBER = len(b',"writeKey":')


def _accept(out: dict[str, Any], kind: str, received: datetime, sent_at: Any, received_iso: str, where: str,
            batch: Accepted) -> None:
    """Normalise `out` (owned) in place, drop its writeKey and add it to `batch` serialised once: those bytes
    are both what the size limit measures and what the log stores. The limit counts the writeKey as sent (the
    size an event had before its key was taken out), so the same events pass it as when it was measured
    before the key was dropped."""
    _normalise_in_place(out, kind, received, sent_at, received_iso, where)
    key = out.pop("writeKey", _ABSENT)
    encoded = orjson.dumps(out)
    size = len(encoded) if key is _ABSENT else len(encoded) + _WRITE_KEY_MEMBER + len(orjson.dumps(key))
    if size > MAX_EVENT_BYTES:
        raise BadRequest("event_too_large", f"{where}an event is larger than {MAX_EVENT_BYTES} bytes")
    batch.bodies.append(out)
    batch.encoded.append(encoded)
    # Event.partition_key: after normalising, ids are non-empty strings or absent/None/"", and messageId is set
    batch.keys.append(out.get("userId") or out.get("anonymousId") or out.get("groupId") or out["messageId"])


_ABSENT = object()


@dataclass(slots=True)
class Accepted:
    """The events of one request, ready for the log: each as its normalised dict (without writeKey), as the
    JSON the log stores, and its ordering key (Event.partition_key) — parallel lists, no object per event."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def only(self, keep: list[bool]) -> Accepted:
        """The events whose flag in `keep` is true, in order."""
        return Accepted(list(itertools.compress(self.bodies, keep)), list(itertools.compress(self.encoded, keep)),
                        list(itertools.compress(self.keys, keep)))

    def plus(self, more: Accepted) -> Accepted:
        """These events, then `more`."""
        return Accepted(self.bodies + more.bodies, self.encoded + more.encoded, self.keys + more.keys)


def normalise_logged(event: dict[str, Any], message_id: str, appended_ms: int | None) -> dict[str, Any]:
    """An event read from the event log that may not have come through this API (a producer wrote it straight
    to the Kafka topic): the same checks and fields as an API call, except that a missing messageId is
    `message_id` (derived from where the record sits in the log, so a redelivery keeps it) and receivedAt is
    when the log took the record (`appended_ms`, ms since the epoch; now when unknown). An event that an
    ingest already normalised (it has receivedAt) only gets a missing messageId: its timestamp is corrected
    already. The size is not checked again: the log's own limit applies to the record. `event` is left as
    it is (`read_logged` normalises a dict it is given in place)."""
    if event.get("receivedAt") and event.get("messageId"):
        return event
    return read_logged(dict(event), message_id, appended_ms)[0]


def read_logged(event: dict[str, Any], message_id: str, appended_ms: int | None) -> tuple[dict[str, Any], bool]:
    """`normalise_logged` on a dict the caller gives up (one just decoded from a record): normalised in place
    and returned, with whether it was checked against the Segment spec's shape here (validate.check): true
    when it was normalised, false for one an ingest had normalised (passed on as it is, so whoever routes it
    checks it)."""
    if not event.get("messageId"):
        event["messageId"] = message_id
    if event.get("receivedAt"):
        return event, False
    if appended_ms is None:
        received = datetime.now(UTC)
        received_iso = _iso(received)
    else:
        received, received_iso = _moment_ms(appended_ms)
    _normalise_in_place(event, "batch", received, None, received_iso, "")
    return event, True


@functools.lru_cache(maxsize=1024)
def _moment_ms(ms: int) -> tuple[datetime, str]:
    """A record timestamp as a datetime and as ISO-8601 (records of one burst share their millisecond)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment, _iso(moment)


# UTC to the second or the millisecond, `Z`: what _iso writes (to the millisecond), as analytics.js sends it
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z")


def _correct_time(out: dict[str, Any], received: datetime, sent_at: Any, received_iso: str) -> None:
    """Set `timestamp`, moved by the device's clock skew (sentAt vs receivedAt) when both are known.
    The timestamp has passed validate.check (an ISO-8601 date-time)."""
    value = out.get("timestamp")
    if not (out.get("sentAt") or sent_at) and type(value) is str:
        canonical = _CANONICAL.fullmatch(value)
        if canonical is not None:  # no skew to correct, and the text is _iso's already: no parse, no format
            out["timestamp"] = value if canonical.group(1) else f"{value[:-1]}.000Z"
            return
    timestamp = _parse_time(value)
    if timestamp is None:
        out["timestamp"] = received_iso
        return
    sent = _parse_time(out.get("sentAt") or sent_at)
    if sent is not None:
        # the device clock is off by (sentAt - receivedAt); move timestamp by the same amount
        skew = sent - received
        if abs(skew) > timedelta(seconds=1):
            out["originalTimestamp"] = out.get("timestamp")
            timestamp = timestamp - skew
    out["timestamp"] = _iso(timestamp)


def events_of(kind: str, data: dict[str, Any], received: datetime) -> list[dict[str, Any]]:
    """The events of one request; batch-level context and integrations are merged into each event. (As they
    reach the log, writeKey included: `accepted_events` is what ingest stores.)"""
    if kind != "batch":
        return [normalise(data, kind, received)]
    sent_at, received_iso, shared_context, shared_integrations = _batch_fields(data, received)
    return [normalise(_item(item, index, shared_context, shared_integrations), "batch", received, sent_at,
                      received_iso, f"batch[{index}].") for index, item in enumerate(data["batch"])]


def accepted_events(kind: str, data: dict[str, Any], received: datetime) -> Accepted:
    """`events_of` without writeKey, each event serialised once (the same events pass, the same 400s)."""
    out = Accepted()
    if kind != "batch":
        _accept(dict(data), kind, received, None, _iso(received), "", out)
        return out
    sent_at, received_iso, shared_context, shared_integrations = _batch_fields(data, received)
    for index, item in enumerate(data["batch"]):
        _accept(_item(item, index, shared_context, shared_integrations), "batch", received, sent_at,
                received_iso, f"batch[{index}].", out)
    return out


def _batch_fields(data: dict[str, Any], received: datetime) -> tuple[Any, str, dict[str, Any], dict[str, Any]]:
    """Check a batch request's own fields: its sentAt, `received` as ISO-8601, and the context and
    integrations shared by its events."""
    batch = data.get("batch")
    if not isinstance(batch, list):
        raise BadRequest("invalid_batch", "`batch` must be an array of events")
    if len(batch) > MAX_BATCH_EVENTS:
        raise BadRequest("batch_too_large", f"a batch holds at most {MAX_BATCH_EVENTS} events")
    shared_context = _shared(data, "context")
    shared_integrations = _shared(data, "integrations")
    sent_at = data.get("sentAt")
    if sent_at is not None and not isinstance(sent_at, str):
        raise BadRequest("invalid_event", "sentAt: must be an ISO-8601 date-time")
    return sent_at, _iso(received), shared_context, shared_integrations


def _item(item: Any, index: int, shared_context: dict[str, Any], shared_integrations: dict[str, Any]
          ) -> dict[str, Any]:
    """A batch item as a dict of its own, the batch-level context and integrations merged in."""
    if not isinstance(item, dict):
        raise BadRequest("invalid_batch", f"batch[{index}]: every batch item must be an object")
    merged = dict(item)
    if shared_context:
        merged["context"] = _merged(shared_context, item.get("context"), f"batch[{index}].context")
    if shared_integrations:
        merged["integrations"] = _merged(shared_integrations, item.get("integrations"), f"batch[{index}].integrations")
    return merged


def _shared(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The batch-level `context` or `integrations` merged into every event: an object, or absent."""
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("invalid_event", f"{name}: must be an object")
    return value


def _merged(shared: dict[str, Any], own: Any, where: str) -> dict[str, Any]:
    if own is None:
        return dict(shared)
    if not isinstance(own, dict):
        raise BadRequest("invalid_event", f"{where}: must be an object")
    return {**shared, **own}
