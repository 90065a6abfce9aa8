"""Loop protection: a change the integration user made whose values equal what the push direction last
wrote to that record is our own write coming back, not news; it is not published (it is recorded as skipped
with ECHO_SUPPRESSED and counted). Pure functions."""

from __future__ import annotations

from typing import Any

from .changes import same

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
