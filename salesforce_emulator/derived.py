"""Values Salesforce sets itself on save: defaults on create, formulas, and a few standard derived flags."""

from __future__ import annotations

import re
from typing import Any

from .org import ObjectDef
from .validation import is_person_account

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_CLOSED_STAGES = {"Closed Won": True, "Closed Lost": False}


def new_record(obj: ObjectDef, record_id: str, user_id: str, now: str) -> dict[str, Any]:
    """A record with every field: system fields set, defaults applied, everything else null."""
    record: dict[str, Any] = {name: None for name in obj.fields}
    for fd in obj.fields.values():
        if fd.default_value is not None:
            record[fd.name] = fd.default_value
        elif fd.type == "boolean":
            record[fd.name] = False
    record.update(Id=record_id, IsDeleted=False, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now,
                  CreatedById=user_id, LastModifiedById=user_id)
    if "OwnerId" in record:
        record["OwnerId"] = user_id
    if obj.record_types and "RecordTypeId" in record:
        default = next((rt for rt in obj.record_types if rt.default), obj.record_types[0])
        record["RecordTypeId"] = default.id
    return record


def apply_derived(obj: ObjectDef, record: dict[str, Any]) -> None:
    """Recompute formulas and derived flags after the request's values were applied."""
    person = is_person_account(obj, record)
    if "IsPersonAccount" in record and obj.name == "Account":
        record["IsPersonAccount"] = person
        if person:
            record["Name"] = _join(record.get("FirstName"), record.get("LastName"))
    for fd in obj.fields.values():
        if fd.formula:
            record[fd.name] = _formula(fd.formula, record)
    if obj.name == "Case" and "IsClosed" in record:
        record["IsClosed"] = record.get("Status") == "Closed"
    if obj.name == "Opportunity" and "IsClosed" in record:
        stage = record.get("StageName")
        record["IsClosed"] = stage in _CLOSED_STAGES
        record["IsWon"] = _CLOSED_STAGES.get(stage, False)
    if "Name" in record and record["Name"] is None and obj.fields["Name"].defaulted_on_create:
        record["Name"] = record["Id"]  # auto-named custom objects show the Id when no name was given


def _formula(template: str, record: dict[str, Any]) -> str | None:
    text = _PLACEHOLDER.sub(lambda m: str(record.get(m.group(1)) or ""), template)
    text = " ".join(text.split())
    return text or None


def _join(*parts: Any) -> str | None:
    text = " ".join(str(p) for p in parts if p)
    return text or None
