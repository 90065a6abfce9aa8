"""Run a parsed SOQL query over the store: field checks as Salesforce makes them, WHERE compiled to
predicates, ORDER BY with NULLS FIRST/LAST, LIMIT/OFFSET, parent paths, child subqueries, COUNT."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..coercion import datetime_wire, parse_datetime
from ..errors import SfError, SfException
from ..ids import is_well_formed, to18
from ..org import NUMBER_TYPES, FieldDef, ObjectDef, Org
from .parser import Aggregate, BoolOp, Comparison, Literal, Query

_STRINGY = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "multipicklist"})
_SOAP = {"double": "double", "currency": "double", "percent": "double", "int": "int", "boolean": "boolean",
         "date": "date", "datetime": "dateTime", "id": "id", "reference": "reference"}
Predicate = Callable[[dict[str, Any]], bool]


def invalid_type(name: str) -> SfException:
    return SfException(400, SfError("INVALID_TYPE", f"sObject type '{name}' is not supported. If you are attempting "
                                    "to use a custom object, be sure to append the '__c' after the entity name. "
                                    "Please reference your WSDL or the describe call for the appropriate names."))


def invalid_field(message: str) -> SfException:
    return SfException(400, SfError("INVALID_FIELD", message))


def no_such_column(path: str, obj: ObjectDef) -> SfException:
    return invalid_field(f"No such column '{path}' on entity '{obj.name}'. If you are attempting to use a custom "
                         "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
                         "or the describe call for the appropriate names.")


class Evaluator:
    """Evaluates queries for one org and store."""

    def __init__(self, org: Org, store: Any, version: str) -> None:
        self.org = org
        self.store = store
        self.version = version

    # ----- paths ---------------------------------------------------------------------------------------

    def path(self, obj: ObjectDef, path: str) -> tuple[list[FieldDef], FieldDef]:
        """The reference fields to follow and the final field of a dotted path."""
        parts = path.split(".")
        if len(parts) > 1 and parts[0].lower() == obj.name.lower() and obj.field(parts[1]) is not None:
            parts = parts[1:]  # `Account.Name` on Account itself
        hops: list[FieldDef] = []
        current = obj
        for part in parts[:-1]:
            ref = current.relationship(part)
            if ref is None or not ref.reference_to:
                raise invalid_field(f"Didn't understand relationship '{part}' in field path. If you are attempting "
                                    "to use a custom relationship, be sure to append the '__r' after the custom "
                                    "relationship name. Please reference your WSDL or the describe call for the "
                                    "appropriate names.")
            target = self.org.object(ref.reference_to[0])
            if target is None:
                raise invalid_type(ref.reference_to[0])
            hops.append(ref)
            current = target
        last = current.field(parts[-1])
        if last is None:
            raise no_such_column(parts[-1], current)
        return hops, last

    def getter(self, obj: ObjectDef, path: str) -> tuple[Callable[[dict[str, Any]], Any], FieldDef]:
        hops, last = self.path(obj, path)

        def get(record: dict[str, Any]) -> Any:
            current: dict[str, Any] | None = record
            for hop in hops:
                ref_id = current.get(hop.name) if current else None
                found = self.store.get(ref_id) if ref_id else None
                current = found[1] if found else None
                if current is None:
                    return None
            return current.get(last.name) if current else None

        return get, last

    # ----- WHERE ---------------------------------------------------------------------------------------

    def compile(self, obj: ObjectDef, node: Any) -> Predicate:
        if isinstance(node, BoolOp):
            parts = [self.compile(obj, n) for n in node.items]
            if node.op == "AND":
                return lambda r: all(p(r) for p in parts)
            if node.op == "OR":
                return lambda r: any(p(r) for p in parts)
            return lambda r: not parts[0](r)
        assert isinstance(node, Comparison)
        get, fd = self.getter(obj, node.field)
        if not fd.filterable:
            raise invalid_field(f"field '{fd.name}' can not be filtered in a query call")
        if node.op in ("IN", "NOT IN"):
            assert isinstance(node.value, tuple)
            values = {normalize(fd, literal_value(fd, v)) for v in node.value}
            include_null = None in values
            negate = node.op == "NOT IN"

            def member(r: dict[str, Any]) -> bool:
                v = normalize(fd, get(r))
                found = (v in values) if v is not None else include_null
                return not found if negate else found

            return member
        assert isinstance(node.value, Literal)
        if node.op in ("INCLUDES", "EXCLUDES"):
            raise invalid_field("INCLUDES and EXCLUDES need a multi-select picklist")
        if node.op == "LIKE":
            if fd.type not in _STRINGY and fd.type not in ("id", "reference"):
                raise invalid_field(f"invalid operator on {_SOAP.get(fd.type, fd.type)} field: LIKE")
            pattern = re.compile(like_regex(node.value.like_raw), re.IGNORECASE | re.DOTALL)
            return lambda r: (v := get(r)) is not None and pattern.fullmatch(str(v)) is not None
        if node.value.kind == "date_literal":
            return date_range_predicate(get, fd, node.op, str(node.value.value))
        target = normalize(fd, literal_value(fd, node.value))
        op = node.op
        if target is None:
            if op == "=":
                return lambda r: get(r) is None
            if op == "!=":
                return lambda r: get(r) is not None
            return lambda r: False
        return lambda r: compare(normalize(fd, get(r)), op, target)

    # ----- execution ------------------------------------------------------------------------------------

    def run(self, query: Query, *, include_deleted: bool,
            parent: tuple[FieldDef, str] | None = None) -> tuple[int, list[dict[str, Any]]]:
        obj = self.org.object(query.object)
        if obj is None:
            raise invalid_type(query.object)
        plain = [f for f in query.fields if isinstance(f, str)]
        getters = {p: self.path(obj, p) for p in plain}
        children = [self.child(obj, q) for q in query.fields if isinstance(q, Query)]
        aggregates = [a for a in query.fields if isinstance(a, Aggregate)]
        for agg in aggregates:
            if agg.field:
                self.path(obj, agg.field)
        predicate = self.compile(obj, query.where) if query.where is not None else None
        rows = self.store.records(obj.name, include_deleted=include_deleted)
        if parent is not None:
            link, parent_id = parent
            rows = [r for r in rows if r.get(link.name) == parent_id]
        if predicate is not None:
            rows = [r for r in rows if predicate(r)]
        if query.count_only:
            return len(rows), []
        if aggregates:
            row: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for n, agg in enumerate(aggregates):
                count = len(rows) if agg.field is None else sum(
                    1 for r in rows if self.getter(obj, agg.field)[0](r) is not None)
                row[agg.alias or f"expr{n}"] = count
            return 1, [row]
        for path, descending, nulls_last in reversed(query.order_by):
            get, fd = self.getter(obj, path)
            present = [r for r in rows if get(r) is not None]
            missing = [r for r in rows if get(r) is None]
            present.sort(key=lambda r, g=get, f=fd: sort_key(f, g(r)), reverse=descending)
            rows = present + missing if nulls_last else missing + present
        start = query.offset or 0
        rows = rows[start:start + query.limit] if query.limit is not None else rows[start:]
        out = [self.render(obj, r, plain, getters, children, include_deleted) for r in rows]
        return len(out), out

    def child(self, parent: ObjectDef, sub: Query) -> tuple[str, Query, FieldDef]:
        for rel in self.org.child_relationships(parent.name):
            if rel["relationshipName"].lower() == sub.object.lower():
                child_obj = self.org.object(rel["childSObject"])
                assert child_obj is not None
                sub.object = child_obj.name
                return rel["relationshipName"], sub, child_obj.fields[rel["field"]]
        raise invalid_field(f"Didn't understand relationship '{sub.object}' in FROM part of query call. If you are "
                            "attempting to use a custom relationship, be sure to append the '__r' after the custom "
                            "relationship name. Please reference your WSDL or the describe call for the appropriate "
                            "names.")

    def render(self, obj: ObjectDef, record: dict[str, Any], paths: list[str], getters: dict[str, Any],
               children: list[tuple[str, Query, FieldDef]], include_deleted: bool) -> dict[str, Any]:
        out = attributes(obj, record["Id"], self.version)
        for path in paths:
            hops, last = getters[path]
            if not hops:
                out[last.name] = record.get(last.name)
                continue
            node, current, current_obj = out, record, obj
            for hop in hops:
                target_obj = self.org.object(hop.reference_to[0])
                assert target_obj is not None
                rel = hop.relationship_name or hop.name
                ref_id = current.get(hop.name) if current else None
                found = self.store.get(ref_id) if ref_id else None
                if found is None:
                    node.setdefault(rel, None)
                    break
                current, current_obj = found[1], found[0]
                existing = node.get(rel)
                if not isinstance(existing, dict):
                    existing = attributes(current_obj, current["Id"], self.version)
                    node[rel] = existing
                node = existing
            else:
                node[last.name] = current.get(last.name)
        for name, sub, link in children:
            total, rows = self.run(sub, include_deleted=include_deleted, parent=(link, record["Id"]))
            out[name] = {"totalSize": total, "done": True, "records": rows} if rows else None
        return out


def attributes(obj: ObjectDef, record_id: str, version: str) -> dict[str, Any]:
    return {"attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"}}


def literal_value(fd: FieldDef, lit: Literal) -> Any:
    """A literal checked against the field's type, as Salesforce rejects quoted numbers and the like."""
    soap = _SOAP.get(fd.type, "string")
    if lit.kind == "null":
        return None
    if fd.type in _STRINGY:
        if lit.kind != "string":
            raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type string and "
                                "should be enclosed in quotes")
        return lit.value
    if fd.type in ("id", "reference"):
        if lit.kind != "string":
            raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type id and should "
                                "be enclosed in quotes")
        if not is_well_formed(lit.value):
            raise SfException(400, SfError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}"))
        return lit.value
    expected = {"boolean": "boolean", "date": "date", "datetime": "datetime"}.get(fd.type, "number")
    if lit.kind != expected:
        raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type {soap} and should "
                            "not be enclosed in quotes")
    if fd.type == "datetime":
        moment = parse_datetime(lit.value)
        if moment is None:
            raise invalid_field(f"invalid datetime literal {lit.value}")
        return datetime_wire(moment)
    return lit.value


