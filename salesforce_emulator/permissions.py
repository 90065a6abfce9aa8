"""Profiles and permission sets: what one user may see and change, as a view of the org.

A user with no `profile` has full access (the default org's users, so nothing changes for them). A user
with a profile sees the org through `view_for(org, user)`: objects they cannot read are absent, fields
they cannot read are absent, fields they cannot edit are neither createable nor updateable, and the
object flags (createable, updateable, deletable) follow the object permissions. Describe, SOQL and every
write path read the org through this view, so one rule serves them all.

Grants (a profile, or a permission set that adds to it):

    objects:  {Lead: [create, read, edit], Account: [read], Case: all}
    fields:   {Lead: {AnnualRevenue: read, Rating: none}}
    record_types: {Lead: {available: [Sales_Lead], default: Sales_Lead}}

Record types a grant lists for an object are the ones the user may create and save records with (the
union over their grants); the profile's `default` is what a create without RecordTypeId gets. An object
no grant lists record types for keeps the org's (all active ones, the org's default).

Objects a grant does not list get nothing from it. Fields are `edit` unless some grant of the user lists
them; then the highest listed level wins (none < read < edit), so a permission set can raise what a
profile lowered. create, edit and delete imply read, as in Salesforce.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import SfError

if TYPE_CHECKING:  # org.py builds its grants with this module
    from .org import FieldDef, ObjectDef, Org, RecordType, User

OBJECT_PERMISSIONS = ("create", "read", "edit", "delete")
FIELD_LEVELS = ("none", "read", "edit")
# Fields anyone who can read the object sees (a grant may make them read-only, never invisible).
_ALWAYS_VISIBLE = frozenset({"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                             "LastModifiedById", "SystemModstamp", "OwnerId", "Name", "RecordTypeId"})


def insufficient_access() -> SfError:
    """The error of a write the user's object permissions do not allow (reference 6.2)."""
    return SfError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")


@dataclass(frozen=True)
class Grant:
    """A profile or a permission set: object permissions and field levels it grants."""

    name: str
    objects: dict[str, frozenset[str]] = field(default_factory=dict)  # object → {create, read, edit, delete}
    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # object → field → none | read | edit
    # object → (developer names of the record types it makes available, the default among them or None)
    record_types: dict[str, tuple[frozenset[str], str | None]] = field(default_factory=dict)


def parse_grants(raw: dict[str, Any] | None, kind: str) -> dict[str, Grant]:
    """`profiles:` or `permission_sets:` of an org YAML, by name; ValueError names a bad entry."""
    grants: dict[str, Grant] = {}
    for name, body in (raw or {}).items():
        body = body or {}
        unknown = set(body) - {"objects", "fields", "record_types"}
        if unknown:
            raise ValueError(f"{kind} {name}: unknown keys {sorted(unknown)}")
        objects: dict[str, frozenset[str]] = {}
        for obj, perms in (body.get("objects") or {}).items():
            chosen = set(OBJECT_PERMISSIONS) if perms == "all" else set(perms or [])
            if not chosen <= set(OBJECT_PERMISSIONS):
                raise ValueError(f"{kind} {name}: {obj} permissions must be among {OBJECT_PERMISSIONS} or 'all'")
            if chosen:
                chosen.add("read")
            objects[obj.lower()] = frozenset(chosen)
        fields: dict[str, dict[str, str]] = {}
        for obj, levels in (body.get("fields") or {}).items():
            for fname, level in (levels or {}).items():
                if level not in FIELD_LEVELS:
                    raise ValueError(f"{kind} {name}: {obj}.{fname} must be one of {FIELD_LEVELS}")
                fields.setdefault(obj.lower(), {})[fname.lower()] = level
        record_types: dict[str, tuple[frozenset[str], str | None]] = {}
        for obj, spec in (body.get("record_types") or {}).items():
            available = frozenset(str(n) for n in (spec or {}).get("available") or [])
            default = (spec or {}).get("default")
            if default is not None and default not in available:
                raise ValueError(f"{kind} {name}: {obj} default record type {default!r} is not among available")
            record_types[obj.lower()] = (available, default)
        grants[name] = Grant(name, objects, fields, record_types)
    return grants


def view_for(org: Org, user: User | None) -> Org:
    """The org as this user sees it: the org itself for a user without a profile (full access)."""
    if user is None or user.profile is None:
        return org
    grants = [org.profiles[user.profile], *(org.permission_sets[p] for p in user.permission_sets)]
    objects: dict[str, ObjectDef] = {}
    for name, od in org.objects.items():
        perms: set[str] = set()
        for grant in grants:
            perms |= grant.objects.get(name.lower(), frozenset())
        if "read" in perms:
            objects[name] = _object_view(od, perms, grants)
    return replace(org, objects=objects)


def _object_view(od: ObjectDef, perms: set[str], grants: list[Grant]) -> ObjectDef:
    fields: dict[str, FieldDef] = {}
    for fname, fd in od.fields.items():
        level = _field_level(od.name, fname, grants)
        if level == "none":
            continue
        editable = level == "edit"
        fields[fname] = replace(fd, createable=fd.createable and editable and "create" in perms,
                                updateable=fd.updateable and editable and "edit" in perms,
                                picklist_values=list(fd.picklist_values), reference_to=list(fd.reference_to))
    return replace(od, fields=fields, createable="create" in perms, updateable="edit" in perms,
                   deletable="delete" in perms, queryable=True,
                   validation_rules=list(od.validation_rules), duplicate_rules=list(od.duplicate_rules),
                   record_types=_record_types_view(od, grants))


def _record_types_view(od: ObjectDef, grants: list[Grant]) -> list[RecordType]:
    """The object's record types with `available` and `default` as this user's grants set them."""
    listed = [g.record_types[od.name.lower()] for g in grants if od.name.lower() in g.record_types]
    if not listed:
        return copy.copy(od.record_types)
    available = frozenset().union(*(names for names, _ in listed))
    default = next((d for _, d in listed if d is not None), None)
    return [replace(rt, available=rt.developer_name in available, default=rt.developer_name == default,
                    picklists=dict(rt.picklists)) for rt in od.record_types]


def _field_level(obj: str, fname: str, grants: list[Grant]) -> str:
    listed = [g.fields[obj.lower()][fname.lower()] for g in grants
              if fname.lower() in g.fields.get(obj.lower(), {})]
    level = max(listed, key=FIELD_LEVELS.index) if listed else "edit"
    return "read" if level == "none" and fname in _ALWAYS_VISIBLE else level
