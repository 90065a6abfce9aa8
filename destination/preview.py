"""Preview: the exact outcome of a set of events — same routing, mapping, batching, lookups and planner as
delivery, and each would-be write validated against describe the way the org checks it — with no writes.

Totals of would-create / would-update / would-delete / would-skip / would-fail by reason, one predicted
outcome per event and action, warnings for non-blank values a run would replace, and a few samples with
the field-by-field change.

Events are batched as a run batches them when they arrive together (a backfill, a replay, a burst): by
batch key, up to the batch size in records. Within the preview, a batch sees what earlier batches would
have written (a record an earlier event creates is there to update), because predicted writes are kept in
an overlay the next batch's lookups are amended with.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .actions.model import ActionFile, Mode, Operation
from .actions.paths import MISSING
from .actions.values import is_blank, source_value
from .batcher import Batcher
from .config import BatchingConfig
from .deliver import Delivery
from .events import Event
from .operations import RecordOp
from .outcomes import Outcome, Status
from .plan import Plan, Write, id_matcher, merge_values, native_upsert_field
from .route import route
from .salesforce.client import SalesforceClient
from .salesforce.describe import ObjectDescribe
from .validate import (
    Checked,
    Problem,
    check_write,
    datetime_wire,
    from_json,
    new_record,
    object_access,
    well_formed_id,
)
from .write import DROPPABLE

VERDICTS = ("create", "update", "delete", "skip", "fail")


@dataclass
class Sample:
    event: str  # messageId
    action: str
    object: str
    verdict: str  # create | update | delete | skip | fail
    record_id: str | None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # field → {"from": old, "to": new}
    reason: str | None = None


@dataclass
class Prediction:
    """The outcome a run would record for one event and action."""

    event: str  # messageId
    action: str | None
    object: str | None
    verdict: str  # create | update | delete | skip | fail
    code: str | None = None  # the error code of a fail, the reason code of a skip
    message: str | None = None
    fields: tuple[str, ...] = ()
    record_id: str | None = None  # None for a record the run would create
    warnings: tuple[str, ...] = ()
    source: Event | None = field(default=None, repr=False, compare=False)


@dataclass
class Overwrites:
    """Per field: records whose non-blank value a run would replace, and with what."""

    replaced: int = 0
    with_blank: int = 0
    with_default: int = 0


@dataclass
class PreviewReport:
    events: int = 0
    totals: Counter[str] = field(default_factory=Counter)  # create, update, delete, skip, fail
    reasons: Counter[str] = field(default_factory=Counter)  # "fail: NOT_FOUND", "skip: NOTHING_TO_CHANGE", ...
    samples: list[Sample] = field(default_factory=list)
    overwrites: dict[str, Overwrites] = field(default_factory=dict)  # "Lead.Title" → counts
    predictions: list[Prediction] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per field whose non-blank values a run would replace."""
        lines = []
        for name, counts in sorted(self.overwrites.items()):
            extra = [f"{n} with {what}" for n, what in ((counts.with_blank, "a blank"),
                                                       (counts.with_default, "a default")) if n]
            lines.append(f"{counts.replaced} records would have a non-blank value replaced in {name}"
                         + (f" ({', '.join(extra)})" if extra else ""))
        return lines

    def to_json(self, *, outcomes: bool = False) -> dict[str, Any]:
        """The stable JSON form (documented in docs/operations.md); `outcomes` adds one entry per event."""
        data: dict[str, Any] = {
            "events": self.events, "would": {k: self.totals.get(k, 0) for k in VERDICTS},
            "reasons": dict(self.reasons.most_common()),
            "overwrites": {k: v.__dict__ for k, v in sorted(self.overwrites.items())},
            "warnings": self.warnings(),
            "samples": [s.__dict__ for s in self.samples]}
        if outcomes:
            data["outcomes"] = [{"event": p.event, "action": p.action, "object": p.object, "verdict": p.verdict,
                                 "code": p.code, "message": p.message, "fields": list(p.fields),
                                 "record_id": p.record_id, "warnings": list(p.warnings)} for p in self.predictions]
        return data


