"""`check` rules: risky choices (warnings) and checks against Salesforce describe (errors), each located
at the YAML path it concerns."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from .loader import ConfigProblem, _positions, substitute
from .model import (
    Action,
    ActionFile,
    Compare,
    FieldSpec,
    Mode,
    OnManyMatches,
    OnMissing,
    Operation,
    Policy,
    Transform,
    TransformCall,
)
from .values import ValueProblem, moment_of, to_number

# object name → describe, or None when unknown; an object with record types also carries RECORD_TYPE_VALUES
Describe = Callable[[str], Awaitable[dict[str, Any] | None]]
RECORD_TYPE_VALUES = "recordTypePicklistValues"  # record type Id (15) → field (lower case) → its values there
_NUMBER = {"double", "currency", "percent", "int", "long"}
_TEXT = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "id", "reference"}
_TRANSFORM_TYPES = {Transform.TO_NUMBER: "number", Transform.TO_BOOL: "boolean", Transform.TO_DATE: "date",
                    Transform.TO_DATETIME: "datetime"}


class Locator:
    """YAML path → (line, column) for one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        try:
            node = yaml.compose(substitute(Path(file).read_text()))
            self._positions = _positions(node) if node is not None else {}
        except (OSError, yaml.YAMLError):
            self._positions = {}

    def problem(self, path: tuple[Any, ...], message: str, severity: str = "error") -> ConfigProblem:
        probe = path
        while probe and probe not in self._positions:
            probe = probe[:-1]
        line, column = self._positions.get(probe, (None, None))
        text = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")
        return ConfigProblem(self.file, line, column, text, message, severity)


def risky_choices(source: ActionFile, where: Locator) -> list[ConfigProblem]:
    """Warnings for choices that work but often hurt."""
    out = []
    for i, action in enumerate(source.actions):
        base: tuple[Any, ...] = ("actions", i)
        if action.on_many_matches is OnManyMatches.ALL and action.operation in (Operation.UPDATE, Operation.UPSERT,
                                                                               Operation.DELETE):
            out.append(where.problem((*base, "on_many_matches"), "on_many_matches: all writes every record a "
                                     "matcher finds; with a non-unique matcher one event can change many records",
                                     "warning"))
        if action.mode is Mode.BULK and action.on_duplicate == "update_existing":
            out.append(where.problem((*base, "on_duplicate"), "on_duplicate: update_existing needs mode rest: Bulk "
                                     "results carry no matched record Ids, so duplicates stay failed", "warning"))
        if action.mode is Mode.BULK and action.operation is Operation.DELETE:
            out.append(where.problem((*base, "mode"), "bulk deletes are not reversible per event and run "
                                     "minutes later; prefer rest for deletes", "warning"))
        for name, spec in action.field_specs().items():
            if spec.policy is Policy.ALWAYS and spec.path is not None:
                out.append(where.problem((*base, "fields", name), f"policy always: a blank {spec.path} clears "
                                         f"{name} in Salesforce", "warning"))
            out.extend(_overwrite_risks(action, name, spec, (*base, "fields", name), where))
            out.extend(_slow_patterns(spec, (*base, "fields", name), where))
        if action.operation is Operation.CREATE and action.match is None and not action.idempotency_field:
            out.append(where.problem((*base, "idempotency_field"), "a create with neither `match` nor `idempotency_field` "
                                     "cannot be looked up when its answer is lost (timeout, 5xx, crash): such an "
                                     "event ends failed UNRESOLVED_CREATE instead of being reconciled; add "
                                     "idempotency_field (a text or external ID field)", "warning"))
        if (action.operation in (Operation.CREATE, Operation.UPSERT) and not action.fields and not action.fields_from
                and not action.lookups):
            out.append(where.problem((*base, "fields"), f"this {action.operation.value} maps no fields: every "
                                     f"event creates an empty {action.object} record", "warning"))
    return out


_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")