def normalize(fd: FieldDef, value: Any) -> Any:
    """The comparable form of a value: case-folded text, 18-character Ids, floats."""
    if value is None:
        return None
    if fd.type in ("id", "reference"):
        return to18(value) if is_well_formed(value) else value
    if fd.type in _STRINGY:
        return str(value).lower()
    if fd.type in NUMBER_TYPES:
        return float(value)
    return value


def compare(value: Any, op: str, target: Any) -> bool:
    if op == "=":
        return value == target
    if op == "!=":
        return value != target
    if value is None:
        return False
    if op == "<":
        return value < target
    if op == "<=":
        return value <= target
    if op == ">":
        return value > target
    return value >= target


def sort_key(fd: FieldDef, value: Any) -> Any:
    return str(value).lower() if fd.type in _STRINGY else value


def like_regex(raw: str) -> str:
    """A LIKE pattern (escaped wildcards marked with a backslash) as an anchored regex."""
    out = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            out.append(re.escape(raw[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


def date_range(word: str, today: date) -> tuple[date, date]:
    """[start, end) of a date literal such as TODAY or LAST_N_DAYS:7."""
    name, _, n_text = word.partition(":")
    n = int(n_text or 0)
    ranges = {
        "TODAY": (today, today + timedelta(1)), "YESTERDAY": (today - timedelta(1), today),
        "TOMORROW": (today + timedelta(1), today + timedelta(2)),
        "LAST_N_DAYS": (today - timedelta(n), today + timedelta(1)),
        "NEXT_N_DAYS": (today + timedelta(1), today + timedelta(n + 1)),
        "LAST_90_DAYS": (today - timedelta(90), today + timedelta(1)),
        "NEXT_90_DAYS": (today + timedelta(1), today + timedelta(91)),
        "THIS_YEAR": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
        "THIS_MONTH": (today.replace(day=1), (today.replace(day=28) + timedelta(4)).replace(day=1)),
    }
    if name not in ranges:
        raise SfException(400, SfError("MALFORMED_QUERY", f"date literal {word} is not supported by the emulator"))
    return ranges[name]


def date_range_predicate(get: Callable[[dict[str, Any]], Any], fd: FieldDef, op: str, word: str) -> Predicate:
    if fd.type not in ("date", "datetime"):
        raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type "
                            f"{_SOAP.get(fd.type, 'string')}")
    start, end = date_range(word, datetime.now(UTC).date())

    def day(r: dict[str, Any]) -> date | None:
        v = get(r)
        return None if v is None else date.fromisoformat(str(v)[:10])

    checks: dict[str, Callable[[date], bool]] = {
        "=": lambda d: start <= d < end, "!=": lambda d: not start <= d < end, "<": lambda d: d < start,
        "<=": lambda d: d < end, ">": lambda d: d >= end, ">=": lambda d: d >= start}
    check = checks[op]
    return lambda r: (d := day(r)) is not None and check(d)


def execute(query: Query, org: Org, store: Any, *, include_deleted: bool = False,
            version: str = "62.0") -> tuple[int, list[dict[str, Any]]]:
    """(totalSize, records) of a parsed query."""
    return Evaluator(org, store, version).run(query, include_deleted=include_deleted)
