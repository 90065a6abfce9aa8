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


def check(body: Any) -> None:
    """Raise InvalidEvent naming the first field of `body` that breaks the Segment spec's shape."""
    if not isinstance(body, dict):
        raise InvalidEvent("event", "must be a JSON object")
    for name in ID_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidEvent(name, "must be a string or a number")
    for name in STRING_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidEvent(name, "must be a string")
    message_id = body.get("messageId")
    if message_id is not None:
        if not isinstance(message_id, str):
            raise InvalidEvent("messageId", "must be a string")
        if len(message_id) > MAX_MESSAGE_ID_LENGTH:
            raise InvalidEvent("messageId", f"must be at most {MAX_MESSAGE_ID_LENGTH} characters")
    for name in OBJECT_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise InvalidEvent(name, "must be an object")
    for name in TIME_FIELDS:
        value = body.get(name)
        if value is not None and not _is_iso_time(value):
            raise InvalidEvent(name, "must be an ISO-8601 date-time")
    context = body.get("context")
    if context and context.get("traits") is not None and not isinstance(context["traits"], dict):
        raise InvalidEvent("context.traits", "must be an object")
    _check_depth(body)


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


def _check_depth(body: dict[str, Any]) -> None:
    """Iterative (a recursive walk is what deep nesting attacks): only containers are visited."""
    stack: list[tuple[Any, int, str]] = [(value, 2, key) for key, value in body.items()
                                         if type(value) is dict or type(value) is list]
    while stack:
        value, depth, top = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidEvent(top, f"is nested deeper than {MAX_DEPTH} levels")
        children = value.values() if type(value) is dict else value
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1, top))
