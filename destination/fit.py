"""Fit: mapped operations against the object's describe, before planning. Pure: the describe is passed in.

Mapping cannot know the org, so what depends on it is settled here, the same way for `run` and `preview`:
keys spread from `fields_from` that the object does not have (or the operation cannot write) are left out
with a warning; text longer than its field is cut to the field's length with a warning; a number beyond
what its field can hold fails that one event with MAPPING_ERROR instead of reaching Salesforce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .actions.model import Operation
from .actions.values import MAX_INTEGER_DIGITS, NumberOutOfRange, ValueProblem, to_number
from .operations import FieldValue, RecordOp
from .outcomes import Outcome
from .salesforce.describe import ObjectDescribe

# Text a cut leaves meaningful; a cut e-mail, URL, phone number, Id or picklist value would be wrong data,
# so those stay as they are and Salesforce answers STRING_TOO_LONG.
TRUNCATED_TYPES = frozenset({"string", "textarea", "encryptedstring"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "long"})


def fit_to_describe(ops: Sequence[RecordOp], describe: ObjectDescribe) -> tuple[list[RecordOp], list[Outcome]]:
    """Operations fitted to the object's fields, and failed outcomes for those whose numbers do not fit."""
    kept: list[RecordOp] = []
    failed: list[Outcome] = []
    known: dict[str, dict[str, Any] | None] = {}  # describe.field per name, looked up once per batch
    for op in ops:
        try:
            kept.append(op if _as_is(op, describe, known) else _fit(op, describe, known))
        except NumberOutOfRange as exc:
            failed.append(Outcome.failed(op.event, "MAPPING_ERROR", f"source {op.source}, action {op.action}: {exc}",
                                         (exc.field,), action=op.action, object=op.object,
                                         operation=op.operation.value))
    return kept, failed


def _as_is(op: RecordOp, describe: ObjectDescribe, known: dict[str, dict[str, Any] | None]) -> bool:
    """Whether fitting leaves the op as it is (no key left out, no text cut), checked without copying it
    (the usual case); a number that does not fit raises here as in _fit."""
    for name, fv in op.fields.items():
        f = known[name] if name in known else known.setdefault(name, describe.field(name))
        if fv.spread and (f is None or not _writable(f, op.operation)):
            return False
        if f is None or (value := fv.value) is None:
            continue
        kind = f.get("type")
        if kind in NUMBER_TYPES:
            if not isinstance(value, bool):
                _check_range(value, f, describe.name)
        elif fv.truncate and kind in TRUNCATED_TYPES and isinstance(value, str):
            length = f.get("length") or 0
            if length and len(value) > length:
                return False
    return True


def _fit(op: RecordOp, describe: ObjectDescribe, known: dict[str, dict[str, Any] | None]) -> RecordOp:
    fields: dict[str, FieldValue] = {}
    warnings = list(op.warnings)
    changed = False
    for name, fv in op.fields.items():
        f = known[name] if name in known else known.setdefault(name, describe.field(name))
        if fv.spread and (f is None or not _writable(f, op.operation)):
            why = "has no field" if f is None else "cannot write the field"
            warnings.append(f"fields_from: {describe.name} {why} {name}; left out")
            changed = True
            continue
        if f is None or fv.value is None:
            fields[name] = fv
            continue
        value = _fitted(fv.value, f, describe.name, warnings, cut=fv.truncate)
        if value is not fv.value:
            fv = replace(fv, value=value)
            changed = True
        fields[name] = fv
    if not changed and len(warnings) == len(op.warnings):
        return op
    return replace(op, fields=fields, warnings=tuple(warnings))


def _writable(f: dict[str, Any], operation: Operation) -> bool:
    if operation is Operation.CREATE:
        return bool(f.get("createable"))
    if operation is Operation.UPDATE:
        return bool(f.get("updateable"))
    return bool(f.get("createable") or f.get("updateable"))


def _fitted(value: Any, f: dict[str, Any], object_name: str, warnings: list[str], *, cut: bool) -> Any:
    kind = f.get("type")
    length = f.get("length") or 0
    if cut and kind in TRUNCATED_TYPES and isinstance(value, str) and length and len(value) > length:
        warnings.append(f"{f['name']} cut to its {length} characters (the value had {len(value)})")
        return value[:length]
    if kind in NUMBER_TYPES and not isinstance(value, bool):
        _check_range(value, f, object_name)
    return value


def _check_range(value: Any, f: dict[str, Any], object_name: str) -> None:
    """A number (or numeric text) whose integer part has more digits than the field holds is refused."""
    if isinstance(value, str):
        try:
            number: float | int = to_number(value)
        except NumberOutOfRange as exc:
            raise NumberOutOfRange(f"field {f['name']}: {exc}", f["name"]) from None
        except ValueProblem:
            return  # not a number at all: Salesforce's own error names it
    elif isinstance(value, (int, float)):
        number = value
    else:
        return
    if f.get("type") in ("int", "long"):
        digits = f.get("digits") or MAX_INTEGER_DIGITS
    else:
        precision = f.get("precision") or MAX_INTEGER_DIGITS
        digits = max(precision - (f.get("scale") or 0), 0)
    if abs(number) >= 10 ** digits:
        raise NumberOutOfRange(f"field {f['name']}: {number!r} is beyond what {object_name}.{f['name']} holds "
                               f"({digits} digits before the decimal point)", f["name"])
