"""Run a parsed SOQL query over the store: field checks as Salesforce makes them, WHERE compiled to
predicates, ORDER BY with NULLS FIRST/LAST, LIMIT/OFFSET, parent paths, child subqueries, COUNT."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..org import STRING_TYPES, FieldDef, ObjectDef, Org
from .dates import date_literal_predicate
from .errors import bad_relationship, caret, invalid_field, invalid_type, malformed, no_such_column
from .nodes import Aggregate, BoolOp, Comparison, Literal, Query
from .values import ID_TYPES, compare, like_regex, literal_value, normalize, picklist_set, soap_name, sort_key

MAX_PARENT_LEVELS = 5  # Contact.Account.Owner.Manager... at most five relationships up
Record = dict[str, Any]
Predicate = Callable[[Record], bool]
Getter = Callable[[Record], Any]


@dataclass(frozen=True)
class FieldPath:
    """A resolved dotted path: the reference fields to follow, then the field to read."""

    hops: tuple[FieldDef, ...]
    last: FieldDef

    @property
    def key(self) -> tuple[str, ...]:
        return (*(h.name for h in self.hops), self.last.name)


@dataclass
class Plan:
    """A query checked against the org: everything needed to select, order and render rows."""

    obj: ObjectDef
    query: Query
    items: list[FieldPath | tuple[str, Plan, FieldDef]]  # paths, or (relationship, child plan, link field)
    aggregates: list[tuple[Aggregate, FieldPath | None]]
    predicate: Predicate | None
    order: list[tuple[Getter, FieldDef, bool, bool]] = field(default_factory=list)


class Evaluator:
    """Evaluates queries for one org and store."""

    def __init__(self, org: Org, store: Any, version: str, include_deleted: bool = False) -> None:
        self.org = org
        self.store = store
        self.version = version
        self.include_deleted = include_deleted
        self.source = ""

    def at(self, name: str) -> str:
        """The caret diagram pointing at `name` in the statement (empty when its place is unknown)."""
        return caret(self.source, getattr(name, "pos", -1))

    # ----- checking ------------------------------------------------------------------------------------

    def path(self, obj: ObjectDef, path: str) -> FieldPath:
        """Resolve a dotted path (case-insensitive) from `obj`; INVALID_FIELD when any part is unknown."""
        parts = path.split(".")
        if len(parts) > 1 and parts[0].lower() == obj.name.lower() and obj.relationship(parts[0]) is None:
            parts = parts[1:]  # `Account.Name` on Account itself
        if len(parts) - 1 > MAX_PARENT_LEVELS:
            raise malformed(f"SOQL statements cannot query more than {MAX_PARENT_LEVELS} levels of relationships "
                            f"from the root entity object: {path}")
        hops: list[FieldDef] = []
        current = obj
        for part in parts[:-1]:
            ref = current.relationship(part)
            if ref is None or not ref.reference_to:
                raise bad_relationship(part, self.at(path))
            target = self.org.object(ref.reference_to[0])
            if target is None:
                raise invalid_type(ref.reference_to[0])
            hops.append(ref)
            current = target
        last = current.field(parts[-1])
        if last is None:
            raise no_such_column(parts[-1], current, self.at(path))
        return FieldPath(tuple(hops), last)

    def plan(self, query: Query, obj: ObjectDef) -> Plan:
        """Check every name in `query` against the org and compile its clauses."""
        items: list[FieldPath | tuple[str, Plan, FieldDef]] = []
        aggregates: list[tuple[Aggregate, FieldPath | None]] = []
        seen: set[tuple[str, ...]] = set()
        for item in query.fields:
            if isinstance(item, Aggregate):
                aggregates.append((item, self.path(obj, item.field) if item.field else None))
            elif isinstance(item, Query):
                name, child, link = self.child(obj, item)
                if ("(", name) in seen:
                    raise invalid_field(f"duplicate field selected: {name}", self.at(item.object))
                seen.add(("(", name))
                items.append((name, child, link))
            else:
                resolved = self.path(obj, item)
                if resolved.key in seen:
                    raise invalid_field(f"duplicate field selected: {resolved.last.name}", self.at(item))
                seen.add(resolved.key)
                items.append(resolved)
        if aggregates and items:
            first = items[0]
            shown = first.last.name if isinstance(first, FieldPath) else first[0]
            raise malformed(f"Field must be grouped or aggregated: {shown}")
        if any(a.field is None for a, _ in aggregates) and len(aggregates) > 1:
            raise malformed("COUNT() must be the only element in the SELECT list")
        predicate = self.compile(obj, query.where) if query.where is not None else None
        plan = Plan(obj, query, items, aggregates, predicate)
        for path, descending, nulls_last in query.order_by:
            resolved = self.path(obj, path)
            if resolved.last.type in ("textarea", "multipicklist"):
                raise invalid_field(f"field '{resolved.last.name}' can not be sorted in a query call", self.at(path))
            plan.order.append((self.getter(resolved), resolved.last, descending, nulls_last))
        return plan

    def child(self, parent: ObjectDef, sub: Query) -> tuple[str, Plan, FieldDef]:
        """The relationship name, plan and link field of a parent-to-child subquery."""
        for rel in self.org.child_relationships(parent.name):
            if rel["relationshipName"].lower() == sub.object.lower():
                child_obj = self.org.object(rel["childSObject"])
                if child_obj is None:
                    raise invalid_type(rel["childSObject"])
                return rel["relationshipName"], self.plan(sub, child_obj), child_obj.fields[rel["field"]]
        raise bad_relationship(sub.object, self.at(sub.object), "FROM part of query call")

    def getter(self, path: FieldPath) -> Getter:
        """Reads the path's value from a record, following references through the store."""
        hops, last = path.hops, path.last.name

        def get(record: Record) -> Any:
            current: Record | None = record
            for hop in hops:
                found = self.parent(current, hop) if current else None
                current = found[1] if found else None
            return current.get(last) if current else None

        return get

    def parent(self, record: Record, hop: FieldDef) -> tuple[ObjectDef, Record] | None:
        ref_id = record.get(hop.name)
        return self.store.get(ref_id, include_deleted=self.include_deleted) if ref_id else None

    # ----- WHERE ---------------------------------------------------------------------------------------

    def compile(self, obj: ObjectDef, node: Any) -> Predicate:
        """A WHERE condition as a predicate over records of `obj`."""
        if isinstance(node, BoolOp):
            parts = [self.compile(obj, n) for n in node.items]
            if node.op == "AND":
                return lambda r: all(p(r) for p in parts)
            if node.op == "OR":
                return lambda r: any(p(r) for p in parts)
            return lambda r: not parts[0](r)
        assert isinstance(node, Comparison)
        resolved = self.path(obj, node.field)
        get, fd = self.getter(resolved), resolved.last
        if not fd.filterable:
            raise invalid_field(f"field '{fd.name}' can not be filtered in a query call", self.at(node.field))
        if isinstance(node.value, tuple):
            return self.membership(get, fd, node.op, node.value)
        if node.op == "LIKE":
            if fd.type not in STRING_TYPES and fd.type not in ID_TYPES:
                raise invalid_field(f"invalid operator on {soap_name(fd)} field: LIKE")
            pattern = re.compile(like_regex(node.value.like_raw), re.IGNORECASE | re.DOTALL)
            return lambda r: (v := get(r)) is not None and pattern.fullmatch(str(v)) is not None
        if node.value.kind == "date_literal":
            return date_literal_predicate(get, fd, node.op, str(node.value.value))
        if node.op not in ("=", "!=") and fd.type in ("boolean", "multipicklist", *ID_TYPES):
            raise invalid_field(f"invalid operator on {soap_name(fd)} field: {node.op}")
        target = normalize(fd, literal_value(fd, node.value))
        op = node.op
        if target is None:
            if op == "=":
                return lambda r: get(r) is None
            if op == "!=":
                return lambda r: get(r) is not None
            return lambda r: False
        return lambda r: compare(normalize(fd, get(r)), op, target)

    def membership(self, get: Getter, fd: FieldDef, op: str, literals: tuple[Literal, ...]) -> Predicate:
        """IN / NOT IN over a value list; INCLUDES / EXCLUDES over a multi-select picklist."""
        if op in ("INCLUDES", "EXCLUDES"):
            if fd.type != "multipicklist":
                raise invalid_field(f"invalid operator on {soap_name(fd)} field: {op}")
            wanted = [picklist_set(literal_value(fd, v) or "") for v in literals]
            exclude = op == "EXCLUDES"

            def includes(r: Record) -> bool:
                v = get(r)
                chosen = picklist_set(v) if v is not None else frozenset()
                hit = any(w and w <= chosen for w in wanted)
                return not hit if exclude else hit

            return includes
        values = {normalize(fd, literal_value(fd, v)) for v in literals}
        include_null = None in values
        negate = op == "NOT IN"

        def member(r: Record) -> bool:
            v = normalize(fd, get(r))
            found = (v in values) if v is not None else include_null
            return not found if negate else found

        return member

    # ----- execution ------------------------------------------------------------------------------------

    def run(self, query: Query) -> tuple[int, list[Record]]:
        """(totalSize, records) of a top-level query."""
        self.source = query.source
        obj = self.org.object(query.object)
        if obj is None:
            raise invalid_type(query.object, self.at(query.object))
        plan = self.plan(query, obj)
        rows = self._indexed(obj, query.where) if not self.include_deleted else None
        if rows is None:
            rows = self.store.records(obj.name, include_deleted=self.include_deleted)
        if plan.predicate is not None:
            rows = [r for r in rows if plan.predicate(r)]
        if plan.aggregates:
            if query.count_only:
                return len(self.arrange(plan, rows)), []
            return 1, [self.aggregate_row(plan, rows)]
        rows = self.arrange(plan, rows)
        return len(rows), self.render_all(plan, rows)

    def _indexed(self, obj: ObjectDef, where: Any) -> list[Record] | None:
        """Candidate rows from the store's field index for `field = 'x'` / `field IN (...)` on a text or Id
        field (alone, in an AND, or in every branch of an OR); None means scan. The full predicate still
        runs on the candidates, so this only saves time."""
        if isinstance(where, BoolOp) and where.op == "AND":
            return next((rows for item in where.items if (rows := self._indexed(obj, item)) is not None), None)
        if isinstance(where, BoolOp) and where.op == "OR":
            parts = [self._indexed(obj, item) for item in where.items]
            if any(p is None for p in parts):
                return None
            merged = {r["Id"]: r for part in parts for r in part or []}
            return list(merged.values())
        if not isinstance(where, Comparison) or where.op not in ("=", "IN") or "." in str(where.field):
            return None
        fd = obj.field(str(where.field))
        literals = where.value if isinstance(where.value, tuple) else (where.value,)
        if fd is None or fd.type not in (STRING_TYPES - {"multipicklist"}) | {"id", "reference"} or \
                any(lit.kind != "string" for lit in literals):
            return None
        return self.store.lookup(obj.name, fd.name, [lit.value for lit in literals])

    def aggregate_row(self, plan: Plan, rows: list[Record]) -> Record:
        # Unaliased aggregates are named expr0, expr1, ... counting only the unaliased ones.
        out: Record = {"attributes": {"type": "AggregateResult"}}
        unnamed = 0
        for agg, path in plan.aggregates:
            if agg.alias:
                name = agg.alias
            else:
                name, unnamed = f"expr{unnamed}", unnamed + 1
            get = self.getter(path) if path else None
            out[name] = len(rows) if get is None else sum(1 for r in rows if get(r) is not None)
        return out

    def arrange(self, plan: Plan, rows: list[Record]) -> list[Record]:
        """ORDER BY (stable, key by key from the last), then OFFSET and LIMIT."""
        for get, fd, descending, nulls_last in reversed(plan.order):
            present = [r for r in rows if get(r) is not None]
            missing = [r for r in rows if get(r) is None]
            present.sort(key=lambda r, g=get, f=fd: sort_key(f, g(r)), reverse=descending)
            rows = present + missing if nulls_last else missing + present
        start = plan.query.offset or 0
        limit = plan.query.limit
        return rows[start:start + limit] if limit is not None else rows[start:]

    def render_all(self, plan: Plan, rows: list[Record]) -> list[Record]:
        """Render rows, fetching each child subquery's rows once for all of them."""
        ids = {r["Id"] for r in rows}
        groups: list[dict[str, list[Record]]] = []
        for item in plan.items:
            if isinstance(item, FieldPath):
                continue
            _, child, link = item
            grouped: dict[str, list[Record]] = {}
            for r in self.store.records(child.obj.name, include_deleted=self.include_deleted):
                if r.get(link.name) in ids and (child.predicate is None or child.predicate(r)):
                    grouped.setdefault(r[link.name], []).append(r)
            groups.append(grouped)
        return [self.render(plan, r, groups) for r in rows]

    def render(self, plan: Plan, record: Record, groups: list[dict[str, list[Record]]]) -> Record:
        out = attributes(plan.obj, record["Id"], self.version)
        children = iter(groups)
        for item in plan.items:
            if isinstance(item, FieldPath):
                self.put(out, record, item)
                continue
            name, child, _ = item
            rows = self.arrange(child, next(children).get(record["Id"], []))
            out[name] = {"totalSize": len(rows), "done": True, "records": self.render_all(child, rows)} if rows else None
        return out

    def put(self, out: Record, record: Record, path: FieldPath) -> None:
        """Write a path's value into `out`, nesting parents as objects with attributes (null when empty)."""
        node, current = out, record
        for hop in path.hops:
            rel = hop.relationship_name or hop.name
            found = self.parent(current, hop)
            if found is None:
                node.setdefault(rel, None)
                return
            parent_obj, current = found
            existing = node.get(rel)
            if not isinstance(existing, dict):
                existing = attributes(parent_obj, current["Id"], self.version)
                node[rel] = existing
            node = existing
        node[path.last.name] = current.get(path.last.name)


def attributes(obj: ObjectDef, record_id: str, version: str) -> Record:
    """The `attributes` head of a rendered record."""
    return {"attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"}}


def execute(query: Query, org: Org, store: Any, *, include_deleted: bool = False,
            version: str = "62.0") -> tuple[int, list[Record]]:
    """(totalSize, records) of a parsed query; COUNT() gives (count, [])."""
    return Evaluator(org, store, version, include_deleted).run(query)
