"""PII in the stored copy of an event: a source's `redact:` paths become "[redacted]" and its `hash:` paths
their SHA-256 (hex of the UTF-8 text), in what the sync log and the dead-letter queue keep. Salesforce gets
the real values (mapping reads the event before this runs), and a Salesforce error message that quotes a
redacted value is scrubbed the same way. A `writeKey` field is never kept (the HTTP ingest drops it
already; events from Kafka may still carry one)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .actions.model import ActionFile
from .events import Event
from .outcomes import Outcome

REDACTED = "[redacted]"


def _hashed(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def kept_as_is(source: ActionFile | None, body: Mapping[str, Any]) -> bool:
    """Whether the body is stored as it is: its source redacts and hashes nothing, and it has no writeKey."""
    return (source is None or not (source.redact or source.hash)) and "writeKey" not in body


def stored_body(source: ActionFile | None, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body to store, and each replaced text value → its replacement (to scrub messages). The input is
    not changed: dicts along a rule's path are copied."""
    if kept_as_is(source, body):
        return body, {}
    if source is None or not (source.redact or source.hash):
        return {k: v for k, v in body.items() if k != "writeKey"}, {}
    out = dict(body)
    out.pop("writeKey", None)
    replaced: dict[str, str] = {}
    rules = [(p, lambda _v: REDACTED) for p in source.redact] + [(p, _hashed) for p in source.hash]
    for path, replace in rules:
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                node = None  # type: ignore[assignment]
                break
            node[part] = node = dict(child)
        if node is None or parts[-1] not in node or node[parts[-1]] is None:
            continue
        value = node[parts[-1]]
        node[parts[-1]] = replace(value)
        if isinstance(value, str | int | float) and len(str(value)) >= 3:
            replaced[str(value)] = node[parts[-1]]
    return out, replaced


def scrub(text: str | None, replaced: Mapping[str, str]) -> str | None:
    """`text` with every replaced value swapped for its replacement (longest first)."""
    if not text or not replaced:
        return text
    for value in sorted(replaced, key=len, reverse=True):
        text = text.replace(value, replaced[value])
    return text


def stored_outcomes(sources: Mapping[str, ActionFile], event: Event,
                    outcomes: list[Outcome]) -> tuple[Event, list[Outcome]]:
    """The event and its outcomes as the sync log and dead letters keep them."""
    body, replaced = stored_body(sources.get(event.source), event.body)
    if body is event.body:
        return event, outcomes
    stored = Event(event.source, body)
    return stored, [dataclasses.replace(o, event=stored, message=scrub(o.message, replaced)) for o in outcomes]
