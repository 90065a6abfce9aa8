"""Write: planned writes → Salesforce (sObject Collections or Bulk API 2.0) → one outcome per event.

Every retry goes through the retry policy (destination/retry.py): a record's transient failure is retried
for just that record, with backoff, within the policy's attempts and time; REQUEST_LIMIT_EXCEEDED pauses
(through the budget) and retries within the policy's time; exhausted work fails with RETRY_EXHAUSTED.
`retry_without_failing_fields` drops the fields Salesforce named and retries once. A call the org fails
as a whole (a trigger hitting a governor limit) is split in halves and the object's write size adapts
(batch_size.py).

Creates are idempotent: the intent of each create is recorded in the sync log before it is sent, and a
create whose fate is unknown (a timeout or a gateway error after sending) is reconciled by a lookup before
it is ever sent again: found → succeeded with that record, not there → sent again, no way to tell (no
matchers) → failed UNRESOLVED_CREATE, which replay does not resend without being told to. A native upsert
whose answer was lost is sent again, and its record's CreatedDate tells whether the lost send created it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .actions.model import Mode, OnDuplicate, OnManyMatches, Operation
from .batch_size import BatchSizes, batch_failed
from .operations import RecordOp
from .outcomes import Fate, Outcome, Status
from .plan import Write
from .retry import Attempts, RetryPolicy
from .salesforce import soql
from .salesforce.client import SalesforceClient
from .salesforce.errors import ErrorKind, SalesforceApiError, SalesforceError
from .salesforce.results import RecordResult

DROPPABLE = frozenset({"INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_FIELD",
                       "STRING_TOO_LONG", "INVALID_TYPE_ON_FIELD_IN_RECORD", "JSON_PARSER_ERROR",
                       "INVALID_EMAIL_ADDRESS", "FIELD_INTEGRITY_EXCEPTION"})
UNRESOLVED_CREATE = "UNRESOLVED_CREATE"
ALREADY_DELETED = "the record was already deleted"  # a delete's warning when someone else deleted it first
# Uncertain creates → for each, the record's Id when it exists, None when it does not (safe to resend), ""
# when there is no way to tell (a create without matchers). One lookup serves them all.
Reconcile = Callable[[list[Write]], Awaitable[list[str | None]]]
# Called on REQUEST_LIMIT_EXCEEDED: waits for the allowance; False when the policy's time is spent.
Pause = Callable[[SalesforceApiError, Attempts], Awaitable[bool]]
# A native upsert whose answer was lost and whose resend reports an update created the record itself when
# the record's CreatedDate is not earlier than its first send, less this allowance: Salesforce keeps
# CreatedDate to the second and its clock is not ours. A record someone else created that close before
# the send would be counted as ours.
CREATED_ALLOWANCE = timedelta(seconds=1)
_BULK_OP = {"create": "insert", "update": "update", "delete": "delete", "upsert": "upsert"}


class Intents(Protocol):
    """Where create intents are kept (the sync log): recorded before the send, settled after it."""

    async def record_intents(self, intents: Sequence[tuple[str, str, str, str, str]]) -> None: ...

    async def settle_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None: ...

    async def record_key_intents(self, intents: Sequence[tuple[str, str, str]]) -> None: ...

    async def settle_key_intents(self, settled: Sequence[tuple[str, str, str, str | None]]) -> None: ...


def unresolved(message: str) -> SalesforceError:
    """A create that may have happened and that no lookup can confirm: never resent without an operator."""
    return SalesforceError(UNRESOLVED_CREATE, message)


@dataclass(slots=True)
class _Pending:
    write: Write
    tries: Attempts
    sends: int = 0
    dropped_fields: bool = False
    uncertain: SalesforceError | None = None  # set: look the record up before anything is sent again
    first_sent: datetime | None = None  # our clock just before the first send (native upserts)
    lost_answer: bool = False  # an upsert whose answer was lost: the resend cannot tell whether it created


class Writer:
    """Executes writes for one connection."""

    def __init__(self, client: SalesforceClient, *, policy: RetryPolicy | None = None,
                 reconcile: Reconcile | None = None, pause: Pause | None = None, intents: Intents | None = None,
                 sizes: BatchSizes | None = None, on_call: Callable[[str, int], None] | None = None) -> None:
        self.client = client
        self.sizes = sizes or BatchSizes()
        self.policy = policy or client.policy
        self.reconcile = reconcile
        self.pause = pause
        self.intents = intents
        self.on_call = on_call or (lambda kind, size: None)

    async def execute(self, writes: Sequence[Write], mode: Mode, fate: Fate | None = None) -> list[Outcome]:
        """Every write to a terminal outcome per event (retrying transient failures inside). With a `fate`,
        each write is expected there before it is sent and its outcomes land there as soon as they are
        terminal, so an exception later in the batch cannot lose or overwrite them."""
        fate = fate if fate is not None else Fate([op for w in writes for op in w.ops])
        outcomes: list[Outcome] = []

        def keep(done: list[Outcome]) -> None:
            outcomes.extend(done)
            fate.add(done)

        pending: list[_Pending] = []
        unchanged: list[Write] = []
        for write in writes:  # one pass: expected in the fate, then sent or (nothing to change) skipped
            target = _target(write)
            for op in write.ops:
                fate.expect(op, target if op.on_many_matches is OnManyMatches.ALL else "")
            if write.kind == "update" and not write.values:
                unchanged.append(write)
            else:
                pending.append(_Pending(write, self.policy.start()))
        for write in unchanged:
            keep(_skipped(write, "NOTHING_TO_CHANGE: every mapped value already matches"))
        round_ = 0
        while pending:
            if round_:
                await asyncio.sleep(min(self.policy.backoff(round_), max(min(p.tries.remaining for p in pending), 0)))
            round_ += 1
            retry: list[_Pending] = []
            held: list[_Pending] = []  # sent next round, if at all, once looked up
            sendable: dict[str, list[_Pending]] = {}  # by kind
            for item in pending:
                if item.uncertain is not None:
                    held.append(item)
                else:
                    sendable.setdefault(item.write.kind, []).append(item)
            if held:
                done, again_list = await self._resolve(held)
                keep(done)
                retry.extend(again_list)
            for kind in ("create", "upsert", "update", "delete"):
                group = sendable.get(kind)
                if not group:
                    continue
                if kind == "create":
                    await self._intend(group)
                now = datetime.now(UTC)
                for item in group:
                    item.first_sent = item.first_sent or now
                results = await self._send(kind, [p.write for p in group], mode)
                if kind == "upsert":
                    results = await self._read_created(group, results)
                settled: list[tuple[_Pending, str | None]] = []
                for item, result in zip(group, results, strict=True):
                    item.sends += 1
                    done, again = self._settle(item, result)
                    keep(done)
                    if again is not None:
                        retry.append(again)
                    if kind == "create" and (again is None or again.uncertain is None):
                        settled.append((item, result.id if result.success else None))
                if kind == "create":
                    await self._settled(settled)
            pending = retry
        return outcomes

    async def _intend(self, group: list[_Pending]) -> None:
        """Record the intent of each create before it is sent: a crash from here on is reconciled, not resent.
        A create (by messageId: the event is the record) or an upsert the lookup made a create (by record
        key: one record serves every event of the key, whichever comes back first after a crash)."""
        if self.intents is None:
            return
        creates = [(op.source, op.event.message_id, op.action, op.object, _matcher_text(op))
                   for p in group for op in p.write.ops if op.operation is Operation.CREATE]
        keys = [(op.connection, op.object, key) for p in group for op in p.write.ops[:1]
                if (key := op.intent_key()) is not None]
        if creates:
            await self.intents.record_intents(creates)
        if keys:
            await self.intents.record_key_intents(keys)

    async def _read_created(self, group: list[_Pending], results: list[RecordResult]) -> list[RecordResult]:
        """Upserts sent again after a lost answer report an update even when the lost send created the record:
        created when the record's CreatedDate is not earlier than the first send (CREATED_ALLOWANCE). A failed
        lookup leaves the update as reported."""
        since = {r.id: item.first_sent for item, r in zip(group, results, strict=True)
                 if item.lost_answer and r.success and not r.created and r.id and item.first_sent}
        if not since:
            return results
        created: set[str] = set()
        select = soql.Select(group[0].write.object, ("Id", "CreatedDate"))
        try:
            for query, _ in soql.chunk_in(select, "Id", sorted(since)):
                for record in await self.client.query(query.render()):
                    first = since.get(record["Id"])
                    if first is not None and record.get("CreatedDate") and not _created_before(
                            record, first - CREATED_ALLOWANCE):
                        created.add(record["Id"])
        except SalesforceApiError:
            return results
        return [replace(r, created=True) if r.id in created else r for r in results]

    async def _settled(self, settled: list[tuple[_Pending, str | None]]) -> None:
        """Creates whose fate is now known: created (with the Id) or certainly not (the intent goes). A record
        key's intent keeps the Id until a row saying created for that record is kept (the sync log's record)."""
        if self.intents is None or not settled:
            return
        creates = [(op.source, op.event.message_id, op.action, record_id) for item, record_id in settled
                   for op in item.write.ops if op.operation is Operation.CREATE]
        keys = [(op.connection, op.object, key, record_id) for item, record_id in settled
                for op in item.write.ops[:1] if (key := op.intent_key()) is not None]
        if creates:
            await self.intents.settle_intents(creates)
        if keys:
            await self.intents.settle_key_intents(keys)

    async def _send(self, kind: str, writes: list[Write], mode: Mode) -> list[RecordResult]:
        """Send in calls no larger than the object's adaptive size; the records of a call that the org failed
        as a whole (a governor limit in its automation) are sent again in halves, down to single records,
        so one bad record fails alone."""
        key = (writes[0].object.lower(), kind, mode.value)
        results: list[RecordResult] = []
        size = self.sizes.size(key) or len(writes)
        for start in range(0, len(writes), size):
            chunk = writes[start:start + size]
            got = await self._call(kind, chunk, mode)
            failed = batch_failed(got)
            if not failed:
                self.sizes.grow(key)
                results.extend(got)
                continue
            self.sizes.shrink(key, len(failed))
            again = [chunk[i] for i in failed]
            half = len(again) // 2
            redone = await self._send(kind, again[:half], mode) + await self._send(kind, again[half:], mode)
            for index, result in zip(failed, redone, strict=True):
                got[index] = result
            results.extend(got)
        return results

    async def _call(self, kind: str, writes: list[Write], mode: Mode) -> list[RecordResult]:
        """One request (or Bulk job) for a group; a request-level failure becomes every record's result.
        REQUEST_LIMIT_EXCEEDED pauses and sends again, within the policy's time."""
        pauses = self.policy.start()
        while True:
            try:
                self.on_call(f"{mode.value}:{kind}", len(writes))
                if mode is Mode.BULK:
                    return await self._bulk(kind, writes)
                return await self._rest(kind, writes)
            except SalesforceApiError as exc:
                if exc.kind is ErrorKind.RATE_LIMITED and self.pause is not None:
                    if await self.pause(exc, pauses):
                        continue
                    error = pauses.exhausted(f"{kind} of {len(writes)} {writes[0].object} paused for the API limit")
                    return [RecordResult.failed(error) for _ in writes]
                return [RecordResult.failed(exc.error) for _ in writes]

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

    def _settle(self, item: _Pending, result: RecordResult) -> tuple[list[Outcome], _Pending | None]:
        write = item.write
        if result.success:
            created = write.kind == "create" or (write.kind == "upsert" and result.created)
            return _succeeded(write, result.id or write.record_id, created, item.sends), None
        error = result.error or SalesforceError("UNKNOWN_ERROR", "Salesforce returned no error detail")
        if write.kind == "delete" and error.code == "ENTITY_IS_DELETED":
            return _succeeded(write, write.record_id, False, item.sends, ALREADY_DELETED), None
        if error.kind is ErrorKind.UNCERTAIN:
            item.uncertain = error  # looked up in the next round, after a backoff, before any resend
            return [], item
        if result.transient:
            if item.tries.allows_another(error):
                return [], item
            return _failed(write, item.tries.exhausted(), item.sends), None
        existing = _onto_duplicate(write, error)
        if existing is not None:  # a new item: this round's update group must not pick it up as well
            return [], _Pending(existing, item.tries, sends=item.sends, dropped_fields=item.dropped_fields)
        if (error.fields and error.code in DROPPABLE and not item.dropped_fields
                and any(op.retry_without_failing_fields for op in write.ops)):
            named = {f.lower() for f in error.fields}
            kept = {k: v for k, v in write.values.items() if k.lower() not in named}
            if len(kept) < len(write.values):
                warning = f"dropped {', '.join(sorted(error.fields))} after {error.code}: {error.message}"
                item.write = replace(write, values=kept, warnings=[*write.warnings, warning])
                item.dropped_fields = True
                return [], item
        return _failed(write, error, item.sends), None

    async def _resolve(self, held: list[_Pending]) -> tuple[list[Outcome], list[_Pending]]:
        """Uncertain writes: look them up (one lookup for all). Found → succeeded; not there → sent again
        (within the policy); no way to tell → UNRESOLVED_CREATE. A lookup that fails is tried again next
        round, within the policy, then UNRESOLVED_CREATE."""
        outcomes: list[Outcome] = []
        again: list[_Pending] = []
        creates = [p for p in held if p.write.kind == "create"]
        for item in [p for p in held if p.write.kind != "create"]:  # idempotent: send again
            error, item.uncertain = item.uncertain, None
            item.lost_answer = item.write.kind == "upsert"
            if error is not None and item.tries.allows_another(error):
                again.append(item)
            else:
                outcomes.extend(_failed(item.write, item.tries.exhausted(), item.sends))
        if not creates:
            return outcomes, again
        if self.reconcile is None:
            found: list[str | None] = [""] * len(creates)
        else:
            try:
                found = await self.reconcile([p.write for p in creates])
            except SalesforceApiError as exc:
                for item in creates:
                    if item.tries.allows_another(exc.error):
                        again.append(item)
                    else:
                        outcomes.extend(_failed(item.write, unresolved(
                            f"{_message(item)}; the lookup that would settle it failed: {exc.error.code}: "
                            f"{exc.error.message}"), item.sends))
                return outcomes, again
        settled: list[tuple[_Pending, str | None]] = []
        for item, record_id in zip(creates, found, strict=True):
            if record_id:
                settled.append((item, record_id))
                outcomes.extend(_succeeded(item.write, record_id, True, item.sends,
                                           "create confirmed by lookup after an unknown fate"))
            elif record_id == "":
                outcomes.extend(_failed(item.write, unresolved(
                    f"{_message(item)}; this create has no matchers to look it up by (add `match:` on a marker "
                    "field such as the event's messageId)"), item.sends))
            else:
                settled.append((item, None))
                error, item.uncertain = item.uncertain, None
                if error is not None and item.tries.allows_another(error):
                    again.append(item)  # not there: safe to send again
                else:
                    outcomes.extend(_failed(item.write, item.tries.exhausted(), item.sends))
        await self._settled(settled)
        return outcomes, again


