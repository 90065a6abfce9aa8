"""Deliver one batch: lookups (destination/lookups.py), parent lookups, plan (destination/plan.py), write
(destination/write.py), and an outcome for every operation. Creates already confirmed for a messageId are not sent again, and a
create whose intent was recorded but whose fate is unknown (a crash mid-call) is reconciled by lookup first; an
upsert whose record an interrupted delivery created says so once per record (its record key's intent).
Retries and pauses go through the retry policy (destination/retry.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .actions.model import Mode, Operation, Policy
from .batch_size import BatchSizes
from .budget import Budget
from .fit import fit_to_describe
from .lookups import find_records, follow_converted, resolve_parents
from .operations import RecordOp
from .outcomes import Fate, Outcome, Status
from .plan import (
    Plan,
    Write,
    id_matcher,
    native_upsert_field,
    plan_batch,
    plan_by_id,
    plan_native,
    select_fields,
    tree_holds,
)
from .retry import RetryPolicy
from .salesforce.client import SalesforceClient
from .salesforce.describe import ObjectDescribe
from .salesforce.errors import ErrorKind, SalesforceApiError, SalesforceError
from .synclog.base import DELETED_BY_US, SyncLog, SyncLogFilter, WritesNote
from .write import ALREADY_DELETED, Writer, target_of, unresolved

log = logging.getLogger("destination.deliver")
Known = Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]]  # (object, found records) → amended records


class Delivery:
    """Delivers batches for every connection; knows the clients, the sync log and the budget."""

    def __init__(self, clients: dict[str, SalesforceClient], *, sync_log: SyncLog | None = None,
                 budget: Budget | None = None, policy: RetryPolicy | None = None, max_attempts: int | None = None,
                 backoff_seconds: float | None = None, metrics: Any = None,
                 echo_objects: frozenset[str] = frozenset()) -> None:
        self.clients = clients
        # objects a source syncs back (lower-case): the values written to them are kept for echo suppression
        self.echo_objects = echo_objects
        self.sync_log = sync_log
        self.budget = budget or Budget()
        self._policy = policy
        self._overrides: dict[str, Any] = {}
        if max_attempts is not None:
            self._overrides["max_attempts"] = max_attempts
        if backoff_seconds is not None:
            self._overrides["backoff_initial_seconds"] = backoff_seconds
        self.metrics = metrics
        self.sizes = BatchSizes()  # adaptive write sizes per object, kept across batches
        self._timed: dict[tuple[str, str], asyncio.Lock] = {}  # (connection, object) → most_recent writes
        # Record intents older than this were left by an earlier process (or life): only those are claimed; the
        # creates of this one say created themselves (their rows may be on their way while a later batch of
        # the key finds the record)
        self._started = datetime.now(UTC)
        # (connection, object, record key) → the event (source, messageId, action) whose outcome says it created
        # the record of an earlier, interrupted delivery: one claimant per key in this process
        self._claimed: dict[tuple[str, str, str], tuple[str, str, str | None]] = {}

    def policy(self, client: SalesforceClient) -> RetryPolicy:
        """The retry policy for a connection: the one given, else the client's (with any overrides)."""
        return replace(self._policy or client.policy, **self._overrides)

    async def deliver(self, ops: Sequence[RecordOp]) -> list[Outcome]:
        """Outcomes for a batch of operations sharing one batch key (any order of events inside): every
        operation ends with at least one (one per record written under `on_many_matches: all`).

        The batch is an error boundary: whatever escapes (a request-level error, a sync-log failure, a bug)
        decides only the operations still undecided; outcomes already terminal are kept."""
        if not ops:
            return []
        fate = Fate(ops)
        client = self.clients.get(ops[0].connection)
        if client is None:
            return [_fail(op, "CONFIG_ERROR", f"no connection named {op.connection!r}") for op in ops]
        # One budget for the whole batch: the API-budget pause, rate-limit pauses and retries of the steps
        # before the write (describe, lookups). The client has already retried each request under the same
        # policy, so what arrives here transient is rare (an auth failure after a refresh).
        attempts = self.policy(client).start()
        if not await self.budget.wait(client, attempts):
            return self._exhausted(ops, attempts.exhausted("waiting for the API budget"))
        while pending := fate.undecided():
            try:
                await self._deliver(client, pending, fate)
                # whatever is still undecided after a clean pass is a bug: fail it rather than loop on it
                fate.fail_undecided("INTERNAL_ERROR", "delivery ended without an outcome for this operation")
                break  # every operation is decided now: no need to walk the batch again to see so
            except SalesforceApiError as exc:
                if exc.kind is ErrorKind.RATE_LIMITED:
                    if not await self.budget.rate_limited(client, exc, attempts):
                        _give_up(fate, pending, attempts.exhausted("paused for the API limit"))
                    continue
                if exc.kind in (ErrorKind.TRANSIENT, ErrorKind.AUTH):
                    log.warning("batch of %d %s ops hit %s; retrying", len(pending), ops[0].object, exc)
                    if not await attempts.retry(exc.error):
                        _give_up(fate, pending, attempts.exhausted())
                    continue
                fate.fail_undecided(exc.error.code, exc.error.message, exc.error.fields)
            except Exception as exc:  # the batch's error boundary: a bug must not lose events
                log.error("batch of %d %s ops failed with %s; its undecided operations fail as INTERNAL_ERROR",
                          len(pending), ops[0].object, type(exc).__name__, exc_info=exc)
                if self.metrics is not None:
                    self.metrics.batch_error(ops[0].object, type(exc).__name__)
                fate.fail_undecided("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        return fate.outcomes()

    def _exhausted(self, ops: Sequence[RecordOp], error: SalesforceError) -> list[Outcome]:
        fate = Fate(ops)
        _give_up(fate, ops, error)
        return fate.outcomes()

    async def _deliver(self, client: SalesforceClient, ops: list[RecordOp], fate: Fate) -> None:
        try:
            describe = await client.describe.get(ops[0].object)
        except SalesforceApiError as exc:
            if exc.status == 404:
                fate.add(_fail(op, "CONFIG_ERROR", f"object {op.object} does not exist in the org") for op in ops)
                return
            raise
        ops, done = await self._already_created(ops)
        fate.add(done)
        ops, done = await self._open_intents(client, describe, ops)
        fate.add(done)
        ops, done = await resolve_parents(client, ops)
        fate.add(done)
        ops, done = fit_to_describe(ops, describe)
        fate.add(done)
        if not ops:
            return
        async with self._one_timed_writer(ops):
            plan = await self._plan(client, describe, ops)
            fate.add(plan.outcomes)
            writer = Writer(client, policy=self.policy(client),
                            reconcile=lambda ws: self._reconcile(client, describe, ws),
                            pause=lambda exc, attempts: self.budget.rate_limited(client, exc, attempts),
                            intents=self.sync_log, sizes=self.sizes, on_call=self._count_call)
            in_flight = await self._begin_writes(plan)
            try:
                await writer.execute(plan.writes, ops[0].mode, fate)
                await self._created_earlier(plan, fate)
                await self._record_value_times(plan, fate)
            finally:  # what Salesforce confirmed is recorded even when the batch ends in an error
                await self._record_written(plan, fate, in_flight)
        if any(op.warnings for op in ops):
            _with_op_warnings(ops, [o for op in ops for o in fate.outcomes_of(op)])

    def _one_timed_writer(self, ops: list[RecordOp]) -> contextlib.AbstractAsyncContextManager[Any]:
        """Batches that write `most_recent` fields of one object run one at a time, from reading the
        records and their value times to recording the new times: two in flight at once (other actions,
        matcher shapes or modes: other batch keys) would both plan against the same old time, and the
        older event's write could land last. Other batches go unhindered."""
        if not any(fv.policy is Policy.MOST_RECENT for op in ops for fv in op.fields.values()):
            return contextlib.nullcontext()
        return self._timed.setdefault((ops[0].connection, ops[0].object.lower()), asyncio.Lock())

    async def prepare(self, ops: Sequence[RecordOp], *, known: Known | None = None) -> tuple[Plan, list[Outcome]]:
        """Everything but the write (for previews): describe, parent lookups, record lookups, plan.
        Read-only: every upsert is looked up so the plan can say create or update. `known` amends the
        looked-up records (a preview's earlier batches would have created or changed some)."""
        ops = list(ops)
        client = self.clients.get(ops[0].connection)
        if client is None:
            return Plan(), [_fail(op, "CONFIG_ERROR", f"no connection named {op.connection!r}") for op in ops]
        try:
            describe = await client.describe.get(ops[0].object)
        except SalesforceApiError as exc:
            if exc.status == 404:
                return Plan(), [_fail(op, "CONFIG_ERROR", f"object {op.object} does not exist in the org")
                                for op in ops]
            raise
        ops, outcomes = await resolve_parents(client, ops)
        ops, unfit = fit_to_describe(ops, describe)
        outcomes += unfit
        if not ops:
            return Plan(), outcomes
        plan = await self._plan(client, describe, ops, read_only=True, known=known)
        return plan, outcomes + plan.outcomes

    def _count_call(self, kind: str, size: int) -> None:
        if self.metrics is not None:
            self.metrics.batch(kind, size)

    async def _plan(self, client: SalesforceClient, describe: ObjectDescribe, ops: list[RecordOp], *,
                    read_only: bool = False, known: Known | None = None) -> Plan:
        native = native_upsert_field(ops, describe.external_ids)
        if native and not read_only:
            return plan_native(ops, native)
        if id_matcher(ops) is not None and not read_only:
            return plan_by_id(ops)
        if ops[0].operation is Operation.CREATE:
            return plan_batch(ops, [])
        extra = ["IsConverted", "ConvertedContactId"] if ops[0].follow_converted_leads else []
        if describe.record_types:
            extra.append("RecordTypeId")  # a preview checks an update's picklists against the record's type
        two_way = describe.name.lower() in self.echo_objects
        if two_way:  # most_recent also weighs a person's change (LastModifiedById not ours): plan._merge
            extra.append("LastModifiedById")
        fields = [f for f in select_fields(ops, extra) if describe.field(f) is not None]
        found = await find_records(client, describe, fields, [op.match for op in ops if op.match is not None])
        if known is not None:
            found = known(describe.name, found)
        own_user = (await client.tokens.token()).user_id if two_way else None
        plan = plan_batch(ops, found, await self._value_times(describe.name, ops, found), own_user=own_user)
        if ops[0].follow_converted_leads:
            await follow_converted(client, plan, {r["Id"]: r for r in found})
        return plan

    async def _value_times(self, obj: str, ops: list[RecordOp], found: list[dict[str, Any]]
                           ) -> dict[str, dict[str, datetime]]:
        """For `most_recent` fields of the found records: the event time of the value we last wrote there
        (kept in the sync log), record Id → field → time."""
        if not found or self.sync_log is None:
            return {}
        fields = sorted({name for op in ops for name, fv in op.fields.items() if fv.policy is Policy.MOST_RECENT})
        if not fields:
            return {}
        return await self.sync_log.value_times(obj, [r["Id"] for r in found], fields)

    async def _record_value_times(self, plan: Plan, fate: Fate) -> None:
        """Remember the event time of every `most_recent` value written, or found already held (a write with
        nothing to change: a redelivered event whose earlier delivery wrote it and died before recording
        this), for later batches to compare with."""
        if self.sync_log is None:
            return
        rows: list[tuple[str, str, str, datetime]] = []
        for write in plan.writes:
            if not write.value_times:
                continue
            outcome = fate.outcome(write.ops[0], target_of(write.ops[0], write))
            if outcome is None or outcome.status not in (Status.SUCCEEDED, Status.SKIPPED):
                continue
            record_id = write.record_id or outcome.record_id
            if record_id:
                rows += [(write.object, record_id, name, moment) for name, moment in write.value_times.items()]
        if rows:
            await self.sync_log.record_value_times(rows)

    async def _begin_writes(self, plan: Plan) -> WritesNote | None:
        """Before the Salesforce call, note in the sync log that this batch writes to synced-back objects (and
        which records it deletes): until _record_written removes the note, the change feed holds back a change
        it cannot recognise as ours yet. No note, and no round trip, for objects nobody syncs back."""
        if self.sync_log is None or not self.echo_objects:
            return None
        objects: dict[str, list[str]] = {}
        for write in plan.writes:
            if write.object.lower() in self.echo_objects:
                deletes = objects.setdefault(write.object, [])
                if write.kind == "delete" and write.record_id:
                    deletes.append(write.record_id)
        return await self.sync_log.begin_writes(objects) if objects else None

    async def _record_written(self, plan: Plan, fate: Fate, in_flight: WritesNote | None = None) -> None:
        """Remember what was written to records of synced-back objects, and which of them we deleted: the
        change feed does not publish our own write or delete when it comes back (destination/sync_back/echo.py).
        The batch's in-flight note goes in the same transaction."""
        if self.sync_log is None or not self.echo_objects:
            return
        rows: list[tuple[str, str, str, Any]] = []
        deleted_at = datetime.now(UTC).isoformat()
        for write in plan.writes:
            if write.object.lower() not in self.echo_objects:
                continue
            outcome = fate.outcome(write.ops[0], target_of(write.ops[0], write))
            if outcome is None or outcome.status is not Status.SUCCEEDED:
                continue
            if write.kind == "delete":
                # Salesforce's delete result carries the 18-character Id the delete feed reports; a record
                # someone else had deleted already is their delete, not ours
                record_id = outcome.record_id or write.record_id
                if record_id and ALREADY_DELETED not in outcome.warnings:
                    rows.append((write.object, record_id, DELETED_BY_US, deleted_at))
                continue
            record_id = write.record_id or outcome.record_id
            if record_id:
                rows += [(write.object, record_id, name, value) for name, value in write.values.items()]
        if rows or in_flight is not None:
            await self.sync_log.record_written_values(rows, in_flight=in_flight)

    async def _created_earlier(self, plan: Plan, fate: Fate) -> None:
        """Upserts whose record an earlier, interrupted delivery created (its record intent is open and older
        than this process: the create was sent, and no row saying created for that record was kept since):
        found by the lookup, they were delivered as updates; the first of their events with a succeeded (or
        nothing-to-change) outcome now says created, once per record, whichever event of the key comes back
        first and in whatever batch. The intent is closed when that row is kept (SyncLog.record); a row
        saying created for the record that is already kept closes it here instead."""
        updates = [w for w in plan.writes if w.kind == "update" and w.record_id and w.ops[0].intent_key()]
        if self.sync_log is None or not updates:
            return
        connection, obj = updates[0].ops[0].connection, updates[0].ops[0].object
        keys = {op.intent_key(): w for w in updates for op in w.ops}
        intents = await self.sync_log.open_key_intents(connection, obj, sorted(k for k in keys if k))
        settle: list[tuple[str, str, str, str | None]] = []
        for key, (intended, since) in intents.items():
            if since >= self._started:
                continue  # this process's own create: its outcome says created
            write = keys[key]
            record_id = str(write.record_id)
            if intended and intended[:15] != record_id[:15]:
                continue  # the intent's record is not this one (deleted since): nothing to claim here
            if any(row.created for row in await self.sync_log.rows(SyncLogFilter(object=obj, record_id=record_id))):
                settle.append((connection, obj, key, None))  # its row is kept: the intent outlived it
                continue
            for op in write.ops:
                outcome = fate.outcome(op, target_of(op, write))
                if outcome is None or outcome.status not in (Status.SUCCEEDED, Status.SKIPPED):
                    continue
                claimant = (op.source, op.event.message_id, op.action)
                if self._claimed.setdefault((connection, obj.lower(), key), claimant) != claimant:
                    break  # another event of this process claimed it; its row is on its way
                outcome.status, outcome.reason, outcome.created = Status.SUCCEEDED, None, True
                outcome.record_id = outcome.record_id or record_id
                outcome.warnings = (*outcome.warnings, "created by an earlier, interrupted delivery of this record")
                if not intended:
                    settle.append((connection, obj, key, record_id))  # so the kept row closes it
                break
        if settle:
            await self.sync_log.settle_key_intents(settle)

    async def _already_created(self, ops: list[RecordOp]) -> tuple[list[RecordOp], list[Outcome]]:
        """A create (or upsert) already confirmed for this messageId and action is not sent again
        (one sync-log query per batch and action)."""
        if self.sync_log is None:
            return ops, []
        asked: dict[tuple[str, str], list[str]] = {}  # (source, action) → messageIds, in one pass over the batch
        for op in ops:
            if op.operation in (Operation.CREATE, Operation.UPSERT) and (message_id := op.event.message_id):
                asked.setdefault((op.source, op.action), []).append(message_id)
        known: dict[tuple[str, str], dict[str, str]] = {}
        for (source, action), ids in asked.items():
            if found := await self.sync_log.created_records(source, action, ids):
                known[(source, action)] = found
        if not known:  # the usual answer: nothing of this batch was created before
            return ops, []
        kept, done = [], []
        for op in ops:
            record_id = known.get((op.source, op.action), {}).get(op.event.message_id)
            if record_id:
                done.append(Outcome.succeeded(op.event, record_id=record_id, created=False, action=op.action,
                                              object=op.object, operation=op.operation.value,
                                              warnings=("already created for this messageId; not sent again",)))
            else:
                kept.append(op)
        return kept, done

    async def _open_intents(self, client: SalesforceClient, describe: ObjectDescribe,
                            ops: list[RecordOp]) -> tuple[list[RecordOp], list[Outcome]]:
        """Creates whose intent was recorded by an earlier delivery of the same event (a crash, a lost
        response): created (Id known) → succeeded; fate unknown → looked up by the op's matchers: found →
        succeeded, not there → sent, no way to tell → UNRESOLVED_CREATE (never resent blindly)."""
        if self.sync_log is None:
            return ops, []
        creates = [op for op in ops if op.operation is Operation.CREATE and op.event.message_id]
        intents: dict[tuple[str, str], dict[str, str | None]] = {}
        for source, action in {(op.source, op.action) for op in creates}:
            ids = [op.event.message_id for op in creates if (op.source, op.action) == (source, action)]
            intents[(source, action)] = await self.sync_log.open_intents(source, action, ids)
        interrupted = [op for op in creates if op.event.message_id in intents.get((op.source, op.action), {})]
        if not interrupted:
            return ops, []
        unknown = [op for op in interrupted if not intents[(op.source, op.action)][op.event.message_id]]
        looked_up = await self._reconcile(client, describe, [Write(kind="create", object=op.object, ops=[op])
                                                             for op in unknown])
        fate = {id(op): (record_id, "create from an earlier, interrupted delivery confirmed by lookup; not sent "
                         "again") for op, record_id in zip(unknown, looked_up, strict=True)}
        interrupted_ids = {id(op) for op in interrupted}
        kept, done = [], []
        for op in ops:
            if id(op) not in interrupted_ids:
                kept.append(op)
                continue
            record_id, note = fate.get(id(op), (intents[(op.source, op.action)][op.event.message_id],
                                                "created by an earlier delivery of this event; not sent again"))
            if record_id:
                done.append(Outcome.succeeded(op.event, record_id=record_id, created=True, action=op.action,
                                              object=op.object, operation=op.operation.value, warnings=(note,)))
            elif record_id is None:
                kept.append(op)  # certainly not created: safe to send
            else:
                error = unresolved("an earlier delivery of this create was interrupted and it has no matchers to "
                                   "look it up by (add `match:` on a marker field such as the event's messageId)")
                done.append(_fail(op, error.code, error.message))
        return kept, done

    async def _reconcile(self, client: SalesforceClient, describe: ObjectDescribe,
                         writes: Sequence[Write]) -> list[str | None]:
        """After uncertain creates: for each, the record if it now exists (one lookup by the ops' matchers
        for all of them); None when it does not; "" when there is nothing to look it up by."""
        trees = [op.match for w in writes for op in w.ops if op.match is not None]
        found: list[dict[str, Any]] = []
        if trees:
            fields = ["Id", "LastModifiedDate"] + [m.field for t in trees for m in t.matchers()]
            fields = [f for f in dict.fromkeys(fields) if f == "Id" or describe.field(f) is not None]
            found = await find_records(client, describe, fields, trees)
        out: list[str | None] = []
        for write in writes:
            mine = [op.match for op in write.ops if op.match is not None]
            if not mine:
                out.append("")
                continue
            matching = [r for r in found if any(tree_holds(t, r) for t in mine)]
            out.append(matching[0]["Id"] if matching else None)
        return out



def _with_op_warnings(ops: Sequence[RecordOp], outcomes: list[Outcome]) -> list[Outcome]:
    """The outcomes, each with its op's own warnings (a lookup that found no parent) added."""
    notes: dict[tuple[int, str | None], tuple[str, ...]] = {(id(op.event), op.action): op.warnings
                                                           for op in ops if op.warnings}
    if notes:
        for outcome in outcomes:
            extra = notes.get((id(outcome.event), outcome.action))
            if extra:
                outcome.warnings = (*outcome.warnings, *extra)
    return outcomes


def _give_up(fate: Fate, pending: Sequence[RecordOp], error: SalesforceError) -> None:
    """The retry budget is spent: the undecided operations fail with its error (RETRY_EXHAUSTED)."""
    log.warning("batch of %d %s ops failed: %s", len(pending), pending[0].object, error.message)
    fate.fail_undecided(error.code, error.message, error.fields)


def _fail(op: RecordOp, code: str, message: str, fields: tuple[str, ...] = ()) -> Outcome:
    return Outcome.failed(op.event, code, message, fields, action=op.action, object=op.object,
                          operation=op.operation.value)


__all__ = ["Delivery", "Mode"]
