"""Literal checks and value comparison as SOQL does them: typed literals, case-insensitive text, 15/18-char Ids."""

from __future__ import annotations

import re
from typing import Any

from ..coercion import datetime_wire, parse_datetime
from ..errors import SfError, SfException
from ..ids import is_well_formed, to18
from ..org import NUMBER_TYPES, STRING_TYPES, FieldDef
from .errors import invalid_field
from .nodes import Literal

ID_TYPES = frozenset({"id", "reference"})
SOAP_NAMES = {"double": "double", "currency": "double", "percent": "double", "int": "int", "boolean": "boolean",
              "date": "date", "datetime": "dateTime", "id": "id", "reference": "reference"}


def soap_name(fd: FieldDef) -> str:
    """The type name Salesforce uses for a field in query error messages."""
    return SOAP_NAMES.get(fd.type, "string")


def literal_value(fd: FieldDef, lit: Literal) -> Any:
    """A literal checked against the field's type (Salesforce rejects quoted numbers and the like), in the
    form the store keeps values in."""
    if lit.kind == "null":
        return None
    if fd.type in STRING_TYPES:
        if lit.kind != "string":
            raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type string and "
                                "should be enclosed in quotes")
        return lit.value
    if fd.type in ID_TYPES:
        if lit.kind != "string":
            raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type id and should "
                                "be enclosed in quotes")
        if not is_well_formed(lit.value):
            raise SfException(400, SfError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}"))
        return lit.value
    expected = {"boolean": "boolean", "date": "date", "datetime": "datetime"}.get(fd.type, "number")
    if lit.kind != expected:
        raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type {soap_name(fd)} and "
                            "should not be enclosed in quotes")
    if fd.type == "datetime":
        moment = parse_datetime(lit.value)
        if moment is None:
            raise invalid_field(f"invalid datetime literal {lit.value}")
        return datetime_wire(moment)
    return lit.value


def normalize(fd: FieldDef, value: Any) -> Any:
    """The comparable form of a value: case-folded text, 18-character Ids, floats, ordered picklist sets."""
    if value is None:
        return None
    if fd.type in ID_TYPES:
        return to18(value) if is_well_formed(value) else value
    if fd.type == "multipicklist":
        return ";".join(sorted(picklist_set(value)))
    if fd.type in STRING_TYPES:
        return str(value).casefold()
    if fd.type in NUMBER_TYPES:
        return float(value)
    return value


def picklist_set(value: Any) -> frozenset[str]:
    """The selected values of a multi-select picklist value ("a;b"), case-folded."""
    return frozenset(part.strip().casefold() for part in str(value).split(";") if part.strip())


def compare(value: Any, op: str, target: Any) -> bool:
    """`value op target` for normalized, non-null operands (= and != also take a null value)."""
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
    """The ORDER BY key of a non-null value: text ignores case."""
    if fd.type in STRING_TYPES:
        return str(value).casefold()
    if fd.type in NUMBER_TYPES:
        return float(value)
    return value


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