def _slow_patterns(spec: FieldSpec, at: tuple[Any, ...], where: Locator) -> list[ConfigProblem]:
    """A replace pattern with a repeated group that itself repeats (`(a+)+`) can take exponential time on
    crafted input, and event text is written by whoever holds a (public) write key."""
    return [where.problem(at, f"replace pattern {step.replace.pattern!r} repeats a repeating group: crafted input "
                          "can make it take exponential time; rewrite it without nested repetition", "warning")
            for step in spec.transforms
            if isinstance(step, TransformCall) and step.replace and _NESTED_QUANTIFIER.search(step.replace.pattern)]


def _overwrite_risks(action: Action, name: str, spec: FieldSpec, at: tuple[Any, ...],
                     where: Locator) -> list[ConfigProblem]:
    """Warnings where a default or a template can replace real data in Salesforce."""
    out = []
    if spec.default is not None and spec.policy is Policy.ALWAYS:
        out.append(where.problem(at, f"policy always with a default: whenever an event lacks a value, "
                                 f"{spec.default!r} replaces the value {name} holds in Salesforce", "warning"))
    template = spec.template
    if (template is not None and template.count("{{") > 1 and spec.on_missing is OnMissing.BLANK
            and action.operation in (Operation.UPDATE, Operation.UPSERT) and spec.policy is not Policy.SET_IF_EMPTY):
        out.append(where.problem(at, f"the template has {template.count('{{')} placeholders: when some (not all) "
                                 f"are missing it is written with gaps over {name}'s value; use on_missing: error "
                                 "or policy: set_if_empty", "warning"))
    return out


async def against_describe(source: ActionFile, describe: Describe, where: Locator) -> list[ConfigProblem]:
    """Errors (and a few warnings) from the org's describe: objects, fields, access, types, picklists."""
    out: list[ConfigProblem] = []
    for i, action in enumerate(source.actions):
        out.extend(await _check_action(action, ("actions", i), describe, where))
    for i, spec in enumerate(source.sync_back.objects if source.sync_back else []):
        base = ("sync_back", "objects", i)
        info = await describe(spec.object)
        if info is None:
            out.append(where.problem((*base, "object"), f"object {spec.object} does not exist in the org (or the "
                                     "connection's user cannot see it)"))
            continue
        known = {f["name"].lower() for f in info.get("fields", [])}
        named = [(("id_field",), spec.id_field), *((("fields", n), n) for n in spec.rules())]
        out += [where.problem((*base, *at), f"{spec.object} has no field {name} (or the connection's user cannot "
                              "see it)") for at, name in named if name.lower() not in known]
    return out


