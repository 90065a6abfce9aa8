"""Write: planned writes → Salesforce (sObject Collections or Bulk API 2.0) → one outcome per event.

Transient per-record failures are retried for just those records, with backoff, up to a budget;
REQUEST_LIMIT_EXCEEDED pauses and retries, never drops; `retry_without_failing_fields` drops the fields
Salesforce named and retries once; a create whose fate is unknown is reconciled by a lookup before it is
ever sent again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .actions.model import Mode, OnDuplicate, OnManyMatches
from .operations import RecordOp
from .outcomes import Fate, Outcome
from .plan import Write
from .salesforce.client import SalesforceClient
from .salesforce.errors import ErrorKind, SalesforceApiError, SalesforceError
from .salesforce.results import RecordResult

DROPPABLE = frozenset({"INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_FIELD",
                       "STRING_TOO_LONG", "INVALID_TYPE_ON_FIELD_IN_RECORD", "JSON_PARSER_ERROR",
                       "INVALID_EMAIL_ADDRESS", "FIELD_INTEGRITY_EXCEPTION"})
# An uncertain create → the record's Id when it exists, None when it does not (safe to resend), "" when
# there is no way to tell (a create without matchers): that event fails with UNCERTAIN_WRITE, never resent.
Reconcile = Callable[[Write], Awaitable[str | None]]
Pause = Callable[[SalesforceApiError], Awaitable[None]]  # called on REQUEST_LIMIT_EXCEEDED before retrying
_BULK_OP = {"create": "insert", "update": "update", "delete": "delete", "upsert": "upsert"}


@dataclass
class _Pending:
    write: Write
    attempts: int = 0
    dropped_fields: bool = False


class Writer:
    """Executes writes for one connection."""

    def __init__(self, client: SalesforceClient, *, max_attempts: int = 6, backoff_seconds: float = 0.2,
                 backoff_max: float = 30.0, reconcile: Reconcile | None = None, pause: Pause | None = None,
                 on_call: Callable[[str, int], None] | None = None) -> None:
        self.client = client
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.backoff_max = backoff_max
        self.reconcile = reconcile
        self.pause = pause
        self.on_call = on_call or (lambda kind, size: None)

    async def execute(self, writes: Sequence[Write], mode: Mode, fate: Fate | None = None) -> list[Outcome]:
        """Every write to a terminal outcome per event (retrying transient failures inside). With a `fate`,
        each write is expected there before it is sent and its outcomes land there as soon as they are
        terminal, so an exception later in the batch cannot lose or overwrite them."""
        fate = fate if fate is not None else Fate([op for w in writes for op in w.ops])
        outcomes: list[Outcome] = []
        pending = [_Pending(w) for w in writes]
        for item in pending:
            for op in item.write.ops:
                fate.expect(op, target_of(op, item.write))
        for item in [p for p in pending if p.write.kind == "update" and not p.write.values]:
            outcomes.extend(_skipped(item.write, "NOTHING_TO_CHANGE: every mapped value already matches"))
            fate.add(outcomes[-len(item.write.ops):])
        pending = [p for p in pending if not (p.write.kind == "update" and not p.write.values)]
        round_ = 0
        while pending:
            if round_:
                delay = min(self.backoff_max, self.backoff_seconds * 2 ** (round_ - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            round_ += 1
            retry: list[_Pending] = []
            for kind in ("create", "upsert", "update", "delete"):
                group = [p for p in pending if p.write.kind == kind]
                if not group:
                    continue
                results = await self._call(kind, [p.write for p in group], mode)
                for item, result in zip(group, results, strict=True):
                    item.attempts += 1
                    done, again = await self._settle(item, result)
                    outcomes.extend(done)
                    fate.add(done)
                    if again is not None:
                        retry.append(again)
            pending = retry
        return outcomes

    async def _call(self, kind: str, writes: list[Write], mode: Mode) -> list[RecordResult]:
        """One request (or Bulk job) for a group; request-level transient errors become per-record ones."""
        while True:
            try:
                self.on_call(f"{mode.value}:{kind}", len(writes))
                if mode is Mode.BULK:
                    return await self._bulk(kind, writes)
                return await self._rest(kind, writes)
            except SalesforceApiError as exc:
                if exc.kind is ErrorKind.RATE_LIMITED and self.pause is not None:
                    await self.pause(exc)
                    continue
                if exc.kind in (ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED, ErrorKind.AUTH):
                    return [RecordResult.failed(exc.error) for _ in writes]
                raise

    async def _rest(self, kind: str, writes: list[Write]) -> list[RecordResult]:
        obj = writes[0].object
        records = self.client.records
        if kind == "create":
            return await records.create_many(obj, [w.values for w in writes])
        if kind == "update":
            return await records.update_many(obj, [{"Id": w.record_id, **w.values} for w in writes])
        if kind == "delete":
            return await records.delete_many([str(w.record_id) for w in writes])
        ext = writes[0].ext_field or ""
        return await records.upsert_many(obj, ext, [{ext: w.ext_value, **w.values} for w in writes])

    async def _bulk(self, kind: str, writes: list[Write]) -> list[RecordResult]:
        obj = writes[0].object
        rows: list[dict[str, Any]]
        if kind == "create":
            rows = [dict(w.values) for w in writes]
        elif kind == "update":
            rows = [{"Id": w.record_id, **w.values} for w in writes]
        elif kind == "delete":
            rows = [{"Id": w.record_id} for w in writes]
        else:
            rows = [{w.ext_field or "": w.ext_value, **w.values} for w in writes]
        return await self.client.bulk.run(obj, _BULK_OP[kind], rows, external_id_field=writes[0].ext_field)

    async def _settle(self, item: _Pending, result: RecordResult) -> tuple[list[Outcome], _Pending | None]:
        write = item.write
        if result.success:
            created = write.kind == "create" or (write.kind == "upsert" and result.created)
            return _succeeded(write, result.id or write.record_id, created, item.attempts), None
        error = result.error or SalesforceError("UNKNOWN_ERROR", "Salesforce returned no error detail")
        if write.kind == "delete" and error.code == "ENTITY_IS_DELETED":
            return _succeeded(write, write.record_id, False, item.attempts, "the record was already deleted"), None
        if error.kind is ErrorKind.UNCERTAIN:
            found = await self.reconcile(write) if self.reconcile is not None else None
            if found:
                return _succeeded(write, found, True, item.attempts, "create confirmed by lookup after a timeout"), None
            if self.reconcile is None or found == "":
                return _failed(write, error, item.attempts), None
            return [], item  # not there: safe to send again
        if result.transient and item.attempts < self.max_attempts:
            return [], item
        existing = _onto_duplicate(write, error)
        if existing is not None:  # a new item: this round's update group must not pick it up as well
            return [], _Pending(existing, attempts=item.attempts, dropped_fields=item.dropped_fields)
        if (error.fields and error.code in DROPPABLE and not item.dropped_fields
                and any(op.retry_without_failing_fields for op in write.ops)):
            named = {f.lower() for f in error.fields}
            kept = {k: v for k, v in write.values.items() if k.lower() not in named}
            if len(kept) < len(write.values):
                warning = f"dropped {', '.join(sorted(error.fields))} after {error.code}: {error.message}"
                item.write = replace(write, values=kept, warnings=[*write.warnings, warning])
                item.dropped_fields = True
                return [], item
        return _failed(write, error, item.attempts), None


def _onto_duplicate(write: Write, error: SalesforceError) -> Write | None:
    """`on_duplicate: update_existing`: a create (or an upsert that would create) that the org's duplicate
    rules blocked becomes an update of the record Salesforce matched (the first of the object's matches, as
    Salesforce ranks them), with a warning naming it. None when the option is off or no Id came back (Bulk
    results carry none)."""
    if error.code != "DUPLICATES_DETECTED" or write.kind not in ("create", "upsert"):
        return None
    if not any(op.on_duplicate is OnDuplicate.UPDATE_EXISTING for op in write.ops):
        return None
    result = error.extra.get("duplicateResult") or {}
    ids = [m["record"]["Id"] for match in result.get("matchResults", [])
           if str(match.get("entityType", write.object)).lower() == write.object.lower()
           for m in match.get("matchRecords", []) if isinstance(m.get("record"), dict) and m["record"].get("Id")]
    if not ids:
        return None
    values = dict(write.values)
    if write.kind == "upsert" and write.ext_field:
        values[write.ext_field] = write.ext_value  # the existing record takes the key, so later upserts find it
    others = f" (other matches: {', '.join(ids[1:])})" if len(ids) > 1 else ""
    rule = result.get("duplicateRule")
    warning = (f"DUPLICATES_DETECTED{f' by {rule}' if rule else ''}: updated the existing {write.object} {ids[0]} "
               f"instead of creating a duplicate{others}")
    return replace(write, kind="update", record_id=ids[0], values=values, ext_field=None, ext_value=None,
                   warnings=[*write.warnings, warning])


def target_of(op: RecordOp, write: Write) -> str:
    """The record an outcome is about when the action writes every matched record (one row each)."""
    if op.on_many_matches is OnManyMatches.ALL and write.kind in ("update", "delete"):
        return write.record_id or ""
    return ""


def _succeeded(write: Write, record_id: str | None, created: bool, attempts: int, note: str | None = None) -> list[Outcome]:
    """Outcomes of a write serving several events: a created record is created by the first of them (in
    event order) only; the others updated it, in the same call."""
    warnings = tuple(write.warnings) + ((note,) if note else ())
    return [Outcome.succeeded(op.event, record_id=record_id or "", created=created and n == 0, action=op.action,
                              object=op.object, operation=op.operation.value, attempts=attempts, warnings=warnings,
                              target=target_of(op, write))
            for n, op in enumerate(write.ops)]


def _failed(write: Write, error: SalesforceError, attempts: int) -> list[Outcome]:
    message = error.message
    duplicates = error.duplicate_ids()
    if duplicates:
        message = f"{message} (existing records: {', '.join(duplicates)})"
    return [Outcome.failed(op.event, error.code, message, error.fields, action=op.action, object=op.object,
                           operation=op.operation.value, record_id=write.record_id or (duplicates[0] if duplicates
                                                                                       else None),
                           attempts=attempts, warnings=tuple(write.warnings), target=target_of(op, write))
            for op in write.ops]


def _skipped(write: Write, reason: str) -> list[Outcome]:
    return [Outcome.skipped(op.event, reason, action=op.action, object=op.object, operation=op.operation.value,
                            record_id=write.record_id, target=target_of(op, write)) for op in write.ops]
