"""Lookups: the records a batch's matchers name (one SOQL query per matcher field, chunked; LIKE for
domains), the parents its reference fields point at, and the Contact a converted Lead became. I/O through
the Salesforce client; what to do with what is found is planning's (destination/plan.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .kinds import Compare, Policy
from .operations import FieldValue, Lookup, MatchTree, RecordOp
from .outcomes import Outcome
from .plan import Plan, RecordIndex, select_fields, tree_holds
from .salesforce import soql
from .salesforce.client import SalesforceClient
from .salesforce.describe import ObjectDescribe
from .salesforce.ids import looks_like_id

DOMAIN_CHUNK = 40  # LIKE clauses per domain lookup query


async def find_records(client: SalesforceClient, describe: ObjectDescribe, fields: list[str],
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


async def resolve_parents(client: SalesforceClient, ops: list[RecordOp]) -> tuple[list[RecordOp], list[Outcome]]:
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
        parents[obj] = await find_records(client, describe, fields, [lk.match for lk in lookups])
    indexes = {obj: RecordIndex(found, [lk.match for lk in by_object[obj]]) for obj, found in parents.items()}
    kept: list[RecordOp] = []
    failed: list[Outcome] = []
    for op in ops:
        values = dict(op.fields)
        missing = None
        notes: list[str] = []
        for lookup in op.lookups:
            matches = [r for r in indexes[lookup.object].candidates(lookup.match) if tree_holds(lookup.match, r)]
            if not matches:
                by = (" or " if lookup.match.kind == "any" else " and ").join(
                    f"{m.field} = {m.value!r}" for m in lookup.match.matchers())
                if lookup.required:
                    missing = f"no parent {lookup.object} found for {lookup.field} by {by}"
                else:  # written without the reference: said on the outcome, not silently
                    notes.append(f"no parent {lookup.object} found for {lookup.field} by {by}")
                continue
            newest = max(matches, key=lambda r: (str(r.get("LastModifiedDate") or ""), r["Id"]))
            values[lookup.field] = FieldValue(newest["Id"], Policy.SKIP_BLANK)
        if missing:
            failed.append(Outcome.failed(op.event, "PARENT_NOT_FOUND", missing, (op.lookups[0].field,),
                                         action=op.action, object=op.object, operation=op.operation.value))
        else:
            kept.append(replace(op, fields=values, warnings=(*op.warnings, *notes)))
    return kept, failed


async def follow_converted(client: SalesforceClient, plan: Plan, records: dict[str, dict[str, Any]]) -> None:
    """Updates aimed at a converted Lead go to its Contact (fields the Contact lacks are dropped)."""
    contact = await client.describe.get("Contact")
    for write in plan.writes:
        record = records.get(write.record_id or "")
        if write.kind != "update" or not record or not record.get("IsConverted"):
            continue
        target = record.get("ConvertedContactId")
        if not target:
            continue
        kept = {k: v for k, v in write.values.items()
                if (known := contact.field(k)) is not None and known.get("updateable")}
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
