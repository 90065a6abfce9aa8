"""`check` rules: risky choices (warnings) and checks against Salesforce describe (errors), each located
at the YAML path it concerns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from .loader import ConfigProblem, _positions, substitute
from .model import Action, ActionFile, Compare, FieldSpec, Mode, OnManyMatches, Operation, Policy, Transform

Describe = Callable[[str], Awaitable[dict[str, Any] | None]]  # object name → describe, or None when unknown
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
    return out


async def against_describe(source: ActionFile, describe: Describe, where: Locator) -> list[ConfigProblem]:
    """Errors (and a few warnings) from the org's describe: objects, fields, access, types, picklists."""
    out: list[ConfigProblem] = []
    for i, action in enumerate(source.actions):
        out.extend(await _check_action(action, ("actions", i), describe, where))
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
    produced = next((_TRANSFORM_TYPES[t] for t in reversed(spec.transforms) if t in _TRANSFORM_TYPES), None)
    out = []
    if produced == "number" and kind not in _NUMBER and kind not in _TEXT:
        out.append(where.problem(at, f"to_number feeds {f['name']}, a {kind} field"))
    if produced in ("date", "datetime") and kind not in ("date", "datetime") and kind not in _TEXT:
        out.append(where.problem(at, f"{produced} value feeds {f['name']}, a {kind} field"))
    if produced == "boolean" and kind != "boolean" and kind not in _TEXT:
        out.append(where.problem(at, f"to_bool feeds {f['name']}, a {kind} field"))
    value = spec.value
    if value is None:
        return out
    if kind in _NUMBER and not _is_number(value):
        out.append(where.problem(at, f"static value {value!r} is not a number for {f['name']} ({kind})"))
    elif kind == "boolean" and not isinstance(value, bool):
        out.append(where.problem(at, f"static value {value!r} is not a boolean for {f['name']}"))
    elif kind in ("picklist", "multipicklist") and f.get("restrictedPicklist"):
        allowed = {p["value"] for p in f.get("picklistValues", []) if p.get("active", True)}
        chosen = str(value).split(";") if kind == "multipicklist" else [str(value)]
        bad = [c for c in chosen if c not in allowed]
        if bad:
            out.append(where.problem(at, f"{bad[0]!r} is not an allowed value of the restricted picklist "
                                     f"{f['name']} ({sorted(allowed)})"))
    elif kind in _TEXT and isinstance(value, str) and f.get("length") and len(value) > f["length"]:
        out.append(where.problem(at, f"static value is longer than {f['name']}'s {f['length']} characters"))
    return out


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
        return [where.problem((*base, "fields"), f"a {action.operation.value} of {info['name']} needs "
                              f"{', '.join(missing)}, which no field maps")]
    return []
