"""Map: one event + one action → one RecordOp, or a failed/skipped Outcome. Pure: no I/O.

A missing required value or a failed transform is a per-event failed outcome naming the source, action
and field — never an exception that stops the stream.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from typing import Any

from .actions.model import Action, ActionFile, Compare, FieldSpec, MatchGroup, Policy
from .actions.paths import MISSING, getter
from .actions.values import ValueProblem, domain_of, field_value, is_blank, resolve_field
from .direction import push_policy
from .events import Event
from .operations import FieldValue, Lookup, Matcher, MatchTree, RecordOp
from .outcomes import Outcome

_FLOAT_MAX = int(sys.float_info.max)


class _Fail(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _matcher_value(field: str, spec: FieldSpec, body: dict[str, Any]) -> Any:
    try:
        value = field_value(spec, body)
    except ValueProblem as exc:
        raise _Fail(field, str(exc)) from None
    if is_blank(value):
        return MISSING
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _FLOAT_MAX:
        # planning compares numbers as floats; a JSON integer of 309+ digits cannot be one
        raise _Fail(field, f"matcher {field}: a number of {len(str(abs(value)))} digits cannot be matched")
    if spec.compare is Compare.DOMAIN:
        value = domain_of(str(value)) or MISSING
    return value


def build_tree(group: MatchGroup, body: dict[str, Any], where: str) -> MatchTree:
    """Matchers with their values; in `any` blank ones drop out, in `all` a blank one fails the event."""
    items: list[Matcher | MatchTree] = []
    for member in group.members():
        if isinstance(member, MatchGroup):
            try:
                items.append(build_tree(member, body, where))
            except _Fail:
                if group.kind == "all":
                    raise
            continue
        field, spec = member
        value = _matcher_value(field, spec, body)
        if value is MISSING:
            if group.kind == "all":
                raise _Fail(field, f"{where}: matcher {field} has no value in this event")
            continue
        items.append(Matcher(field, value, spec.compare))
    if not items:
        names = ", ".join(f for f, _ in group.fields())
        raise _Fail(names, f"{where}: none of the matchers ({names}) has a value in this event")
    return MatchTree(group.kind, tuple(items))


def map_event(source: ActionFile, action: Action, event: Event) -> RecordOp | Outcome:
    """The operation this action asks for this event, or the failed outcome explaining why not.

    Lengths, unknown spread keys and number ranges are checked later against the object's describe
    (destination/fit.py): mapping stays pure."""
    body = event.body
    where = f"source {source.source}, action {action.name}"
    try:
        match = build_tree(action.match, body, where) if action.match is not None else None
        fields, warnings = _spread(action, body) if action.fields_from is not None else ({}, [])
        for name, spec in action.field_specs().items():
            try:
                value, from_default = resolve_field(spec, body)
            except ValueProblem as exc:
                raise _Fail(name, f"{where}, field {name}: {exc}") from None
            blank = is_blank(value)
            if blank and (value is MISSING or spec.policy is not Policy.ALWAYS):
                if spec.required:
                    raise _Fail(name, f"{where}, field {name}: required value is missing")
                continue
            fields[name] = FieldValue(None if blank else value, spec.policy, from_default=from_default,
                                      truncate=spec.truncate is not False)
        fields = _directed(source, action, fields, warnings)
        if action.record_type:
            fields.setdefault("RecordTypeId", FieldValue(action.record_type, Policy.ALWAYS))
        if action.idempotency_field:  # the marker an uncertain create is looked up by (write.py reconciles)
            marker = f"{source.source}:{action.name}:{event.message_id}"
            fields[action.idempotency_field] = FieldValue(marker, Policy.ALWAYS)
            match = MatchTree("any", (Matcher(action.idempotency_field, marker),))
        lookups = []
        for ref_field, lookup in action.lookups.items():
            try:
                tree = build_tree(lookup.match, body, f"{where}, lookup {ref_field}")
            except _Fail:
                if lookup.required:
                    raise
                continue
            lookups.append(Lookup(ref_field, lookup.object, tree, lookup.on_many_matches, lookup.required))
    except _Fail as failure:
        return Outcome.failed(event, action=action.name, object=action.object, operation=action.operation.value,
                              error_code="MAPPING_ERROR", message=str(failure), fields=(failure.field,))
    return RecordOp(event=event, action=action.name, object=action.object, operation=action.operation, match=match,
                    fields=fields, lookups=tuple(lookups), on_many_matches=action.on_many_matches, mode=action.mode,
                    connection=source.connection, retry_without_failing_fields=action.retry_without_failing_fields,
                    follow_converted_leads=action.follow_converted_leads, on_duplicate=action.on_duplicate,
                    warnings=tuple(warnings))


def _directed(source: ActionFile, action: Action, fields: dict[str, FieldValue],
              warnings: list[str]) -> dict[str, FieldValue]:
    """Fields under the source's per-field direction rules (destination/direction.py): a field Salesforce owns
    is left out (with a warning), a field both sides change gets its merge rule's policy."""
    rules = source.rules_for(action.object)
    if not rules:
        return fields
    out: dict[str, FieldValue] = {}
    for name, value in fields.items():
        policy = push_policy(rules.get(name.lower()), value.policy)
        if policy is None:
            warnings.append(f"{name} is from_salesforce (sync_back): not written")
        else:
            out[name] = value if policy is value.policy else replace(value, policy=policy)
    return out


def _spread(action: Action, body: dict[str, Any]) -> tuple[dict[str, FieldValue], list[str]]:
    """Fields from `fields_from` objects (renamed, allowed, not denied, not blank); explicit fields and
    later spreads override. Objects and lists inside are left out with a warning."""
    fields: dict[str, FieldValue] = {}
    warnings: list[str] = []
    explicit = {name.lower() for name in action.fields}
    for spread in action.spreads():
        found = getter(spread.path)(body)
        if not isinstance(found, dict):
            continue
        renames = {k.lower(): v for k, v in spread.rename.items()}
        for key, value in found.items():
            name = renames.get(str(key).lower(), str(key))
            if name.lower() in explicit or not spread.keep(str(key), name):
                continue
            if isinstance(value, (dict, list)) or (isinstance(value, float) and not math.isfinite(value)):
                warnings.append(f"{spread.path}.{key} is not a value a field can hold: left out")
                continue
            if is_blank(value):
                continue
            fields[name] = FieldValue(value, spread.policy, spread=True)
    return fields, warnings
