"""Plan: a batch of RecordOps + the records its lookup query found → concrete writes, or outcomes without a
write (not found, several matches, nothing to change). Pure: the queries are run by the caller.

Operations aimed at the same record merge in event order (last value per field wins, policies
respected): one record, one write, no duplicate creates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .actions.model import Compare, OnManyMatches, Operation, Policy
from .actions.values import domain_of
from .operations import FieldValue, Matcher, MatchTree, RecordOp
from .outcomes import Outcome

SYSTEM_FIELDS = ("Id", "LastModifiedDate")


@dataclass(slots=True)  # one per record written: slots make it cheaper to build and to read
class Write:
    """One record write serving one or more events (`ops`, in event order)."""

    kind: str  # create | update | delete | upsert
    object: str
    ops: list[RecordOp]
    values: dict[str, Any] = field(default_factory=dict)
    record_id: str | None = None
    ext_field: str | None = None
    ext_value: Any = None
    warnings: list[str] = field(default_factory=list)
    value_times: dict[str, datetime] = field(default_factory=dict)  # most_recent field → event time of its value


@dataclass
class Plan:
    writes: list[Write] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    current: dict[str, dict[str, Any]] = field(default_factory=dict)  # looked-up records by Id (for previews)


def reads_current(op: RecordOp) -> bool:
    """Whether planning this op needs the record's current values: set_if_empty, most_recent, and defaults
    (a default is written only over a blank)."""
    return any(v.policy in (Policy.SET_IF_EMPTY, Policy.MOST_RECENT) or (v.from_default and v.policy is not
                                                                         Policy.ALWAYS)
               for v in op.fields.values())


def native_upsert_field(ops: Sequence[RecordOp], external_ids: Set[str]) -> str | None:
    """The external-ID field of a batch of upserts that needs no lookup query (one exact matcher, and no op
    that needs the record's current values)."""
    op = ops[0]
    if op.operation is not Operation.UPSERT or op.match is None or op.follow_converted_leads:
        return None
    single = op.match.single()
    if single is None or single.field.lower() not in external_ids:
        return None
    if any(reads_current(o) for o in ops):
        return None
    return single.field


def id_matcher(ops: Sequence[RecordOp]) -> Matcher | None:
    """The Id matcher of a batch of updates/deletes that needs no lookup query."""
    op = ops[0]
    if op.match is None or op.operation not in (Operation.UPDATE, Operation.DELETE) or op.follow_converted_leads:
        return None
    single = op.match.single()
    if single is None or single.field.lower() != "id":
        return None
    if any(reads_current(o) for o in ops):
        return None
    return single


def select_fields(ops: Sequence[RecordOp], extra: Sequence[str] = ()) -> list[str]:
    """Fields the lookup query reads: Id, LastModifiedDate, matchers, and every mapped field (for policies
    and to skip unchanged values)."""
    names: dict[str, None] = dict.fromkeys(SYSTEM_FIELDS)
    for op in ops:
        for m in op.match.matchers() if op.match else []:
            names.setdefault(m.field)
        for name in op.fields:
            names.setdefault(name)
    for name in extra:
        names.setdefault(name)
    return list(names)


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def matcher_holds(m: Matcher, record: dict[str, Any]) -> bool:
    value = _field(record, m.field)
    if value is None:
        return False
    if m.compare is Compare.DOMAIN:
        return domain_of(str(value)) == m.value
    if m.field.lower() == "id" and isinstance(value, str) and isinstance(m.value, str):
        return value[:15] == m.value[:15]
    if isinstance(m.value, (int, float)) and not isinstance(m.value, bool):
        try:
            return float(value) == float(m.value)
        except (TypeError, ValueError):
            return False
    return _norm(value) == _norm(m.value)


def _key(m_field: str, value: Any, compare: Compare) -> Any:
    """The index key under which a record value and a matcher value meet (as matcher_holds compares)."""
    if compare is Compare.DOMAIN:
        return ("d", m_field.lower(), domain_of(str(value)))
    if m_field.lower() == "id" and isinstance(value, str):
        return ("i", value[:15])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("n", m_field.lower(), float(value))
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return ("n", m_field.lower(), float(text)) if text and text[0] in "0123456789-." else \
                ("s", m_field.lower(), text)
        except ValueError:
            return ("s", m_field.lower(), text)
    return ("o", m_field.lower(), value)


class RecordIndex:
    """Found records by matcher key, so each operation checks only its candidates (not the whole batch)."""

    def __init__(self, found: Sequence[dict[str, Any]], trees: Sequence[MatchTree]) -> None:
        self._index: dict[Any, list[dict[str, Any]]] = {}
        wanted = {(m.field, m.compare) for tree in trees for m in tree.matchers()}
        for record in found:
            for m_field, compare in wanted:
                value = _field(record, m_field)
                if value is not None:
                    self._index.setdefault(_key(m_field, value, compare), []).append(record)

    def candidates(self, tree: MatchTree) -> list[dict[str, Any]]:
        if not self._index:  # nothing found (a batch of new records): no key to work out
            return []
        seen: dict[str, dict[str, Any]] = {}
        for m in tree.matchers():
            for record in self._index.get(_key(m.field, m.value, m.compare), ()):
                seen[record["Id"]] = record
        return list(seen.values())


def tree_holds(tree: MatchTree, record: dict[str, Any]) -> bool:
    checks = (tree_holds(i, record) if isinstance(i, MatchTree) else matcher_holds(i, record) for i in tree.items)
    return any(checks) if tree.kind == "any" else all(checks)


def _field(record: dict[str, Any], name: str) -> Any:
    if name in record:
        return record[name]
    lowered = name.lower()
    return next((v for k, v in record.items() if k.lower() == lowered), None)


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _failed(op: RecordOp, code: str, message: str, **kw: Any) -> Outcome:
    return Outcome.failed(op.event, code, message, action=op.action, object=op.object,
                          operation=op.operation.value, **kw)


def merge_values(ops: Sequence[RecordOp], current: dict[str, Any] | None,
                 value_times: Mapping[str, datetime] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Field values of ops aimed at one record, in event order, with policies applied against `current`.
    Unchanged values are dropped. Returns (values, warnings)."""
    values, warnings, _ = _merge(ops, current, value_times or {})
    return values, warnings


def _merge(ops: Sequence[RecordOp], current: dict[str, Any] | None, value_times: Mapping[str, datetime],
           own_user: str | None = None, *, timed: bool = True) -> tuple[dict[str, Any], list[str], dict[str, datetime]]:
    """merge_values, and the event time of each `most_recent` value kept (sent, or already held).

    `most_recent` compares event times: within the ops (an older event never overrides a newer one's
    value, on create as on update) and against the time of the record's value: the event time of the
    value we last wrote to that field (`value_times`, from the sync log), else the record's
    LastModifiedDate when the field holds a value (a blank field is filled by any timed event). An event
    without a time never overrides an existing value.

    A value we wrote without learning so (a delivery that died after its write reached the org: a crash, a
    cancelled Bulk job that had run) comes back with its event, which is read again. So an event whose value
    the record already holds, and that is newer than the value's known time, gives that value its time: it is
    kept (and recorded) though nothing is sent. Where no time is known, the newest such event's time stands
    for the value instead of LastModifiedDate, which is later than every event the dead delivery wrote and
    would otherwise hold the newer events out.

    Under two-way sync (`own_user`: the integration user) a record someone else changed last is guarded by
    that change's time too: a person's edit in Salesforce is not overwritten by an older event that arrives
    after it.

    `timed=False`: the caller knows that no op has a `most_recent` field (plan_batch looks once per batch)."""
    values: dict[str, Any] = {}
    written_at: dict[str, datetime | None] = {}
    timed = timed and any(fv.policy is Policy.MOST_RECENT for op in ops for fv in op.fields.values())
    record_changed = _moment(current.get("LastModifiedDate")) if timed and current else None
    floors = _floors(ops, current, value_times, record_changed) if timed else {}
    by_other = bool(own_user and current and str(current.get("LastModifiedById") or "")[:15] != own_user[:15])
    for op in ops:
        event_time = _moment(op.event.timestamp) if timed else None  # only most_recent compares event times
        for name, fv in op.fields.items():
            if fv.from_default and fv.policy is not Policy.ALWAYS:
                # a default fills a create or a blank field; it never replaces a value the record holds
                # or one an event of this write supplied
                if (current is not None and not _blank(_field(current, name))) or name in values:
                    continue
            elif fv.policy is Policy.SET_IF_EMPTY:
                existing = _field(current, name) if current else None
                if not _blank(existing) or name in values:
                    continue
            elif fv.policy is Policy.MOST_RECENT:
                earlier = written_at.get(name)
                if event_time is None:
                    if current is not None or earlier is not None:
                        continue
                else:
                    floor = floors.get(name)
                    if by_other and record_changed is not None and current is not None \
                            and not _blank(_field(current, name)):
                        floor = max(floor or record_changed, record_changed)  # a person's later edit holds
                    held = current is not None and _same(_field(current, name), fv.value)
                    # the value's own event (or one carrying the same value) is not older than that value
                    if (floor is not None and (event_time < floor or (event_time == floor and not held))) or \
                            (earlier is not None and event_time < earlier):
                        continue
            values[name] = fv.value
            written_at[name] = event_time
    kept = set(values) if timed else ()
    if current is not None:
        values = {k: v for k, v in values.items() if not _same(_field(current, k), v)}
    times = {name: moment for name, moment in written_at.items()
             if moment is not None and name in kept and
             any(op.fields.get(name, _UNTIMED).policy is Policy.MOST_RECENT for op in ops)} if timed else {}
    return values, [], times  # an op's own warnings reach its outcomes through deliver (one op, one outcome)


def _floors(ops: Sequence[RecordOp], current: dict[str, Any] | None, value_times: Mapping[str, datetime],
            record_changed: datetime | None) -> dict[str, datetime]:
    """Per `most_recent` field, the time of the value the record holds: the one we recorded; else (a value
    no recorded write of ours explains) the newest event of these ops carrying that very value; else the
    record's LastModifiedDate. A blank field has no value to protect: no floor."""
    floors: dict[str, datetime] = {}
    if current is None:
        return floors
    names = {name for op in ops for name, fv in op.fields.items() if fv.policy is Policy.MOST_RECENT}
    for name in names:
        held = _field(current, name)
        if name in value_times:
            floors[name] = value_times[name]
        elif not _blank(held):
            carried = [t for op in ops if (fv := op.fields.get(name)) is not None and fv.policy is Policy.MOST_RECENT
                       and _same(held, fv.value) and (t := _moment(op.event.timestamp)) is not None]
            floor = max(carried) if carried else record_changed
            if floor is not None:
                floors[name] = floor
    return floors


_UNTIMED = FieldValue(None)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same(current: Any, new: Any) -> bool:
    if current is None or new is None:
        return current is None and new is None
    if isinstance(new, bool) or isinstance(current, bool):
        return current == new
    if isinstance(new, (int, float)) and isinstance(current, (int, float)):
        return float(current) == float(new)
    return str(current) == str(new)


def plan_batch(ops: Sequence[RecordOp], found: Sequence[dict[str, Any]],
               value_times: Mapping[str, Mapping[str, datetime]] | None = None, *,
               own_user: str | None = None) -> Plan:
    """Decide every op of a looked-up batch (same object, operation and matcher shape). `value_times`:
    record Id → `most_recent` field → event time of the value we last wrote there; `own_user`: the
    integration user, for objects synced both ways (see _merge)."""
    plan = Plan()
    by_record: dict[str, list[RecordOp]] = {}
    creates: dict[tuple[Any, ...], list[RecordOp]] = {}
    records = {r["Id"]: r for r in found}
    index = RecordIndex(found, [op.match for op in ops if op.match is not None])
    same_event: dict[tuple[str, str, str], Write] = {}
    timed = any(fv.policy is Policy.MOST_RECENT for op in ops for fv in op.fields.values())
    for op in ops:
        matches = [r for r in index.candidates(op.match) if tree_holds(op.match, r)] if op.match else []
        if op.operation is Operation.CREATE:
            # the same event twice in one batch (a redelivery: same source, messageId and action) is one
            # create; the repeat shares its outcome (created: false)
            repeat = (op.source, op.event.message_id, op.action) if op.event.message_id else None
            earlier = same_event.get(repeat) if repeat else None
            if earlier is not None:
                earlier.ops.append(op)
                continue
            values, warnings, times = _merge([op], None, {}, timed=timed)
            write = Write("create", op.object, [op], values, warnings=warnings, value_times=times)
            plan.writes.append(write)
            if repeat:
                same_event[repeat] = write
            continue
        if not matches:
            if op.operation is Operation.UPSERT:
                creates.setdefault(op.record_key() or (("op", str(id(op))),), []).append(op)
            else:
                plan.outcomes.append(_failed(op, "NOT_FOUND", f"no {op.object} matches {_describe(op.match)}"))
            continue
        targets = matches
        if len(matches) > 1:
            if op.on_many_matches is OnManyMatches.FAIL:
                ids = ", ".join(sorted(r["Id"] for r in matches))
                plan.outcomes.append(_failed(op, "MULTIPLE_MATCHES", f"{len(matches)} {op.object} records match "
                                             f"{_describe(op.match)}: {ids}"))
                continue
            if op.on_many_matches is OnManyMatches.NEWEST:
                targets = [max(matches, key=lambda r: (str(r.get("LastModifiedDate") or ""), r["Id"]))]
        for record in targets:
            by_record.setdefault(record["Id"], []).append(op)
    for group in creates.values():
        values, warnings, times = _merge(group, None, {}, timed=timed)
        plan.writes.append(Write("create", group[0].object, group, values, warnings=warnings, value_times=times))
    plan.current = records
    for record_id, group in by_record.items():
        kind = "delete" if group[-1].operation is Operation.DELETE else "update"
        if kind == "delete":
            plan.writes.append(Write("delete", group[0].object, group, record_id=record_id))
            continue
        values, warnings, times = _merge(group, records[record_id], (value_times or {}).get(record_id, {}),
                                         own_user, timed=timed)
        plan.writes.append(Write("update", group[0].object, group, values, record_id=record_id, warnings=warnings,
                                 value_times=times))
    return plan


def plan_native(ops: Sequence[RecordOp], ext_field: str) -> Plan:
    """Native upserts: ops with the same external-ID value (case-insensitive) merge into one write."""
    groups: dict[Any, list[RecordOp]] = {}
    for op in ops:
        value = next(m.value for m in op.match.matchers() if m.field == ext_field)  # type: ignore[union-attr]
        groups.setdefault(_norm(value), []).append(op)
    plan = Plan()
    for group in groups.values():
        value = next(m.value for m in group[0].match.matchers() if m.field == ext_field)  # type: ignore[union-attr]
        values, warnings = merge_values(group, None)
        values = {k: v for k, v in values.items() if k.lower() != ext_field.lower()}
        plan.writes.append(Write("upsert", group[0].object, group, values, ext_field=ext_field, ext_value=value,
                                 warnings=warnings))
    return plan


def plan_by_id(ops: Sequence[RecordOp]) -> Plan:
    """Updates and deletes addressed by Salesforce Id: no query; ops on one Id merge."""
    groups: dict[str, list[RecordOp]] = {}
    for op in ops:
        matcher = op.match.single() if op.match else None
        assert matcher is not None
        groups.setdefault(str(matcher.value)[:15], []).append(op)
    plan = Plan()
    for group in groups.values():
        record_id = str(group[0].match.single().value)  # type: ignore[union-attr]
        if group[-1].operation is Operation.DELETE:
            plan.writes.append(Write("delete", group[0].object, group, record_id=record_id))
        else:
            values, warnings = merge_values(group, None)
            plan.writes.append(Write("update", group[0].object, group, values, record_id=record_id,
                                     warnings=warnings))
    return plan


def _describe(tree: MatchTree | None) -> str:
    if tree is None:
        return "-"
    joiner = " or " if tree.kind == "any" else " and "
    return joiner.join(f"{m.field} = {m.value!r}" for m in tree.matchers())
