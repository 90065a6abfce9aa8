"""Validate: one would-be write checked against the object's describe the way the org checks it on save,
so a preview can say `fail` with the error code the org would return. Pure: describe + values in,
the values as the org would store them and the predicted errors out.

The org of record for our tests is the bundled emulator, so the checks and their order follow what it
does (salesforce_emulator/store.py `_save`, coercion.py, validation.py), which follows Salesforce:

0. the user's object permissions (describe's createable / updateable / deletable):
   INSUFFICIENT_ACCESS_OR_READONLY, and nothing else is checked;
1. each value is resolved and coerced to its field's type: an unknown field is INVALID_FIELD; a value of
   the wrong JSON type is JSON_PARSER_ERROR (REST), a CSV cell that does not parse is
   INVALID_TYPE_ON_FIELD_IN_RECORD (Bulk);
2. fields the operation may not set (not createable on create, not updateable on update: formula and
   system fields, and fields the calling user cannot edit, since describe answers for that user) give one
   INVALID_FIELD_FOR_INSERT_UPDATE naming them all;
3. per value: STRING_TOO_LONG, INVALID_EMAIL_ADDRESS, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, and
   MALFORMED_ID for a reference that is not Id-shaped;
4. on an object with record types (describe's recordTypeInfos, and the values per record type the describe
   cache reads from the UI API): a RecordTypeId that is not an active record type of the object available
   to the user is INVALID_CROSS_REFERENCE_KEY; then the record type the write saves with (the one given, else
   the user's default on create, the record's own on update) must offer each restricted picklist value
   written (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST); an unrestricted picklist takes any value;
5. only when nothing above failed: REQUIRED_FIELD_MISSING (every required field on create; on update,
   required fields the write sets blank).

Each code is reported once per record, in that order; the first is the one an outcome carries.

Not predictable from describe, in Salesforce or the emulator: validation rules
(FIELD_CUSTOM_VALIDATION_EXCEPTION), duplicate rules (DUPLICATES_DETECTED), unique-value clashes
(DUPLICATE_VALUE), references to records that do not exist (INVALID_CROSS_REFERENCE_KEY), converted Leads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .salesforce.bulk import NULL, cell
from .salesforce.describe import ObjectDescribe
from .salesforce.ids import looks_like_id

STRING_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "multipicklist",
                          "combobox", "encryptedstring"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "long"})
_SOAP = {"double": "double", "currency": "double", "percent": "double", "int": "int", "long": "long",
         "boolean": "boolean", "date": "date", "datetime": "datetime"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


@dataclass(frozen=True)
class Problem:
    """An error the org would return for this write."""

    code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass
class Checked:
    """A write as the org would see it: the values it would store (wire format, canonical field names)
    and the errors it would return (empty: the write would succeed, as far as describe can tell)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    record_type: str | None = None  # the record type the record would have (objects with record types)

    @property
    def error(self) -> Problem | None:
        return self.errors[0] if self.errors else None


def check_write(describe: ObjectDescribe, values: Mapping[str, Any], *, creating: bool,
                preset: Mapping[str, Any] | None = None, text: bool = False,
                record_type: str | None = None) -> Checked:
    """The org's verdict on writing `values` (create when `creating`, else update). `preset` holds an
    upsert's external-ID value, which the org sets on create without checking it as a written field; `text`
    means Bulk API (values become CSV cells, where "" means not given and `#N/A` means null);
    `record_type` is an updated record's RecordTypeId, as looked up (None: not known, and the record type's
    values are not checked)."""
    out = Checked()
    denied = object_access(describe, "create" if creating else "update")
    if denied is not None:
        out.errors = [denied]
        return out
    errors: list[Problem] = []
    for name, value in values.items():
        if text:
            value = cell(value)
            if value == "":
                continue
        known = describe.field(name)
        if known is None:
            errors.append(Problem("INVALID_FIELD", f"No such column '{name}' on sobject of type {describe.name}",
                                  (name,)))
            continue
        coerced, problem = (from_text if text else from_json)(known, value)
        if problem is not None:
            errors.append(problem)
        else:
            out.values[known["name"]] = coerced
    refused = [n for n in out.values if not describe.field(n).get("createable" if creating else "updateable")]  # type: ignore[union-attr]
    if refused:
        listed = ", ".join(refused)
        errors.append(Problem("INVALID_FIELD_FOR_INSERT_UPDATE",
                              f"Unable to create/update fields: {listed}. Please check the security settings of "
                              f"this field and verify that it is read/write for your profile or permission set.",
                              tuple(refused)))
    for name, value in out.values.items():
        errors += value_problems(describe.field(name) or {}, value)
    if describe.record_types:
        out.record_type, problems = record_type_problems(describe, out.values, creating=creating,
                                                         current=record_type)
        errors += problems
    if not errors:
        errors += missing_required(describe, {**out.values, **(preset or {})}, creating=creating)
    seen: set[str] = set()
    out.errors = [e for e in errors if not (e.code in seen or seen.add(e.code))]  # type: ignore[func-returns-value]
    return out


