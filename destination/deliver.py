"""Deliver one batch: lookups (one SOQL query per matcher field, chunked), parent lookups, plan, write,
and an outcome for every operation. Creates already confirmed for a messageId are not sent again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from .actions.model import Compare, Mode, Operation, Policy
from .budget import Budget
from .operations import FieldValue, Lookup, MatchTree, RecordOp
from .outcomes import Outcome
from .plan import (
    Plan,
    RecordIndex,
    Write,
    id_matcher,
    native_upsert_field,
    plan_batch,
    plan_by_id,
    plan_native,
    select_fields,
    tree_holds,
)
from .salesforce import soql
from .salesforce.client import SalesforceClient
from .salesforce.describe import ObjectDescribe
from .salesforce.errors import ErrorKind, SalesforceApiError
from .salesforce.ids import looks_like_id
from .synclog.base import SyncLog
from .write import Writer

log = logging.getLogger("destination.deliver")
DOMAIN_CHUNK = 40  # LIKE clauses per domain lookup query
Known = Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]]  # (object, found records) → amended records


class Delivery:
    """Delivers batches for every connection; knows the clients, the sync log and the budget."""

    def __init__(self, clients: dict[str, SalesforceClient], *, sync_log: SyncLog | None = None,
                 budget: Budget | None = None, max_attempts: int = 6, backoff_seconds: float = 0.2,
                 metrics: Any = None) -> None:
        self.clients = clients
        self.sync_log = sync_log
        self.budget = budget or Budget()
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.metrics = metrics

    async def deliver(self, ops: Sequence[RecordOp]) -> list[Outcome]:
        """Outcomes for a batch of operations sharing one batch key (any order of events inside)."""
        if not ops:
            return []
        client = self.clients.get(ops[0].connection)
        if client is None:
            return [_fail(op, "CONFIG_ERROR", f"no connection named {op.connection!r}") for op in ops]
        await self.budget.wait(client)
        while True:
            try:
                return await self._deliver(client, list(ops))
            except SalesforceApiError as exc:
                if exc.kind is ErrorKind.RATE_LIMITED:
                    await self.budget.rate_limited(client, exc)
                    continue
                if exc.kind in (ErrorKind.TRANSIENT, ErrorKind.AUTH):
                    log.warning("batch of %d %s ops hit %s; retrying", len(ops), ops[0].object, exc)
                    await asyncio.sleep(self.backoff_seconds * 5)
                    continue
                return [_fail(op, exc.error.code, exc.error.message, exc.error.fields) for op in ops]

    async def _deliver(self, client: SalesforceClient, ops: list[RecordOp]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            describe = await client.describe.get(ops[0].object)
        except SalesforceApiError as exc:
            if exc.status == 404:
                return [_fail(op, "CONFIG_ERROR", f"object {op.object} does not exist in the org") for op in ops]
            raise
        ops, done = await self._already_created(ops)
        outcomes.extend(done)
        ops, done = await self._resolve_parents(client, ops)
        outcomes.extend(done)
        if not ops:
            return outcomes
        plan = await self._plan(client, describe, ops)
        outcomes.extend(plan.outcomes)
        writer = Writer(client, max_attempts=self.max_attempts, backoff_seconds=self.backoff_seconds,
                        reconcile=lambda w: self._reconcile(client, describe, w),
                        pause=lambda exc: self.budget.rate_limited(client, exc),
                        on_call=self._count_call)
        outcomes.extend(await writer.execute(plan.writes, ops[0].mode))
        return outcomes

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
        ops, outcomes = await self._resolve_parents(client, ops)
        if not ops:
            return Plan(), outcomes
        plan = await self._plan(client, describe, ops, read_only=True, known=known)
        return plan, outcomes + plan.outcomes

    def _count_call(self, kind: str, size: int) -> None:
        if self.metrics is not None:
            self.metrics.batch(kind, size)

    async def _plan(self, client: SalesforceClient, describe: ObjectDescribe, ops: list[RecordOp], *,
                    read_only: bool = False, known: Known | None = None) -> Plan:
        external_ids = {f["name"].lower() for f in describe.fields if f.get("externalId") or
                        (f.get("idLookup") and f.get("unique"))}
        native = native_upsert_field(ops[0], external_ids)
        if native and not read_only:
            return plan_native(ops, native)
        if id_matcher(ops[0]) is not None and not read_only:
            return plan_by_id(ops)
        if ops[0].operation is Operation.CREATE:
            return plan_batch(ops, [])
        extra = ["IsConverted", "ConvertedContactId"] if ops[0].follow_converted_leads else []
        fields = [f for f in select_fields(ops, extra) if describe.field(f) is not None]
        found = await self._lookup(client, describe, fields, [op.match for op in ops if op.match is not None])
        if known is not None:
            found = known(describe.name, found)
        plan = plan_batch(ops, found)
        if ops[0].follow_converted_leads:
            await self._follow_converted(client, plan, {r["Id"]: r for r in found})
        return plan

    async def _lookup(self, client: SalesforceClient, describe: ObjectDescribe, fields: list[str],
                      trees: Sequence[MatchTree]) -> list[dict[str, Any]]:
        """Records matching any of the trees' matchers: one IN query per field (chunked), LIKE for domains."""
        exact: dict[str, dict[Any, None]] = {}
        domains: dict[str, dict[str, None]] = {}
        for tree in trees:
            for m in tree.matchers():
                target = domains if m.compare is Compare.DOMAIN else exact
                known = describe.field(m.field)
                target.setdefault(known["name"] if known else m.field, {})[m.value] = None
        select = soql.Select(describe.name, tuple(fields))
        found: dict[str, dict[str, Any]] = {}
        for name, values in exact.items():
            kind = describe.type_of(name)
            usable = [v for v in values if _literal_ok(v, kind)]
            for query, _ in soql.chunk_in(select, name, usable, kind):
                for record in await client.query(query.render()):
                    found[record["Id"]] = record
        for name, values in domains.items():
            items = list(values)
            for start in range(0, len(items), DOMAIN_CHUNK):
                chunk = items[start:start + DOMAIN_CHUNK]
                where = soql.any_of(*(soql.Cond(name, "CONTAINS", d) for d in chunk))
                query = soql.Select(describe.name, tuple(fields), where)
                for record in await client.query(query.render()):
                    found[record["Id"]] = record
        return list(found.values())

    async def _resolve_parents(self, client: SalesforceClient, ops: list[RecordOp]) -> tuple[list[RecordOp], list[Outcome]]:
        """Fill reference fields from parent lookups (one query per parent object and matcher field)."""
        if not any(op.lookups for op in ops):
            return ops, []
        by_object: dict[str, list[Lookup]] = {}
        for op in ops:
            for lookup in op.lookups:
                by_object.setdefault(lookup.object, []).append(lookup)
        parents: dict[str, list[dict[str, Any]]] = {}
        for obj, lookups in by_object.items():
            describe = await client.describe.get(obj)
            fields = [f for f in select_fields([], [m.field for lk in lookups for m in lk.match.matchers()])
                      if describe.field(f) is not None]
            parents[obj] = await self._lookup(client, describe, fields, [lk.match for lk in lookups])
        indexes = {obj: RecordIndex(found, [lk.match for lk in by_object[obj]]) for obj, found in parents.items()}
        kept: list[RecordOp] = []
        failed: list[Outcome] = []
        for op in ops:
            values = dict(op.fields)
            missing = None
            for lookup in op.lookups:
                matches = [r for r in indexes[lookup.object].candidates(lookup.match) if tree_holds(lookup.match, r)]
                if not matches:
                    if lookup.required:
                        missing = f"no parent {lookup.object} for {lookup.field}"
                    continue
                newest = max(matches, key=lambda r: (str(r.get("LastModifiedDate") or ""), r["Id"]))
                values[lookup.field] = FieldValue(newest["Id"], Policy.SKIP_BLANK)
            if missing:
                failed.append(_fail(op, "PARENT_NOT_FOUND", missing, (op.lookups[0].field,)))
            else:
                kept.append(replace(op, fields=values))
        return kept, failed

    async def _already_created(self, ops: list[RecordOp]) -> tuple[list[RecordOp], list[Outcome]]:
        """A create (or upsert) already confirmed for this messageId and action is not sent again
        (one sync-log query per batch and action)."""
        if self.sync_log is None:
            return ops, []
        checked = [op for op in ops if op.operation in (Operation.CREATE, Operation.UPSERT) and op.event.message_id]
        known: dict[tuple[str, str], dict[str, str]] = {}
        for source, action in {(op.source, op.action) for op in checked}:
            ids = [op.event.message_id for op in checked if (op.source, op.action) == (source, action)]
            known[(source, action)] = await self.sync_log.created_records(source, action, ids)
        kept, done = [], []
        for op in ops:
            record_id = known.get((op.source, op.action), {}).get(op.event.message_id)
            if record_id:
                done.append(Outcome.succeeded(op.event, record_id=record_id, created=True, action=op.action,
                                              object=op.object, operation=op.operation.value,
                                              warnings=("already created for this messageId; not sent again",)))
            else:
                kept.append(op)
        return kept, done

    async def _reconcile(self, client: SalesforceClient, describe: ObjectDescribe, write: Write) -> str | None:
        """After an uncertain create: the record if it now exists (looked up by the ops' matchers)."""
        trees = [op.match for op in write.ops if op.match is not None]
        if not trees:
            return ""
        found = await self._lookup(client, describe, ["Id", "LastModifiedDate"] + [m.field for t in trees
                                                                                 for m in t.matchers()], trees)
        return found[0]["Id"] if found else None

    async def _follow_converted(self, client: SalesforceClient, plan: Plan, records: dict[str, dict[str, Any]]) -> None:
        """Updates aimed at a converted Lead go to its Contact (fields the Contact lacks are dropped)."""
        contact = await client.describe.get("Contact")
        for write in plan.writes:
            record = records.get(write.record_id or "")
            if write.kind != "update" or not record or not record.get("IsConverted"):
                continue
            target = record.get("ConvertedContactId")
            if not target:
                continue
            kept = {k: v for k, v in write.values.items() if contact.field(k) is not None and
                    contact.field(k).get("updateable")}
            write.warnings.append(f"Lead {write.record_id} is converted: written to Contact {target}")
            write.object, write.record_id, write.values = "Contact", target, kept


def _literal_ok(value: Any, kind: str | None) -> bool:
    try:
        soql.literal(value, kind)
    except soql.SoqlValueError:
        return False
    if kind in ("id", "reference"):
        return looks_like_id(str(value))
    return True


def _fail(op: RecordOp, code: str, message: str, fields: tuple[str, ...] = ()) -> Outcome:
    return Outcome.failed(op.event, code, message, fields, action=op.action, object=op.object,
                          operation=op.operation.value)


__all__ = ["Delivery", "Mode"]