async def _check_action(action: Action, base: tuple[Any, ...], describe: Describe,
                        where: Locator) -> list[ConfigProblem]:
    info = await describe(action.object)
    if info is None:
        return [where.problem((*base, "object"), f"object {action.object} does not exist in the org (or the "
                              "connection's user cannot see it)")]
    fields = {f["name"].lower(): f for f in info.get("fields", [])}
    out: list[ConfigProblem] = _object_access_problems(action, info, base, where)
    op = action.operation
    for name, spec in action.field_specs().items():
        f = fields.get(name.lower())
        at = (*base, "fields", name)
        if f is None:
            out.append(where.problem(at, f"{action.object} has no field {name} (or the connection's user "
                                     "cannot see it)"))
            continue
        out.extend(_field_access_problems(action, f, at, where))
        out.extend(_type_problems(action, f, spec, at, where))
    for j, spread in enumerate(action.spreads()):
        at = (*base, "fields_from") if not isinstance(action.fields_from, list) else (*base, "fields_from", j)
        for key, target in spread.rename.items():
            if target.lower() not in fields:
                out.append(where.problem((*at, "rename", key), f"rename target {target} is not a field of "
                                         f"{action.object}"))
        renamed = {v.lower() for v in spread.rename.values()} | {k.lower() for k in spread.rename}
        for allowed in spread.allow or []:
            if allowed.lower() not in fields and allowed.lower() not in renamed:
                out.append(where.problem((*at, "allow"), f"allow lists {allowed}, which is not a field of "
                                         f"{action.object}: that key would be dropped", "warning"))
    if action.match is not None:
        matchers = action.match.fields()
        for name, spec in matchers:
            f = fields.get(name.lower())
            at = (*base, "match")
            if f is None:
                out.append(where.problem(at, f"matcher field {name} does not exist on {action.object}"))
            elif not f["filterable"]:
                out.append(where.problem(at, f"matcher field {action.object}.{f['name']} is not filterable"))
            elif spec.compare is Compare.DOMAIN and f["type"] not in ("url", "string", "email"):
                out.append(where.problem(at, f"domain matching needs a text field; {f['name']} is {f['type']}"))
        if (action.on_many_matches is OnManyMatches.ALL and len(matchers) == 1
                and (fields.get(matchers[0][0].lower()) or {}).get("unique") is False):
            out.append(where.problem((*base, "match"), f"{matchers[0][0]} is not unique and on_many_matches is all",
                                     "warning"))
    out.extend(_record_type_problems(action, info, fields, base, where))
    if op in (Operation.CREATE, Operation.UPSERT):
        out.extend(_required_problems(action, info, fields, base, where))
    if action.idempotency_field:  # written on create and looked up by after an unknown fate
        f = fields.get(action.idempotency_field.lower())
        at = (*base, "idempotency_field")
        if f is None or f["type"] not in ("string", "textarea") or not f["createable"] or not f["filterable"]:
            out.append(where.problem(at, f"idempotency_field {action.object}.{action.idempotency_field} must be a "
                                     "createable, filterable text field"))
        elif not f.get("unique") and not f.get("externalId"):
            out.append(where.problem(at, f"{action.object}.{f['name']} is not unique: an external ID (unique) "
                                     "makes a second create of the same event fail instead of duplicating",
                                     "warning"))
    for ref_field, lookup in action.lookups.items():
        f = fields.get(ref_field.lower())
        at = (*base, "lookups", ref_field)
        if f is None or f["type"] != "reference":
            out.append(where.problem(at, f"{action.object}.{ref_field} is not a reference field"))
            continue
        parent = await describe(lookup.object)
        if parent is None:
            out.append(where.problem((*at, "object"), f"object {lookup.object} does not exist in the org"))
            continue
        if lookup.object.lower() not in [r.lower() for r in f.get("referenceTo", [])]:
            out.append(where.problem((*at, "object"), f"{ref_field} refers to {f.get('referenceTo')}, "
                                     f"not {lookup.object}"))
        parent_fields = {p["name"].lower(): p for p in parent.get("fields", [])}
        for name, _ in lookup.match.fields():
            p = parent_fields.get(name.lower())
            if p is None or not p["filterable"]:
                out.append(where.problem((*at, "match"), f"{lookup.object}.{name} does not exist or is not filterable"))
    if action.record_type:
        known = {r.get("recordTypeId") for r in info.get("recordTypeInfos", [])}
        if action.record_type not in known:
            out.append(where.problem((*base, "record_type"), f"record type {action.record_type} is not one of "
                                     f"{action.object}'s"))
    return out


_NEEDS = {Operation.CREATE: ("createable",), Operation.UPDATE: ("updateable",),
          Operation.UPSERT: ("createable", "updateable"), Operation.DELETE: ("deletable",)}
_VERB = {"createable": "create", "updateable": "update", "deletable": "delete"}


def _object_access_problems(action: Action, info: dict[str, Any], base: tuple[Any, ...],
                            where: Locator) -> list[ConfigProblem]:
    """The connection's user lacks an object permission the operation needs (describe is theirs): an error
    when every write fails, a warning when only an upsert's creates or its updates do."""
    needs = _NEEDS[action.operation]
    missing = [flag for flag in needs if info.get(flag) is False]
    if not missing:
        return []
    verbs = " or ".join(_VERB[m] for m in missing)
    message = (f"the connection's user may not {verbs} {action.object} records (object permission): "
               f"those writes fail with INSUFFICIENT_ACCESS_OR_READONLY")
    return [where.problem((*base, "operation"), message, "warning" if len(missing) < len(needs) else "error")]