def _created_before(record: dict[str, Any], moment: datetime) -> bool:
    """Whether a record's CreatedDate is known and earlier than `moment`."""
    created = _moment(record.get("CreatedDate"))
    return created is not None and created < moment


def _moment(value: object) -> datetime | None:
    """A Salesforce datetime ("2026-12-02T11:55:00.000+0000") as an aware datetime; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _message(item: _Pending) -> str:
    return item.uncertain.message if item.uncertain is not None else "the create's fate is unknown"


def _matcher_text(op: RecordOp) -> str:
    """The op's matcher values as the intent keeps them (for operators reading the table)."""
    if op.match is None:
        return "[]"
    return repr([(m.field, m.value) for m in op.match.matchers()])


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
    if op.on_many_matches is OnManyMatches.ALL:
        return _target(write)
    return ""


def _target(write: Write) -> str:
    """target_of for the write's ops that write every matched record."""
    return (write.record_id or "") if write.kind in ("update", "delete") else ""


def _succeeded(write: Write, record_id: str | None, created: bool, attempts: int, note: str | None = None) -> list[Outcome]:
    """Outcomes of a write serving several events: a created record is created by the first of them (in
    event order) only; the others updated it, in the same call."""
    warnings = tuple(write.warnings) + ((note,) if note else ())
    record_id = record_id or ""
    target = _target(write)  # target_of, inlined: this runs once per event
    # positional: Outcome.succeeded's keywords cost a third of this function, once per event
    return [Outcome(op.event, Status.SUCCEEDED, op.action, op.object, str(op.operation), record_id,
                    created and n == 0, None, None, (), None, attempts, warnings,
                    target if op.on_many_matches is OnManyMatches.ALL else "")
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
