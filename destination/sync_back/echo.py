"""Loop protection: a change the integration user made whose values equal what the push direction last
wrote to that record is our own write coming back, not news; so is the delete of a record the push direction
deleted (Salesforce's delete log does not say who deleted: delivery notes its own deletes). Neither is
published (each is recorded as skipped with ECHO_SUPPRESSED and counted). A change that may be ours but whose
write is still in flight (delivery records what it wrote only after Salesforce answered) is held back until
that recording is in. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..synclog.base import DELETED_BY_US, InFlight
from .changes import parse_modstamp, same

ECHO = "ECHO_SUPPRESSED"


def same_user(a: Any, b: Any) -> bool:
    """User Ids compared as Salesforce does: the 15-character case-sensitive prefix."""
    return isinstance(a, str) and isinstance(b, str) and len(a) >= 15 and a[:15] == b[:15]


def is_echo(record: dict[str, Any], changed: list[str], written: dict[str, Any] | None,
            integration_user: str | None) -> bool:
    """Whether this change is our own write coming back: made by the integration user, and every changed
    field holds exactly what we last wrote to it."""
    if not integration_user or not same_user(record.get("LastModifiedById"), integration_user):
        return False
    if not changed:
        return True
    if not written:
        return False
    lowered = {k.lower(): v for k, v in written.items()}
    return all(name.lower() in lowered and same(record.get(name), lowered[name.lower()]) for name in changed)


def is_own_delete(written: dict[str, Any] | None, deleted_date: str, skew: timedelta) -> bool:
    """Whether this delete is the push direction's: it noted deleting the record, and Salesforce's deletedDate
    is not later than that (give or take `skew`) — a later one is someone's delete after an undelete."""
    noted = (written or {}).get(DELETED_BY_US)
    if not isinstance(noted, str):
        return False
    try:
        return parse_modstamp(deleted_date) <= datetime.fromisoformat(noted) + skew
    except ValueError:
        return False


def held_update(modified_by: Any, made: datetime | None, integration_user: str | None,
                in_flight: Sequence[InFlight], skew: timedelta) -> bool:
    """Whether a change not recognised as our echo may still be one: the integration user made it (at `made`;
    None: not known, so any batch counts) while a delivery batch that began before it (give or take `skew`,
    the clocks differ) was writing to the object — what that batch wrote is recorded only after Salesforce
    answered, so the change is judged once it is."""
    if not integration_user or not same_user(modified_by, integration_user):
        return False
    return any(made is None or note.since <= made + skew for note in in_flight)


def held_delete(record_id: str, deleted_date: str, in_flight: Sequence[InFlight], skew: timedelta) -> bool:
    """Whether a delete not recognised as ours may still be: a delivery batch that began before it (give or
    take `skew`) and deletes this record has not recorded its outcome yet."""
    made = parse_modstamp(deleted_date)
    return any(record_id[:15] in note.deletes and note.since <= made + skew for note in in_flight)