def _field_access_problems(action: Action, f: dict[str, Any], at: tuple[Any, ...],
                           where: Locator) -> list[ConfigProblem]:
    """A field the connection's user cannot write for this operation (a read-only field, or the profile's
    field-level security): an error when every write of the action fails on it, a warning when only the
    creates or only the updates of an upsert do."""
    needs = [flag for flag in _NEEDS[action.operation] if flag != "deletable"]
    missing = [flag for flag in needs if not f.get(flag, True)]
    if not missing:
        return []
    name = f"{action.object}.{f['name']}"
    if len(missing) < len(needs):
        part = "creates" if missing[0] == "createable" else "updates"
        return [where.problem(at, f"{name} is not {missing[0]} for the connection's user: the {part} of this "
                              "upsert fail with INVALID_FIELD_FOR_INSERT_UPDATE", "warning")]
    return [where.problem(at, f"{name} is not {' or '.join(missing)} for the connection's user (read-only, "
                          "or field-level security): every write fails with INVALID_FIELD_FOR_INSERT_UPDATE")]


def _type_problems(action: Action, f: dict[str, Any], spec: FieldSpec, at: tuple[Any, ...],
                   where: Locator) -> list[ConfigProblem]:
    kind = f["type"]
    produced = next((_TRANSFORM_TYPES[t] for t in reversed(spec.transforms)
                     if isinstance(t, Transform) and t in _TRANSFORM_TYPES), None)
    out = []
    if produced == "number" and kind not in _NUMBER and kind not in _TEXT:
        out.append(where.problem(at, f"to_number feeds {f['name']}, a {kind} field"))
    if produced in ("date", "datetime") and kind not in ("date", "datetime") and kind not in _TEXT:
        out.append(where.problem(at, f"{produced} value feeds {f['name']}, a {kind} field"))
    if produced == "boolean" and kind != "boolean" and kind not in _TEXT:
        out.append(where.problem(at, f"to_bool feeds {f['name']}, a {kind} field"))
    statics = [("static value", spec.value)] if spec.value is not None else []
    if spec.default is not None and not (isinstance(spec.default, str) and "{{" in spec.default):
        statics.append(("default", spec.default))
    for label, value in statics:
        out.extend(_static_problems(label, value, f, at, where))
    return out


def _static_problems(label: str, value: Any, f: dict[str, Any], at: tuple[Any, ...],
                     where: Locator) -> list[ConfigProblem]:
    """A value written in the action file that the field's type cannot take (the org would refuse every event)."""
    kind = f["type"]
    out = []
    if kind in _NUMBER and not _is_number(value):
        out.append(where.problem(at, f"{label} {value!r} is not a number for {f['name']} ({kind})"))
    elif kind in _NUMBER and not _fits_digits(value, f):
        out.append(where.problem(at, f"{label} {value!r} is beyond what {f['name']} ({kind}) holds"))
    elif kind == "boolean" and not isinstance(value, bool):
        out.append(where.problem(at, f"{label} {value!r} is not a boolean for {f['name']}"))
    elif kind in ("date", "datetime") and not _is_moment(value, kind):
        form = "YYYY-MM-DD" if kind == "date" else "an ISO 8601 date-time such as 2026-12-01T09:30:00Z"
        out.append(where.problem(at, f"{label} {value!r} is not a {kind} for {f['name']} (write {form})"))
    elif kind in ("picklist", "multipicklist") and f.get("restrictedPicklist"):
        allowed = {p["value"] for p in f.get("picklistValues", []) if p.get("active", True)}
        chosen = str(value).split(";") if kind == "multipicklist" else [str(value)]
        bad = [c for c in chosen if c not in allowed]
        if bad:
            out.append(where.problem(at, f"{bad[0]!r} is not an allowed value of the restricted picklist "
                                     f"{f['name']} ({sorted(allowed)})"))
    elif kind in _TEXT and isinstance(value, str) and f.get("length") and len(value) > f["length"]:
        out.append(where.problem(at, f"{label} is longer than {f['name']}'s {f['length']} characters"))
    return out