def object_access(describe: ObjectDescribe, operation: str) -> Problem | None:
    """INSUFFICIENT_ACCESS_OR_READONLY when the calling user may not create / update / delete this object
    (describe answers for the user: its createable, updateable and deletable flags)."""
    flag = {"create": "createable", "update": "updateable", "delete": "deletable"}[operation]
    if describe.raw.get(flag, True):
        return None
    return Problem("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")


def value_problems(fd: Mapping[str, Any], value: Any) -> list[Problem]:
    """Length, e-mail, restricted-picklist and Id-shape checks of one coerced value."""
    if value is None:
        return []
    problems: list[Problem] = []
    kind, label, name = fd.get("type"), fd.get("label") or fd.get("name"), fd.get("name", "")
    length = fd.get("length") or 0
    if isinstance(value, str) and length and len(value) > length and kind not in ("id", "reference"):
        problems.append(Problem("STRING_TOO_LONG", f"{label}: data value too large: {value[:80]} "
                                f"(max length={length})", (name,)))
    if kind == "email" and isinstance(value, str) and value and not _EMAIL.match(value):
        problems.append(Problem("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", (name,)))
    if fd.get("restrictedPicklist") and kind in ("picklist", "multipicklist"):
        allowed = {p["value"] for p in fd.get("picklistValues") or () if p.get("active", True)}
        chosen = value.split(";") if kind == "multipicklist" else [value]
        if any(v not in allowed for v in chosen):
            problems.append(Problem("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                    f"{label}: bad value for restricted picklist field: {value}", (name,)))
    if kind == "reference" and not well_formed_id(str(value)):
        problems.append(Problem("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", (name,)))
    return problems


def record_type_problems(describe: ObjectDescribe, values: Mapping[str, Any], *, creating: bool,
                         current: str | None) -> tuple[str | None, list[Problem]]:
    """The record type a write saves with and the org's errors about it (step 4 above); the same rules as
    the emulator's validation.record_type_errors. A malformed RecordTypeId is MALFORMED_ID (step 3)."""
    chosen = values.get("RecordTypeId")
    if chosen is None:
        rt_id = describe.default_record_type() if creating else current
    elif not well_formed_id(str(chosen)):
        return None, []
    else:
        info = describe.record_type(str(chosen))
        if info is None or info not in describe.usable_record_types():
            return None, [Problem("INVALID_CROSS_REFERENCE_KEY",
                                  f"Record Type ID: this ID value isn't valid for the user: {chosen}",
                                  ("RecordTypeId",))]
        rt_id = str(info["recordTypeId"])
    if rt_id is None:
        return None, []
    problems = []
    for name, value in values.items():
        fd = describe.field(name) or {}
        allowed = describe.record_type_values(rt_id, name)
        if allowed is None or value is None or not fd.get("restrictedPicklist"):
            continue
        chosen_values = value.split(";") if fd.get("type") == "multipicklist" else [value]
        if any(v not in allowed for v in chosen_values):
            problems.append(Problem("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"{fd.get('label') or name}: bad "
                                    f"value for restricted picklist field: {value}", (fd.get("name", name),)))
    return rt_id, problems


def well_formed_id(value: str) -> bool:
    """An Id the org accepts as one: 15 characters, or 18 whose last 3 are the case-safe checksum."""
    return looks_like_id(value)


def required_on_create(fd: Mapping[str, Any]) -> bool:
    """Salesforce's rule: not nillable, not defaulted on create, createable, not a boolean or formula."""
    return (not fd.get("nillable", True) and not fd.get("defaultedOnCreate") and bool(fd.get("createable"))
            and fd.get("type") != "boolean" and not fd.get("calculated") and fd.get("name") != "OwnerId")


def missing_required(describe: ObjectDescribe, values: Mapping[str, Any], *, creating: bool) -> list[Problem]:
    """REQUIRED_FIELD_MISSING naming every required field left blank (on update: only those written)."""
    required = [f["name"] for f in describe.fields if required_on_create(f)]
    if not creating:
        required = [n for n in required if n in values]
    missing = [n for n in required if values.get(n) in (None, "")]
    if not missing:
        return []
    return [Problem("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                    tuple(missing))]


def new_record(describe: ObjectDescribe, values: Mapping[str, Any]) -> dict[str, Any]:
    """The record a successful create leaves: describe defaults, then the written values."""
    record: dict[str, Any] = {}
    for f in describe.fields:
        default = f.get("defaultValue")
        record[f["name"]] = default if default is not None else (False if f.get("type") == "boolean" else None)
    record.update(values)
    return record


# ----- coercion: request values → what the org stores, or the error it returns ---------------------------

def datetime_wire(moment: datetime) -> str:
    """A datetime as Salesforce returns it: UTC, milliseconds, offset without a colon."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_datetime(raw: str) -> datetime | None:
    """ISO 8601 with `Z`, `+hh:mm`, `+hhmm` or no offset (UTC); a bare date is midnight UTC."""
    text = raw.strip()
    if _DATE.match(text):
        text += "T00:00:00"
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    offset = re.search(r"([+-])(\d{2})(\d{2})$", text)
    if offset and text[-5] in "+-" and ":" not in text[-5:]:
        text = text[:-5] + f"{offset.group(1)}{offset.group(2)}:{offset.group(3)}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_error(fd: Mapping[str, Any], value: Any) -> Problem:
    kind = ("VALUE_STRING" if isinstance(value, str) else "VALUE_TRUE" if value is True else
            "VALUE_FALSE" if value is False else "START_OBJECT" if isinstance(value, dict) else
            "START_ARRAY" if isinstance(value, list) else "VALUE_NUMBER")
    return Problem("JSON_PARSER_ERROR", f"Cannot deserialize instance of {_SOAP.get(fd['type'], 'string')} from "
                   f"{kind} value {value} or request may be missing a required field", (fd["name"],))


def _text_error(fd: Mapping[str, Any], value: Any) -> Problem:
    return Problem("INVALID_TYPE_ON_FIELD_IN_RECORD",
                   f"{fd.get('label') or fd['name']}: value not of required type: {value}", (fd["name"],))


def from_json(fd: Mapping[str, Any], value: Any) -> tuple[Any, Problem | None]:
    """A JSON value for the field as the org stores it, or the error it returns."""
    kind = fd["type"]
    if value is None:
        return None, None
    if kind in STRING_TYPES or kind in ("id", "reference"):
        if isinstance(value, (bool, dict, list)):
            return None, _json_error(fd, value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value), None
    if kind == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", None
        return None, _json_error(fd, value)
    if kind in NUMBER_TYPES:
        return _number(fd, value, text=False)
    if kind in ("date", "datetime"):
        moment = parse_datetime(value) if isinstance(value, str) else None
        if moment is None:
            return None, _json_error(fd, value)
        if kind == "datetime":
            return datetime_wire(moment), None
        return (value if _DATE.match(value) else moment.date().isoformat()), None
    return value, None


def from_text(fd: Mapping[str, Any], value: str) -> tuple[Any, Problem | None]:
    """A Bulk CSV cell for the field as the org stores it (`#N/A` is null), or the row's error."""
    kind = fd["type"]
    if value == NULL:
        return None, None
    if kind in STRING_TYPES or kind in ("id", "reference"):
        return value, None
    if kind == "boolean":
        lowered = value.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE, None
        return None, _text_error(fd, value)
    if kind in NUMBER_TYPES:
        return _number(fd, value, text=True)
    if kind in ("date", "datetime"):
        moment = parse_datetime(value)
        if moment is None:
            return None, _text_error(fd, value)
        return (datetime_wire(moment) if kind == "datetime" else moment.date().isoformat()), None
    return value, None


def _number(fd: Mapping[str, Any], value: Any, *, text: bool) -> tuple[Any, Problem | None]:
    def bad() -> tuple[Any, Problem]:
        return None, (_text_error(fd, value) if text else _json_error(fd, value))

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return bad()
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return bad()
    if math.isnan(number) or math.isinf(number):
        return bad()
    if fd["type"] in ("int", "long"):
        return (int(number), None) if number.is_integer() else bad()
    return (int(number) if number.is_integer() and isinstance(value, int) else number), None
