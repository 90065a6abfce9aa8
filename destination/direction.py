"""Per-field direction and merge rules, shared by the push direction (mapping) and the sync-back direction
(destination/sync_back/): who owns a field, and who wins when both sides change it. Pure functions.

| rule                          | push (event → Salesforce)              | sync-back (Salesforce → event)  |
|-------------------------------|----------------------------------------|---------------------------------|
| to_salesforce                 | written as the action says             | never published                 |
| from_salesforce               | never written                          | published                       |
| both, most_recent             | written only when the event is newer   | published                       |
|                               | than the field's last change           |                                 |
| both, salesforce_wins         | written only while the field is blank  | published                       |
| both, app_wins                | written as the action says             | published                       |
| unless_blank (default true)   | a blank never clears the field         | a blank is left out             |
"""

from __future__ import annotations

from typing import Any

from .actions.sync_back_model import SyncField
from .kinds import Direction, Merge, Policy


def push_policy(rule: SyncField | None, policy: Policy) -> Policy | None:
    """The policy the push direction writes a field with under its rule; None: the field is not written."""
    if rule is None:
        return policy
    if rule.direction is Direction.FROM_SALESFORCE:
        return None
    if rule.direction is Direction.BOTH and rule.merge is Merge.SALESFORCE_WINS:
        return Policy.SET_IF_EMPTY
    if rule.direction is Direction.BOTH and rule.merge is Merge.MOST_RECENT:
        return Policy.MOST_RECENT
    if rule.unless_blank and policy is Policy.ALWAYS:
        return Policy.SKIP_BLANK
    return policy


def published(rule: SyncField, value: Any) -> bool:
    """Whether the sync-back direction publishes this field's value."""
    if rule.direction is Direction.TO_SALESFORCE:
        return False
    return not (rule.unless_blank and (value is None or (isinstance(value, str) and not value.strip())))