async def preview(sources: Mapping[str, ActionFile], delivery: Delivery, events: Iterable[Event], *,
                  samples: int = 5, batching: BatchingConfig | None = None) -> PreviewReport:
    """Predict every event's outcomes without writing anything."""
    run = _Preview(sources, delivery, samples)
    batching = batching or BatchingConfig()
    # as in a burst: no linger, and the coalescing window never passes, so batches are cut by size, held and
    # joined by later events of their records, and written when the batcher nearly fills or at the end: the
    # batches the pipeline makes of the same events arriving at once under the same settings
    batcher = Batcher(run.batch, rest_size=batching.rest_size, bulk_size=batching.bulk_size, linger_ms=10**9,
                      max_pending=batching.max_pending, window_ms=batching.window_ms and 10**9)
    for event in events:
        run.position[id(event)] = run.report.events
        run.report.events += 1
        for result in route(sources, event):
            if isinstance(result, Outcome):
                run.outcome(result)
            else:
                await batcher.add(result)
    await batcher.drain()
    if run.errors:
        raise run.errors[0]
    run.report.predictions.sort(key=lambda p: run.position.get(id(p.source), 0))  # event order (stable)
    return run.report


class _Overlay:
    """The records earlier batches of this preview would have created, changed or deleted."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}  # object (lower) → Id → record
        self.deleted: set[str] = set()  # 15-character Ids
        self._ids = itertools.count(1)

    def amend(self, obj: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        table = self.records.get(obj.lower(), {})
        out = {r["Id"]: {**r, **table.get(r["Id"], {})} for r in found if r["Id"][:15] not in self.deleted}
        for record_id, record in table.items():
            out.setdefault(record_id, record)
        return list(out.values())

    def put(self, obj: str, record: dict[str, Any]) -> None:
        self.records.setdefault(obj.lower(), {})[record["Id"]] = record

    def delete(self, obj: str, record_id: str) -> None:
        self.records.get(obj.lower(), {}).pop(record_id, None)
        self.deleted.add(record_id[:15])

    def new_id(self, describe: ObjectDescribe) -> str:
        return f"{describe.key_prefix or '000'}PRV{next(self._ids):012d}"


class _Preview:
    def __init__(self, sources: Mapping[str, ActionFile], delivery: Delivery, samples: int) -> None:
        self.sources = sources
        self.delivery = delivery
        self.samples = samples
        self.report = PreviewReport()
        self.overlay = _Overlay()
        self.errors: list[BaseException] = []
        self.position: dict[int, int] = {}  # id(event) → its place in the input

    async def batch(self, ops: list[RecordOp]) -> None:
        try:  # the batcher runs this in a task and drops what it raises: keep it for preview() to raise
            await self._batch(ops)
        except Exception as exc:  # re-raised by preview() after the drain (a bug, not a bad event)
            self.errors.append(exc)

    async def _batch(self, ops: list[RecordOp]) -> None:
        plan, outcomes = await self.delivery.prepare(ops, known=self.overlay.amend)
        client = self.delivery.clients.get(ops[0].connection)
        if client is None or any(o.error_code == "CONFIG_ERROR" for o in outcomes):  # no connection or object
            for outcome in outcomes:
                self.outcome(outcome)
            return
        describe = await client.describe.get(ops[0].object)
        native = native_upsert_field(ops, describe.external_ids)
        by_id = id_matcher(ops) is not None
        for outcome in _by_id_outcomes(outcomes, ops, describe, self.overlay.deleted) if by_id else outcomes:
            self.outcome(outcome)
        for write in plan.writes:
            await self._write(client, write, plan, native, by_id)

    async def _write(self, client: SalesforceClient, write: Write, plan: Plan, native: str | None,
                     by_id: bool) -> None:
        """What the writer would send for this write, the org's verdict, and the overlay's new state."""
        describe = await client.describe.get(write.object)
        current = plan.current.get(write.record_id or "")
        first = str(_ext_value(write.ops[0], "Id")) if by_id else ""
        if by_id and (not well_formed_id(first) or first[:3] != describe.key_prefix):
            # a run writes the events of one Id (by its first 15 characters) as one write to the first
            # event's Id: an 18-character form with a wrong checksum makes the org refuse them all
            refused = Problem("MALFORMED_ID", f"{describe.raw.get('label', describe.name)} ID: id value of "
                              f"incorrect type: {first}", ("Id",))
            self._decided(write, "fail", Checked(errors=[refused]), current)
            return
        if write.kind == "delete":
            denied = object_access(describe, "delete")
            if denied is not None:
                self._decided(write, "fail", Checked(errors=[denied]), current)
                return
            self.overlay.delete(describe.name, str(write.record_id))
            self._decided(write, "delete", None, current)
            return
        creating = write.kind != "update"
        values, preset = dict(write.values), {}
        if native or by_id:  # the run sends these without a lookup: every merged value, changed or not
            values = {k: v for k, v in merge_values(write.ops, None)[0].items() if k.lower() != (native or "").lower()}
        if native and creating:
            ext = describe.field(native) or {"name": native, "type": "string"}
            preset = {ext["name"]: from_json(ext, _ext_value(write.ops[0], native))[0]}
        if write.kind == "update" and not values and not native:
            self._decided(write, "skip", None, current, code="NOTHING_TO_CHANGE")
            return
        text = write.ops[0].mode is Mode.BULK
        record_type = _record_type_of(current)
        checked = check_write(describe, values, creating=creating, preset=preset, text=text, record_type=record_type)
        warnings = list(write.warnings)
        problem = checked.error
        if (problem and problem.fields and problem.code in DROPPABLE
                and any(op.retry_without_failing_fields for op in write.ops)):
            named = {f.lower() for f in problem.fields}
            kept = {k: v for k, v in values.items() if k.lower() not in named}
            if len(kept) < len(values):
                warnings.append(f"dropped {', '.join(sorted(problem.fields))} after {problem.code}: "
                                f"{problem.message}")
                values = kept
                checked = check_write(describe, values, creating=creating, preset=preset, text=text,
                                      record_type=record_type)
        if checked.error is not None:
            self._decided(write, "fail", checked, current, warnings=warnings)
            return
        now = datetime_wire(datetime.now(UTC))
        if creating:
            record = new_record(describe, {**checked.values, **preset})
            record.update(Id=self.overlay.new_id(describe), LastModifiedDate=now)
            if checked.record_type is not None:
                record["RecordTypeId"] = checked.record_type
            self.overlay.put(describe.name, record)
            self._decided(write, "create", None, current, warnings=warnings)
            return
        if current is not None:
            self._count_overwrites(describe.name, write, current, values)
            kept = {k: v for k, v in checked.values.items() if not (k == "RecordTypeId" and v is None)}  # the org keeps it
            self.overlay.put(describe.name, {**current, **kept, "LastModifiedDate": now})
        self._decided(write, "update", None, current, warnings=warnings)

    def _decided(self, write: Write, verdict: str, checked: Checked | None, current: dict[str, Any] | None, *,
                 code: str | None = None, warnings: list[str] | None = None) -> None:
        problem = checked.error if checked is not None else None
        record_id = None if verdict == "create" else write.record_id
        for n, op in enumerate(write.ops):
            # events coalesced into one create: the first creates the record, the others update it (as a run
            # records them)
            said = "update" if verdict == "create" and n else verdict
            self._add(Prediction(op.event.message_id, op.action, write.object, said,
                                 problem.code if problem else code, problem.message if problem else None,
                                 problem.fields if problem else (), record_id, tuple(warnings or ()), op.event))
        if len(self.report.samples) < self.samples:
            current = current or {}
            self.report.samples.append(Sample(
                write.ops[0].event.message_id, write.ops[0].action, write.object, verdict, record_id,
                {k: {"from": current.get(k), "to": v} for k, v in write.values.items()},
                reason=problem.message if problem else code))

    def outcome(self, outcome: Outcome) -> None:
        """An outcome decided without a write (routing, mapping, lookups)."""
        verdict = "fail" if outcome.status is Status.FAILED else "skip"
        if outcome.status is Status.SUCCEEDED:
            verdict = "delete" if outcome.operation == "delete" else "create" if outcome.created else "update"
        code = outcome.error_code if outcome.status is Status.FAILED else \
            (outcome.reason or "").split(":")[0] if outcome.status is Status.SKIPPED else None
        self._add(Prediction(outcome.event.message_id, outcome.action, outcome.object, verdict, code,
                             outcome.message or outcome.reason, tuple(outcome.fields), outcome.record_id,
                             source=outcome.event))
        if len(self.report.samples) < self.samples:
            self.report.samples.append(Sample(outcome.event.message_id, outcome.action or "", outcome.object or "",
                                              verdict, outcome.record_id, reason=outcome.message or outcome.reason))

    def _add(self, prediction: Prediction) -> None:
        self.report.predictions.append(prediction)
        self.report.totals[prediction.verdict] += 1
        if prediction.verdict in ("skip", "fail"):
            self.report.reasons[f"{prediction.verdict}: {prediction.code}"] += 1

    def _count_overwrites(self, obj: str, write: Write, current: dict[str, Any], values: dict[str, Any]) -> None:
        """Fields of this update whose non-blank value in the record would change."""
        lowered = {k.lower(): v for k, v in current.items()}
        for name, value in values.items():
            old = lowered.get(name.lower())
            if is_blank(old) or _same(old, value):
                continue
            counts = self.report.overwrites.setdefault(f"{obj}.{name}", Overwrites())
            counts.replaced += 1
            if is_blank(value):
                counts.with_blank += 1
            elif self._from_default(write.ops, name):
                counts.with_default += 1

    def _from_default(self, ops: list[RecordOp], name: str) -> bool:
        """True when the last event setting `name` had no value of its own and the action's default filled it."""
        op = next((o for o in reversed(ops) if name in o.fields), None)
        source = self.sources.get(op.source) if op else None
        action = next((a for a in source.actions if a.name == op.action), None) if source and op else None
        spec = action.field_specs().get(name) if action else None
        return spec is not None and spec.default is not None and op is not None and \
            is_blank(source_value(spec, op.event.body))


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, (int, float)) and not isinstance(old, bool):
        try:
            return float(old) == float(new)
        except (TypeError, ValueError):
            return False
    return str(old) == str(new)


