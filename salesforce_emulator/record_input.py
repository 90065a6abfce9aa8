"""The values of one write request, resolved: canonical field names, wire-format values, parent
references by external ID turned into Ids, and every problem as an SfError."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .coercion import from_json, from_text
from .errors import SfError
from .org import ObjectDef, Org

# (parent object, field, value) → the Ids of live parent records whose field holds value
Lookup = Callable[[ObjectDef, str, Any], list[str]]


@dataclass
class ResolvedInput:
    """Field name → value, in wire format; errors stop the write."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[SfError] = field(default_factory=list)


def no_such_column(obj: ObjectDef, name: str) -> SfError:
    """INVALID_FIELD for a field the object does not have."""
    return SfError("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}", (name,))


def resolve(org: Org, obj: ObjectDef, raw: dict[str, Any], *, text: bool, lookup: Lookup) -> ResolvedInput:
    """Turn request values into canonical fields; `text` means Bulk CSV cells ("" = not provided)."""
    out = ResolvedInput()
    for key, value in raw.items():
        if key == "attributes" and not text:
            continue
        if text and value == "":
            continue
        if "." in key or (isinstance(value, dict) and not text):
            _resolve_parent(org, obj, key, value, text=text, lookup=lookup, out=out)
            continue
        fd = obj.field(key)
        if fd is None:
            out.errors.append(no_such_column(obj, key))
            continue
        coerced, error = from_text(fd, value) if text else from_json(fd, value)
        if error:
            out.errors.append(error)
        else:
            out.values[fd.name] = coerced
    return out


def _resolve_parent(org: Org, obj: ObjectDef, key: str, value: Any, *, text: bool, lookup: Lookup,
                    out: ResolvedInput) -> None:
    """`Account.External_Id__c: X` (CSV) or `Account: {External_Id__c: X}` (JSON) → AccountId."""
    if text:
        rel_name, _, key_field = key.partition(".")
        key_value: Any = value
    else:
        rel_name = key
        items = [(k, v) for k, v in value.items() if k != "attributes"]
        if len(items) != 1:
            out.errors.append(SfError("INVALID_FIELD", f"Invalid foreign key reference in field {key}", (key,)))
            return
        key_field, key_value = items[0]
    ref = obj.relationship(rel_name)
    if ref is None:
        out.errors.append(no_such_column(obj, key))
        return
    if key_value is None or key_value == "#N/A":
        out.values[ref.name] = None
        return
    parent = org.object(ref.reference_to[0]) if ref.reference_to else None
    parent_field = parent.field(key_field) if parent else None
    if parent is None or parent_field is None or not (parent_field.external_id or parent_field.id_lookup):
        out.errors.append(SfError("INVALID_FIELD", f"Foreign key external ID: {key_value} not found for field "
                                  f"{key_field} in entity {ref.reference_to[0] if ref.reference_to else rel_name}",
                                  (ref.name,)))
        return
    matches = lookup(parent, parent_field.name, key_value)
    if len(matches) == 1:
        out.values[ref.name] = matches[0]
    elif not matches:
        out.errors.append(SfError("INVALID_FIELD", f"Foreign key external ID: {key_value} not found for field "
                                  f"{parent_field.name} in entity {parent.name}", (ref.name,)))
    else:
        out.errors.append(SfError("INVALID_FIELD", f"More than 1 record found for external id field: "
                                  f"{parent_field.name} in entity {parent.name}", (ref.name,)))
