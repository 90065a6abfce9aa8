"""A changed or deleted Salesforce record as a Segment-shaped event. Pure functions.

Lead and Contact changes are `identify` calls, Account changes `group` calls, other objects' changes a
`track` "<Object> Updated"; deletes are a `track` "<Object> Deleted". Each carries the changed fields
and their previous values (when this feed published the record before) and, under `context.salesforce`,
the object, Id, SystemModstamp and who made the change. The messageId is derived from (object, Id,
SystemModstamp), so a change published twice (after a crash, inside the overlap window) has one messageId.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..actions.sync_back_model import SyncField, SyncObject
from ..direction import published
from ..events import Event
from ..kinds import Direction

DEFAULT_EVENT = {"lead": "identify", "contact": "identify", "account": "group"}


@dataclass(frozen=True)
class Change:
    """One record version read from Salesforce, with what this feed published of it before."""

    object: str
    record: dict[str, Any]  # Id, SystemModstamp, LastModifiedById and the selected fields
    previous: dict[str, Any] | None  # Salesforce field → value last published (None: never published)

    @property
    def id(self) -> str:
        return str(self.record["Id"])

    @property
    def modstamp(self) -> str:
        return str(self.record["SystemModstamp"])


def values_of(spec: SyncObject, record: dict[str, Any]) -> dict[str, Any]:
    """The fields this object publishes, by Salesforce name, under their direction rules (None = blank)."""
    out = {}
    for name, rule in spec.rules().items():
        if rule.direction is not Direction.TO_SALESFORCE:  # the app owns it: never published
            value = record.get(name)
            out[name] = value if published(rule, value) else None
    return out


KEY = "$key"  # in a published version: the id_field's value (a delete event's userId / groupId)


def snapshot(spec: SyncObject, record: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a published version: its published values and its id_field value."""
    return {**values, KEY: record.get(spec.id_field)}


def changed_fields(values: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    """Fields whose value differs from the last published one (all non-blank ones on a first publish)."""
    if previous is None:
        return [name for name, value in values.items() if value is not None]
    return [name for name, value in values.items() if not same(value, previous.get(name))]


def same(a: Any, b: Any) -> bool:
    """Equal as Salesforce stores them: 5 and 5.0, surrounding blanks and None vs "" compare equal."""
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    if a in (None, "") and b in (None, ""):
        return True
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return bool(a == b)


def update_event(source: str, spec: SyncObject, change: Change, values: dict[str, Any],
                 changed: list[str]) -> Event:
    """The event for a created or changed record."""
    rules = spec.rules()
    traits = {_name(n, rules[n]): v for n, v in values.items() if v is not None or not rules[n].unless_blank}
    previous = {_name(n, rules[n]): (change.previous or {}).get(n) for n in changed} if change.previous else {}
    kind = spec.event or DEFAULT_EVENT.get(spec.object.lower(), "track")
    body = _base(change.object, change.id, change.modstamp, change.record.get("LastModifiedById"), "updated")
    key = change.record.get(spec.id_field)
    body["context"]["salesforce"].update(changed=[_name(n, rules[n]) for n in changed], previous=previous)
    if kind == "track":
        body.update(type="track", event=f"{spec.object} Updated",
                    properties={**traits, "changed": body["context"]["salesforce"]["changed"], "previous": previous})
    else:
        body.update(type=kind, traits=traits)
    _identity(body, kind, key, change.id)
    return Event(source, body)


def delete_event(source: str, spec: SyncObject, record_id: str, deleted_date: str,
                 previous: dict[str, Any] | None) -> Event:
    """The event for a deleted record: track "<Object> Deleted" with its last published values."""
    rules = spec.rules()
    last = {_name(n, rules[n]): v for n, v in (previous or {}).items() if n in rules}
    body = _base(spec.object, record_id, deleted_date, None, "deleted")
    body.update(type="track", event=f"{spec.object} Deleted", properties={"id": record_id, "previous": last})
    _identity(body, "track", (previous or {}).get(KEY), record_id)
    return Event(source, body)


def _name(field: str, rule: SyncField) -> str:
    return rule.name or field


def _base(obj: str, record_id: str, modstamp: str, modified_by: Any, what: str) -> dict[str, Any]:
    digest = hashlib.sha256(f"{obj}:{record_id}:{modstamp}:{what}".encode()).hexdigest()[:32]
    return {"messageId": f"sf-{digest}", "timestamp": _iso(modstamp),
            "context": {"salesforce": {"object": obj, "id": record_id, "systemModstamp": modstamp,
                                       "lastModifiedById": modified_by}}}


def _identity(body: dict[str, Any], kind: str, key: Any, record_id: str) -> None:
    """userId (identify, track) or groupId (group) from the object's id_field; the Salesforce Id otherwise."""
    value = str(key) if key not in (None, "") else None
    if kind == "group":
        body["groupId"] = value or record_id
        body["anonymousId"] = f"salesforce:{record_id}"
    elif value:
        body["userId"] = value
    else:
        body["anonymousId"] = f"salesforce:{record_id}"


def _iso(modstamp: str) -> str:
    """A Salesforce datetime ("…+0000") as ISO 8601 with a colon in the offset."""
    try:
        return parse_modstamp(modstamp).isoformat(timespec="milliseconds")
    except ValueError:
        return modstamp


def parse_modstamp(text: str) -> datetime:
    """A Salesforce datetime ("2026-12-02T10:00:00.000+0000" or "…Z") as an aware UTC datetime."""
    fixed = text.replace("Z", "+00:00")
    if len(fixed) >= 5 and fixed[-5] in "+-" and ":" not in fixed[-5:]:
        fixed = fixed[:-2] + ":" + fixed[-2:]
    return datetime.fromisoformat(fixed).astimezone(UTC)


def wire(moment: datetime) -> str:
    """A datetime in Salesforce's wire format (milliseconds, UTC, +0000): it sorts as the times do."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