def _record_type_of(current: dict[str, Any] | None) -> str | None:
    """A looked-up record's RecordTypeId (the lookup reads it on objects with record types)."""
    value = next((v for k, v in (current or {}).items() if k.lower() == "recordtypeid"), None)
    return str(value) if value else None


def _ext_value(op: RecordOp, ext_field: str) -> Any:
    return next((m.value for m in op.match.matchers() if m.field.lower() == ext_field.lower()), MISSING) \
        if op.match else MISSING


def _by_id_outcomes(outcomes: list[Outcome], ops: list[RecordOp], describe: ObjectDescribe,
                    deleted: set[str]) -> list[Outcome]:
    """A run sends updates and deletes by Id without a lookup, as one write per Id (its first 15 characters)
    to the first event's Id, so the org, not the planner, answers for an Id the lookup did not find: that
    first Id malformed or of another object (MALFORMED_ID), deleted by an earlier batch (a delete succeeds,
    an update gets ENTITY_IS_DELETED), or not there (NOT_FOUND)."""
    leading: dict[str, str] = {}
    for op in ops:
        value = str(_ext_value(op, "Id"))
        leading.setdefault(value[:15], value)
    out = []
    for outcome in outcomes:
        mine = next((o for o in ops if o.event is outcome.event and o.action == outcome.action), None)
        if outcome.error_code != "NOT_FOUND" or mine is None:
            out.append(outcome)
            continue
        first = leading[str(_ext_value(mine, "Id"))[:15]]
        if not well_formed_id(first) or first[:3] != describe.key_prefix:
            outcome.error_code = "MALFORMED_ID"
            outcome.message = f"{describe.raw.get('label', describe.name)} ID: id value of incorrect type: {first}"
        elif first[:15] in deleted and mine.operation is Operation.DELETE:
            outcome = Outcome.succeeded(outcome.event, record_id=first, created=False, action=outcome.action,
                                        object=outcome.object, operation=outcome.operation)
        elif first[:15] in deleted:
            outcome.error_code, outcome.message = "ENTITY_IS_DELETED", "entity is deleted"
        out.append(outcome)
    return out
