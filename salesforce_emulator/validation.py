"""Record-level checks Salesforce runs on save: field access, lengths, formats, picklists, required
fields, validation rules and duplicate rules. Pure functions over an object definition and a record."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import SfError
from .ids import is_well_formed
from .org import Condition, FieldDef, ObjectDef, RecordType

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def field_access_errors(obj: ObjectDef, names: Iterable[str], *, creating: bool) -> list[SfError]:
    """INVALID_FIELD_FOR_INSERT_UPDATE for fields the operation may not set (one error naming them all)."""
    refused = [n for n in names if not (obj.fields[n].createable if creating else obj.fields[n].updateable)]
    if not refused:
        return []
    listed = ", ".join(refused)
    return [SfError("INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {listed}. Please check the security settings of this "
                    f"field and verify that it is read/write for your profile or permission set.",
                    tuple(refused))]


def value_errors(fd: FieldDef, value: Any) -> list[SfError]:
    """Length, e-mail format and restricted-picklist checks of one coerced value."""
    if value is None:
        return []
    errors: list[SfError] = []
    if isinstance(value, str) and fd.length and len(value) > fd.length and fd.type not in ("id", "reference"):
        errors.append(SfError("STRING_TOO_LONG",
                              f"{fd.label}: data value too large: {value[:80]} (max length={fd.length})",
                              (fd.name,)))
    if fd.type == "email" and isinstance(value, str) and value and not _EMAIL_RE.match(value):
        errors.append(SfError("INVALID_EMAIL_ADDRESS", f"{fd.label}: invalid email address: {value}", (fd.name,)))
    if fd.restricted_picklist and fd.type in ("picklist", "multipicklist"):
        allowed = {p.value for p in fd.picklist_values if p.active}
        chosen = value.split(";") if fd.type == "multipicklist" else [value]
        if any(v not in allowed for v in chosen):
            errors.append(SfError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                  f"{fd.label}: bad value for restricted picklist field: {value}", (fd.name,)))
    return errors


def invalid_record_type(value: str) -> SfError:
    """The error of a RecordTypeId that is not an active record type of the object available to the user."""
    return SfError("INVALID_CROSS_REFERENCE_KEY", f"Record Type ID: this ID value isn't valid for the user: {value}",
                   ("RecordTypeId",))


def record_type_errors(seen: ObjectDef, given: dict[str, Any], *, creating: bool,
                       current: str | None) -> tuple[RecordType | None, list[SfError]]:
    """The record type a write saves with and its errors, for an object with record types (`seen`: the object
    as the user sees it, so `available` and `default` are theirs). A given RecordTypeId must be an active
    record type of this object available to the user (INVALID_CROSS_REFERENCE_KEY); without one a create gets
    the user's default and an update keeps the record's (`current`). A restricted picklist's value written
    must then be among the record type's values (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST); an unrestricted
    picklist takes any value through the API, as Salesforce's does (record type values limit the UI only).
    A malformed RecordTypeId is MALFORMED_ID, reported with the other references.

    Sources: a record type that does not allow a restricted picklist's value fails the write with
    INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (https://gearset.com/blog/data-deployments-and-picklist-errors/);
    an unrestricted picklist accepts any string at the API level
    (https://salesforcedictionary.com/errors/invalid-or-null-for-restricted-picklist). The record type error's
    message is the one integrations commonly report; no documentation page for it was found (gearset's
    INVALID_CROSS_REFERENCE_KEY article lists "the record type Id is not a valid record type id for the
    object" and "a user who does not have profile access to the record type" as causes)."""
    chosen = given.get("RecordTypeId")
    if chosen is None:
        rt = seen.default_record_type() if creating else seen.record_type(current) if current else None
    elif not is_well_formed(chosen):
        return None, []
    else:
        rt = seen.record_type(chosen)
        if rt is None or not (rt.active and rt.available):
            return None, [invalid_record_type(chosen)]
    if rt is None:
        return None, []
    errors = []
    for name, value in given.items():
        fd = seen.fields.get(name)
        allowed = rt.picklists.get(name)
        if fd is None or allowed is None or value is None or not fd.restricted_picklist:
            continue
        chosen_values = value.split(";") if fd.type == "multipicklist" else [value]
        if any(v not in allowed for v in chosen_values):
            errors.append(SfError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                  f"{fd.label}: bad value for restricted picklist field: {value}", (fd.name,)))
    return rt, errors


def required_fields(obj: ObjectDef, record: dict[str, Any]) -> list[str]:
    """Fields required on this record (Person Accounts need LastName instead of Name)."""
    person = is_person_account(obj, record)
    names = [f.name for f in obj.fields.values() if f.required_on_create and f.name != "OwnerId"]
    if person:
        names = [n for n in names if n != "Name"] + ["LastName"]
    return names


def missing_required(obj: ObjectDef, record: dict[str, Any], names: Iterable[str] | None = None) -> list[SfError]:
    """REQUIRED_FIELD_MISSING naming every required field that is null or blank (among `names` when given)."""
    required = required_fields(obj, record)
    if names is not None:
        wanted = set(names)
        required = [n for n in required if n in wanted]
    missing = [n for n in required if record.get(n) is None or record.get(n) == ""]
    if not missing:
        return []
    return [SfError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                    tuple(missing))]


def is_person_account(obj: ObjectDef, record: dict[str, Any]) -> bool:
    """True when the record's record type is a person-account type."""
    rt_id = record.get("RecordTypeId")
    return any(rt.person and rt.id == rt_id for rt in obj.record_types)


def rule_errors(obj: ObjectDef, record: dict[str, Any]) -> list[SfError]:
    """FIELD_CUSTOM_VALIDATION_EXCEPTION for every active validation rule whose condition holds."""
    return [SfError("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message,
                    (rule.error_field,) if rule.error_field else ())
            for rule in obj.validation_rules if rule.active and holds(rule.condition, record)]


def holds(cond: Condition, record: dict[str, Any]) -> bool:
    """Evaluate a declarative condition against a record."""
    if cond.all:
        return all(holds(c, record) for c in cond.all)
    if cond.any:
        return any(holds(c, record) for c in cond.any)
    value = record.get(cond.field or "")
    blank = value is None or value == ""
    op = cond.op
    if op == "blank":
        return blank
    if op == "not_blank":
        return not blank
    if op == "eq":
        return value == cond.value
    if op == "ne":
        return value != cond.value
    if op in ("contains", "not_contains"):
        found = not blank and str(cond.value).lower() in str(value).lower()
        return found if op == "contains" else not found
    if blank:
        return False
    try:
        if op == "gt":
            return value > cond.value
        if op == "lt":
            return value < cond.value
        if op == "ge":
            return value >= cond.value
        if op == "le":
            return value <= cond.value
    except TypeError:
        return False
    raise ValueError(f"unknown condition op {op!r}")


def duplicate_rule_error(obj: ObjectDef, record: dict[str, Any],
                         candidates: Iterable[dict[str, Any]]) -> SfError | None:
    """DUPLICATES_DETECTED when a blocking duplicate rule matches another record (with its Id, as Salesforce
    reports in duplicateResult)."""
    for rule in obj.duplicate_rules:
        if not rule.active or rule.allow_save:
            continue
        keys = [_norm(record.get(f)) for f in rule.match_fields]
        if any(k is None for k in keys):
            continue
        matches = [c for c in candidates if c["Id"] != record.get("Id")
                   and [_norm(c.get(f)) for f in rule.match_fields] == keys]
        if matches:
            return SfError("DUPLICATES_DETECTED", rule.message, (), {"duplicateResult": {
                "allowSave": False, "duplicateRule": rule.name, "duplicateRuleEntityType": obj.name,
                "errorMessage": rule.message,
                "matchResults": [{"entityType": obj.name, "errors": [], "matchEngine": "ExactMatchEngine",
                                  "rule": rule.name, "success": True, "size": len(matches),
                                  "matchRecords": [{"additionalInformation": [], "fieldDiffs": [],
                                                    "matchConfidence": 100.0,
                                                    "record": {"attributes": {"type": obj.name}, "Id": m["Id"]}}
                                                   for m in matches]}]}})
    return None


def _norm(value: Any) -> Any:
    if value is None or value == "":
        return None
    return value.strip().lower() if isinstance(value, str) else value
