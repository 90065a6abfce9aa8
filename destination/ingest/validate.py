"""The Segment spec's shape of one event, checked field by field: ids are strings (numbers become strings, as
Segment does), `context` / `traits` / `properties` / `integrations` are objects, timestamps are ISO-8601,
`messageId` is a bounded string, and nesting is bounded. Ingest refuses what fails with a 400 naming the
field; routing fails an event that reached the log anyway (logged before this check, or produced straight to
Kafka) with INVALID_EVENT instead of letting it reach code that assumes the shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

MAX_MESSAGE_ID_LENGTH = 256
MAX_DEPTH = 32  # levels of objects/arrays in one event; real Segment payloads stay under 10
ID_FIELDS = ("userId", "anonymousId", "groupId", "previousId")
OBJECT_FIELDS = ("context", "traits", "properties", "integrations")
TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")  # receivedAt is ours: ingest sets it
STRING_FIELDS = ("type", "event", "name", "category", "writeKey")


class InvalidEvent(ValueError):
    """An event that does not have the Segment spec's shape; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def coerce_ids(body: dict[str, Any]) -> None:
    """Numeric ids become strings in place (`"userId": 42` → `"42"`), as Segment's API stores them."""
    for name in ID_FIELDS:
        value = body.get(name)
        if type(value) is int or type(value) is float:
            body[name] = _number_text(value)


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return str(value)


_ID, _STRING, _OBJECT, _TIME, _MESSAGE_ID = range(5)  # ids and plain strings first: `check` tests `<= _STRING`
_KIND = {**dict.fromkeys(ID_FIELDS, _ID), **dict.fromkeys(STRING_FIELDS, _STRING),
         **dict.fromkeys(OBJECT_FIELDS, _OBJECT), **dict.fromkeys(TIME_FIELDS, _TIME), "messageId": _MESSAGE_ID}
_WRONG = {_ID: "must be a string or a number", _STRING: "must be a string", _OBJECT: "must be an object",
          _TIME: "must be an ISO-8601 date-time"}


def check(body: Any, *, numbers_as_ids: bool = False) -> None:
    """Raise InvalidEvent naming the first field of `body` that breaks the Segment spec's shape.
    One pass over the event's top-level fields (this runs for every event at ingest and at routing).
    `numbers_as_ids` (ingest): numeric ids become strings in place, as `coerce_ids` does, in the same pass."""
    if type(body) is not dict:
        raise InvalidEvent("event", "must be a JSON object")
    for name, value in body.items():
        if type(value) is str:  # most fields: decided by the field's kind alone, no container to walk
            kind = _KIND.get(name)
            if kind is None or kind <= _STRING:  # any string is a good id or plain string
                continue
            if kind == _MESSAGE_ID:
                if len(value) > MAX_MESSAGE_ID_LENGTH:
                    raise InvalidEvent("messageId", f"must be at most {MAX_MESSAGE_ID_LENGTH} characters")
            elif kind == _TIME:
                if not _is_iso_time(value):
                    raise InvalidEvent(name, _WRONG[kind])
            else:
                raise InvalidEvent(name, _WRONG[kind])
            continue
        if value is None:
            continue
        kind = _KIND.get(name)
        if kind is not None:
            if kind == _ID and numbers_as_ids and (type(value) is int or type(value) is float):
                body[name] = _number_text(value)  # a value replaced, no key added: the iteration stays valid
                continue
            if kind == _MESSAGE_ID:
                if type(value) is not str:
                    raise InvalidEvent("messageId", "must be a string")
                if len(value) > MAX_MESSAGE_ID_LENGTH:
                    raise InvalidEvent("messageId", f"must be at most {MAX_MESSAGE_ID_LENGTH} characters")
            elif kind == _OBJECT:
                if type(value) is not dict:
                    raise InvalidEvent(name, _WRONG[kind])
                if name == "context" and value.get("traits") is not None and type(value["traits"]) is not dict:
                    raise InvalidEvent("context.traits", "must be an object")
            elif kind == _TIME:
                if not _is_iso_time(value):
                    raise InvalidEvent(name, _WRONG[kind])
            elif type(value) is not str:  # ids (numbers were made strings before) and plain strings
                raise InvalidEvent(name, _WRONG[kind])
        if (type(value) is dict or type(value) is list) and _too_deep(value, MAX_DEPTH - 1):
            raise InvalidEvent(name, f"is nested deeper than {MAX_DEPTH} levels")


def problem(body: Any) -> InvalidEvent | None:
    """The InvalidEvent `check` would raise, or None for a well-formed event."""
    try:
        check(body)
    except InvalidEvent as exc:
        return exc
    return None


def _is_iso_time(value: Any) -> bool:
    if not isinstance(value, str) or not value or len(value) > 64:
        return False
    try:
        datetime.fromisoformat(value)  # Python 3.11+ takes `Z` and the basic format too
    except ValueError:
        return False
    return True


def _too_deep(container: dict[str, Any] | list[Any], levels_left: int) -> bool:
    """True when `container` holds objects or arrays more than `levels_left` levels down. Recursive, but
    never deeper than MAX_DEPTH calls: it stops at the limit instead of following the attacker's nesting."""
    if levels_left <= 0:
        return True
    for child in container.values() if type(container) is dict else container:
        if (type(child) is dict or type(child) is list) and _too_deep(child, levels_left - 1):
            return True
    return False