def _record_type_problems(action: Action, info: dict[str, Any], fields: dict[str, dict[str, Any]],
                          base: tuple[Any, ...], where: Locator) -> list[ConfigProblem]:
    """An action that sets RecordTypeId statically (`record_type:` or a static field value): the record type
    must be one the user may use, and each static picklist value should be among that record type's values
    (a restricted picklist's other values fail with INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST; an unrestricted
    one takes them, off the record type's list)."""
    specs = {name.lower(): (name, spec) for name, spec in action.field_specs().items()}
    chosen = specs.get("recordtypeid")
    if "recordtypeid" not in fields:
        return []
    if action.record_type:  # `record_type:` (one not of the object at all is reported with the lookups)
        rt_id, at = action.record_type, (*base, "record_type")
    elif chosen is not None and chosen[1].value is not None:
        rt_id, at = str(chosen[1].value), (*base, "fields", chosen[0])
    else:
        return []
    infos = [rt for rt in info.get("recordTypeInfos") or () if not rt.get("master")]
    rt = next((r for r in infos if str(r.get("recordTypeId", ""))[:15] == rt_id[:15]), None)
    if rt is None and action.record_type:
        return []
    if rt is None or not (rt.get("active", True) and rt.get("available")):
        return [where.problem(at, f"RecordTypeId {rt_id} is not an active record type of {action.object} available "
                              "to the connection's user: every write fails with INVALID_CROSS_REFERENCE_KEY")]
    values = (info.get(RECORD_TYPE_VALUES) or {}).get(rt_id[:15]) or {}
    out = []
    for lowered, (name, spec) in specs.items():
        f, offered = fields.get(lowered), values.get(lowered)
        if f is None or offered is None or f["type"] not in ("picklist", "multipicklist"):
            continue
        for label, value in (("static value", spec.value), ("default", spec.default)):
            chosen_values = str(value).split(";") if f["type"] == "multipicklist" else [str(value)]
            bad = [c for c in chosen_values if c not in offered] if value is not None else []
            if bad:
                effect = ("those writes fail with INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" if f.get("restrictedPicklist")
                          else "the org takes it (the picklist is unrestricted), off the record type's list")
                out.append(where.problem((*base, "fields", name), f"{label} {bad[0]!r} of {f['name']} is not "
                                         f"offered by record type {rt.get('developerName')} ({sorted(offered)}): "
                                         f"{effect}", "warning"))
    return out


def _is_moment(value: Any, kind: str) -> bool:
    if not isinstance(value, str):
        return False
    shape = r"\d{4}-\d{2}-\d{2}" if kind == "date" else r"\d{4}-\d{2}-\d{2}[Tt ].+"
    if not re.fullmatch(shape, value.strip()):
        return False
    try:
        moment_of(value)
    except ValueProblem:
        return False
    return True


def _fits_digits(value: Any, f: dict[str, Any]) -> bool:
    try:
        number = to_number(value)
    except ValueProblem:
        return False
    if f["type"] in ("int", "long"):
        digits = f.get("digits") or 18
    else:
        digits = (f.get("precision") or 18) - (f.get("scale") or 0)
    return abs(number) < 10 ** max(digits, 0)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _required_problems(action: Action, info: dict[str, Any], fields: dict[str, dict[str, Any]], base: tuple[Any, ...],
                       where: Locator) -> list[ConfigProblem]:
    mapped = {n.lower() for n in action.fields} | {n.lower() for n in action.lookups}
    for spread in action.spreads():
        mapped |= {v.lower() for v in spread.rename.values()} | {a.lower() for a in spread.allow or []}
    open_spread = any(spread.allow is None for spread in action.spreads())
    if action.record_type:
        mapped.add("recordtypeid")
    person = bool(action.record_type) and "lastname" in mapped and "ispersonaccount" in fields
    missing = []
    for f in fields.values():
        required = (not f["nillable"] and not f["defaultedOnCreate"] and f["createable"] and f["type"] != "boolean")
        if person and f["name"] == "Name":
            continue
        if required and f["name"].lower() not in mapped:
            missing.append(f["name"])
    if (missing and action.operation is Operation.CREATE) or (missing and action.operation is Operation.UPSERT):
        if open_spread:  # the spread object may carry them; only the events can tell
            return [where.problem((*base, "fields"), f"a {action.operation.value} of {info['name']} needs "
                                  f"{', '.join(missing)}, which only fields_from can supply", "warning")]
        return [where.problem((*base, "fields"), f"a {action.operation.value} of {info['name']} needs "
                              f"{', '.join(missing)}, which no field maps")]
    return []
