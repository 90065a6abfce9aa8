"""Map: one event + one action → one RecordOp, or a failed/skipped Outcome. Pure: no I/O.

A missing required value or a failed transform is a per-event failed outcome naming the source, action
and field — never an exception that stops the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .actions.model import Action, ActionFile, Compare, FieldSpec, MatchGroup, Policy
from .actions.paths import MISSING
from .actions.values import ValueProblem, domain_of, field_value, is_blank
from .events import Event
from .operations import FieldValue, Lookup, Matcher, MatchTree, RecordOp
from .outcomes import Outcome


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


def map_event(source: ActionFile, action: Action, event: Event,
              lengths: Mapping[str, int] | None = None) -> RecordOp | Outcome:
    """The operation this action asks for this event, or the failed outcome explaining why not."""
    body = event.body
    where = f"source {source.source}, action {action.name}"
    try:
        match = build_tree(action.match, body, where) if action.match is not None else None
        fields: dict[str, FieldValue] = {}
        lengths = lengths or {}
        for name, spec in action.field_specs().items():
            try:
                value = field_value(spec, body, length=lengths.get(name.lower()) if lengths else None)
            except ValueProblem as exc:
                raise _Fail(name, f"{where}, field {name}: {exc}") from None
            blank = is_blank(value)
            if blank and (value is MISSING or spec.policy is not Policy.ALWAYS):
                if spec.required:
                    raise _Fail(name, f"{where}, field {name}: required value is missing")
                continue
            fields[name] = FieldValue(None if blank else value, spec.policy)
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
                    follow_converted_leads=action.follow_converted_leads, on_duplicate=action.on_duplicate)
