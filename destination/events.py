"""The event as it travels the data path: the Segment JSON body plus the source it arrived for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = frozenset({"identify", "track", "group", "page", "screen", "alias"})


@dataclass(frozen=True, slots=True)
class Event:
    """One Segment-style event (`body` is its JSON object, as ingested) and its source name.

    `checked`: this process has just checked `body` against the Segment spec's shape (validate.check, as
    the Kafka reader's normalising does), so routing need not check it again. Set only by the code that ran
    the check on this very dict; every other event (HTTP ingest, the embedded log, replay, sync-back) is
    checked when it is routed. Not part of the event's value: equal events compare equal either way."""

    source: str
    body: dict[str, Any]
    checked: bool = field(default=False, compare=False, repr=False)

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))

    @property
    def message_id(self) -> str:
        return str(self.body.get("messageId", ""))

    @property
    def timestamp(self) -> str | None:
        """The skew-corrected event time (ISO-8601), when the event has one."""
        value = self.body.get("timestamp") or self.body.get("originalTimestamp")
        return str(value) if value is not None else None

    @property
    def partition_key(self) -> str:
        """The ordering key: userId, else anonymousId, else groupId, else messageId."""
        for key in ("userId", "anonymousId", "groupId", "messageId"):
            value = self.body.get(key)
            if value not in (None, ""):
                return str(value)
        return ""
