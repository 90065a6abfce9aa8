"""Map, compiled: each action becomes one generated Python function, and each source one routing function
that tests every trigger inline — built once from the validated action file, then called per event.

They return exactly what destination/mapping.py (the reference: the same steps as closures and per-field
calls) returns for the same event — fields, warnings, matchers, lookups, failures and their messages — which
tests/actions/test_mapgen.py checks property by property against the reference. What is rare stays a call
into the reference's own helpers (fields_from spreads, sync_back direction rules, most transforms).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from .actions.codegen import Reads, Source, assign, construct, is_blank, trigger
from .actions.model import Action, ActionFile, FieldSpec, MatchGroup, OnMissing, Policy, Transform
from .actions.trigger import parse
from .actions.values import (
    _PLACEHOLDER,
    _SIMPLE,
    ValueProblem,
    _show,
    _text,
    _writable,
    apply_transform,
    domain_of,
)
from .events import Event
from .kinds import Compare
from .mapping import _FLOAT_MAX, _directed, _Fail, _spread
from .mapping import map_event as reference_map_event
from .operations import FieldValue, Lookup, Matcher, MatchTree, RecordOp
from .outcomes import Outcome

Mapper = Callable[[Event, dict[str, Any]], RecordOp | Outcome]
_INLINE = {Transform.LOWERCASE: "lower", Transform.UPPERCASE: "upper", Transform.TRIM: "strip"}


@dataclass(frozen=True)
class SourcePlan:
    """One source's actions, compiled: `route(event, body)` runs every action whose trigger matches, in
    order; `actions` has each one's (name, trigger, mapper) for runs limited to some actions."""

    source: ActionFile
    route: Callable[[Event, dict[str, Any]], list[RecordOp | Outcome]]
    actions: tuple[tuple[str, Callable[[dict[str, Any]], bool], Mapper], ...]

    def run(self, event: Event, only: Collection[str] | None = None) -> list[RecordOp | Outcome]:
        """The results of the actions (all, or those named in `only`) whose trigger matches the event."""
        if only is None:
            return self.route(event, event.body)
        return [mapper(event, event.body) for name, when, mapper in self.actions
                if name in only and when(event.body)]


def plan_of(source: ActionFile) -> SourcePlan:
    """The compiled plan of a source (built on first use and kept on the model, like its other caches)."""
    plan: SourcePlan | None = source.__dict__.get("_plan")
    if plan is None or plan.source is not source:
        plan = source.__dict__["_plan"] = _plan(source)
    return plan


def map_event(source: ActionFile, action: Action, event: Event) -> RecordOp | Outcome:
    """mapping.map_event, compiled: the operation this action asks for this event, or the failed outcome."""
    cached = action.__dict__.get("_mapper")
    if cached is None or cached[0] is not source:
        cached = action.__dict__["_mapper"] = (source, compile_action(source, action))
    if not isinstance(event.body, dict):  # not an object: routing refuses those, so only a direct call meets one
        return reference_map_event(source, action, event)
    return cached[1](event, event.body)


def key_plan(source: ActionFile, names: frozenset[str]) -> SourcePlan:
    """The source's plan with the actions in `names` mapped as far as batching reads (compile_action with
    fields=False: their ops have the action's target and matchers, no fields), the others whole. Built on
    first use and kept on the model, per set of names."""
    plans: dict[frozenset[str], SourcePlan] = source.__dict__.setdefault("_key_plans", {})
    plan = plans.get(names)
    if plan is None or plan.source is not source:
        plan = plans[names] = _plan(source, [compile_action(source, action, fields=action.name not in names)
                                             for action in source.actions])
    return plan


def _plan(source: ActionFile, mappers: list[Mapper] | None = None) -> SourcePlan:
    if mappers is None:
        mappers = [compile_action(source, action) for action in source.actions]
    whens = []
    for action in source.actions:
        src = Source()
        reads = Reads(src)
        lines: list[str] = []
        test = trigger(parse(action.when), src, reads, lines)
        src.add(0, "def when(body):")
        src.add(1, *reads.prelude, *lines, f"return {test}")
        whens.append(src.build("when", f"<trigger {source.source}/{action.name}>"))
    src = Source()
    reads = Reads(src)
    lines = []
    tests = [trigger(parse(action.when), src, reads, lines) for action in source.actions]
    src.add(0, "def route(event, body):")
    src.add(1, *reads.prelude, *lines, "out = []")
    for test, mapper in zip(tests, mappers, strict=True):
        src.add(1, f"if {test}:", f"    out.append({src.bind('_map', mapper)}(event, body))")
    src.add(1, "return out")
    route = src.build("route", f"<route {source.source}>")
    return SourcePlan(source, route, tuple(zip([a.name for a in source.actions], whens, mappers, strict=True)))


def compile_action(source: ActionFile, action: Action, *, fields: bool = True) -> Mapper:
    """One function (event, body) → RecordOp | Outcome with mapping.map_event's semantics for this action.

    fields=False: the op as far as batching reads it (target, operation, mode, matchers and so its record
    and batch keys), without fields or warnings; the matchers are built first either way, so a failure the
    whole mapper meets there is the same outcome. Only for an action without lookups (they are read while
    the op waits)."""
    assert fields or not action.lookups, "an op that looks up parents is batched whole"
    src = Source()
    src.names.update(_Fail=_Fail, ValueProblem=ValueProblem, _writable=_writable, _text=_text, _SIMPLE=_SIMPLE,
                     _apply=apply_transform, _show=_show)
    reads = Reads(src)
    where = f"source {source.source}, action {action.name}"
    body: list[str] = []
    if action.match is not None:
        body.append(f"match = {_group(src, action.match, where)}(body)")
    else:
        body.append("match = None")
    warnings = fields and (action.fields_from is not None or bool(source.rules_for(action.object)))
    if fields and action.fields_from is not None:
        body.append(f"fields, warnings = {src.bind('_spread', _spread)}({src.const(action)}, body)")
    else:
        body += ["fields = {}"] + (["warnings = []"] if warnings else [])
    for name, spec in action.field_specs().items() if fields else ():
        body += _field(src, reads, name, spec, where)
    if fields and source.rules_for(action.object):
        body.append(f"fields = {src.bind('_directed', _directed)}({src.const(source)}, {src.const(action)}, "
                    "fields, warnings)")
    if fields and action.record_type:
        fixed = FieldValue(action.record_type, Policy.ALWAYS)
        body.append(f"fields.setdefault('RecordTypeId', {src.const(fixed)})")
    if action.idempotency_field:
        field = src.const(action.idempotency_field)
        prefix = src.const(f"{source.source}:{action.name}:")
        marked = construct(src, FieldValue, {'value': 'marker', 'policy': src.const(Policy.ALWAYS)})
        body += [f"marker = {prefix} + event.message_id", *([f"fields[{field}] = {marked}"] if fields else []),
                 f"match = {src.const(MatchTree)}('any', ({src.const(Matcher)}({field}, marker),))"]
    if action.lookups:
        body.append("lookups = []")
    for ref_field, lookup in action.lookups.items():
        group = _group(src, lookup.match, f"{where}, lookup {ref_field}")
        made = construct(src, Lookup, {"field": src.const(ref_field), "object": src.const(lookup.object),
                                       "match": "tree", "on_many_matches": src.const(lookup.on_many_matches),
                                       "required": src.const(lookup.required)})
        body += ["try:", f"    tree = {group}(body)", "except _Fail:",
                 "    raise" if lookup.required else "    pass", "else:", f"    lookups.append({made})"]
    failed = (f"return {src.const(Outcome.failed)}(event, action={src.const(action.name)}, "
              f"object={src.const(action.object)}, operation={src.const(action.operation.value)}, "
              "error_code='MAPPING_ERROR', message=str(failure), fields=(failure.field,))")
    made = construct(src, RecordOp, {
        "event": "event", "action": src.const(action.name), "object": src.const(action.object),
        "operation": src.const(action.operation), "match": "match", "fields": "fields",
        "lookups": "tuple(lookups)" if action.lookups else "()", "on_many_matches": src.const(action.on_many_matches),
        "mode": src.const(action.mode), "connection": src.const(source.connection),
        "retry_without_failing_fields": src.const(action.retry_without_failing_fields),
        "follow_converted_leads": src.const(action.follow_converted_leads),
        "on_duplicate": src.const(action.on_duplicate), "warnings": "tuple(warnings)" if warnings else "()"})
    src.add(0, "def mapper(event, body):" if fields else "def keys(event, body):")
    src.add(1, *reads.prelude, "try:")
    src.add(2, *body)
    src.add(1, "except _Fail as failure:")
    src.add(2, failed)
    key = _batch_key(source, action)
    if key is None:
        src.add(1, f"return {made}")
    else:  # every op of the action is batched under one key: the batcher need not work it out per op
        src.add(1, f"op = {made}", f"op._batch = {src.const(key)}", "return op")
    if fields:
        return src.build("mapper", f"<action {source.source}/{action.name}>")
    return src.build("keys", f"<keys {source.source}/{action.name}>")


def _field(src: Source, reads: Reads, name: str, spec: FieldSpec, where: str) -> list[str]:
    """Lines adding field `name` to `fields` (map_event's loop body for one field)."""
    label = src.const(name)
    fixed = _fixed(spec)
    if fixed is not None:  # a static value: the same FieldValue for every event
        made = FieldValue(fixed, spec.policy, from_default=False, truncate=spec.truncate is not False)
        return [f"fields[{label}] = {src.const(made)}"]
    value, from_default = _value(src, reads, spec)
    lines = ["try:", *_indent(value), "except ValueProblem as exc:",
             f"    raise _Fail({label}, {src.const(f'{where}, field {name}: ')} + str(exc)) from None"]
    missing = [f"    raise _Fail({label}, {src.const(f'{where}, field {name}: required value is missing')})"
               if spec.required else "    pass"]

    def kept(expression: str) -> list[str]:
        return _indent(assign(src, f"fields[{label}]", FieldValue, {
            "value": expression, "policy": src.const(spec.policy), "from_default": from_default, "spread": "False",
            "truncate": src.const(spec.truncate is not False)}))
    # is_blank, with text (the common case) tested first: `v` went through _writable, so it is a plain value
    if spec.policy is Policy.ALWAYS:  # an explicit null or blank clears the field; an absent key does not
        return [*lines, "if type(v) is str and v.strip():", *kept("v"), "elif v is MISSING:", *missing,
                f"elif {is_blank('v')}:", *kept("None"), "else:", *kept("v")]
    return [*lines, "if type(v) is str and v.strip():", *kept("v"), f"elif {is_blank('v')}:", *missing, "else:",
            *kept("v")]


def _fixed(spec: FieldSpec) -> Any:
    """The value of a field that is the same for every event (a static, writable, non-blank value), or None."""
    if spec.value is None or spec.transform is not None or spec.truncate is not None or spec.default is not None:
        return None
    if type(spec.value) not in (str, int, bool) or (isinstance(spec.value, str) and not spec.value.strip()):
        return None
    return spec.value


def _value(src: Source, reads: Reads, spec: FieldSpec) -> tuple[list[str], str]:
    """Lines setting `v` to values.resolve_field(spec)'s value, and the expression for its from_default."""
    lines: list[str] = []
    if spec.path is not None:
        paths = spec.paths
        depth = 0
        for index, path in enumerate(paths):  # the first non-blank value wins, else the last one read
            lines += _indent(reads.read(path, "v"), depth)
            if index < len(paths) - 1:
                lines.append("    " * depth + f"if {is_blank('v')}:")
                depth += 1
    elif spec.template is not None:
        lines += _template(src, reads, spec.template, spec.on_missing, "v")
        lines.append("if not v:  # every placeholder missing: like an absent key")
        lines.append("    v = MISSING")
    elif spec.value is not None:
        lines.append(f"v = {src.const(spec.value)}")
    else:
        lines.append("v = MISSING")
    cut = spec.cut_at
    for step in spec.transforms:
        if step is Transform.EMAIL_DOMAIN:
            lines += ["if v is not None and v is not MISSING:", "    v = str(v).strip()", "    if '@' not in v:",
                      "        raise ValueProblem('email_domain: ' + _show(v) + ' is not an e-mail address')",
                      "    v = v.rsplit('@', 1)[1].lower()"]
        elif not isinstance(step, Transform) or step not in _INLINE:
            lines.append(f"v = _apply({src.const(step)}, v, length={src.const(cut)}, body=body)")
        else:
            lines += ["if v is not None and v is not MISSING:", f"    v = str(v).{_INLINE[step]}()"]
    if cut:
        lines += ["if isinstance(v, str):", f"    v = v[:{cut}]"]
    from_default = "False"
    if spec.default is not None:
        from_default = "fd"
        if isinstance(spec.default, str) and "{{" in spec.default:
            fallback = _template(src, reads, spec.default, spec.on_missing, "d")
        else:
            fallback = [f"d = {src.const(spec.default)}"]
        lines += ["fd = False", f"if {is_blank('v')}:", *_indent(fallback), f"    if not {is_blank('d')}:",
                  "        v = _writable(d)", "        fd = True"]
    lines += ["if type(v) not in _SIMPLE:", "    v = _writable(v)"]
    return lines, from_default


def _template(src: Source, reads: Reads, template: str, on_missing: OnMissing, target: str) -> list[str]:
    """Lines setting `target` to values.render_template(template)'s text."""
    found = list(_PLACEHOLDER.finditer(template))
    if not found:
        return [f"{target} = {src.const(template)}"]
    lines: list[str] = []
    pieces: list[str] = []
    blanks: list[str] = []
    at = 0
    for match in found:
        value, blank = src.fresh("p"), src.fresh("b")
        lines += reads.read(match.group(1), value)
        lines.append(f"{blank} = {is_blank(value)}")
        if on_missing is OnMissing.ERROR:
            message = f"template placeholder {{{{ {match.group(1)} }}}} has no value in this event"
            lines += [f"if {blank}:", f"    raise ValueProblem({src.const(message)})"]
        text = f"({value} if type({value}) is str else _text({value}))"
        pieces += [src.const(template[at:match.start()]), text if len(found) == 1 else f"('' if {blank} else {text})"]
        blanks.append(blank)
        at = match.end()
    pieces.append(src.const(template[at:]))
    joined = " + ".join(p for p in pieces if p != "''") or "''"
    return [*lines, f"if {' and '.join(blanks)}:", f"    {target} = ''", "else:", f"    {target} = {joined}"]


def _group(src: Source, group: MatchGroup, where: str) -> str:
    """A generated function body → MatchTree with mapping.build_tree's semantics; its namespace name."""
    inner = Source()
    inner.names.update(_Fail=_Fail, ValueProblem=ValueProblem, _writable=_writable, _text=_text,
                       _SIMPLE=_SIMPLE, _apply=apply_transform, _show=_show, _domain_of=domain_of)
    reads = Reads(inner)
    lines = ["items = []"]
    for member in group.members():
        if isinstance(member, MatchGroup):
            nested = _group(inner, member, where)
            lines += ["try:", f"    items.append({nested}(body))", "except _Fail:",
                      "    raise" if group.kind == "all" else "    pass"]
            continue
        field, spec = member
        label = inner.const(field)
        value, _ = _value(inner, reads, spec)
        lines += ["try:", *_indent(value), "except ValueProblem as exc:",
                  f"    raise _Fail({label}, str(exc)) from None",
                  f"if {is_blank('v')}:", "    v = MISSING",
                  f"elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > {inner.const(_FLOAT_MAX)}:",
                  f"    raise _Fail({label}, {inner.const(f'matcher {field}: a number of ')} + str(len(str(abs(v)))) "
                  "+ ' digits cannot be matched')"]
        if spec.compare is Compare.DOMAIN:
            lines += ["if v is not MISSING:", "    v = _domain_of(str(v)) or MISSING"]
        lines.append("if v is MISSING:")
        lines.append(f"    raise _Fail({label}, {inner.const(f'{where}: matcher {field} has no value in this event')})"
                     if group.kind == "all" else "    pass")
        made = assign(inner, "m", Matcher, {"field": label, "value": "v", "compare": inner.const(spec.compare)})
        lines += ["else:", *_indent([*made, "items.append(m)"])]
    names = ", ".join(f for f, _ in group.fields())
    # what MatchTree computes on first use, when the source already knows it: a flat group's matchers are its
    # items, and a group whose members are all there in every tree it makes has one shape
    known = {"kind": inner.const(group.kind), "items": "items"}
    if not any(isinstance(member, MatchGroup) for member in group.members()):
        known["_flat"] = "items"
    static = _static(group)
    if static is not None:
        known["_shape"] = inner.const(static.shape())
    lines += ["if not items:",
              f"    raise _Fail({inner.const(names)}, "
              f"{inner.const(f'{where}: none of the matchers ({names}) has a value in this event')})",
              "items = tuple(items)", *assign(inner, "tree", MatchTree, known), "return tree"]
    inner.add(0, "def group(body):")
    inner.add(1, *reads.prelude, *lines)
    return src.bind("_group", inner.build("group", "<match group>"))


def _batch_key(source: ActionFile, action: Action) -> tuple[str, str, str, str, str] | None:
    """RecordOp.batch_key of every op the action makes, when its matchers' shape is the same for all."""
    if action.idempotency_field:  # the marker alone
        tree: MatchTree | None = MatchTree("any", (Matcher(action.idempotency_field, None),))
    elif action.match is not None:
        tree = _static(action.match)
        if tree is None:
            return None
    else:
        tree = None
    return RecordOp(Event(source.source, {}), action.name, action.object, action.operation, tree,
                    mode=action.mode, connection=source.connection).batch_key()


def _static(group: MatchGroup) -> MatchTree | None:
    """The group's tree without values (None in their place) when every tree it makes has all its members —
    an `all` group, or one of a single member: a missing one fails the event — so all share one shape; None
    when which members an event has decides the shape."""
    if group.kind != "all" and len(group.members()) != 1:
        return None
    items: list[Matcher | MatchTree] = []
    for member in group.members():
        if isinstance(member, MatchGroup):
            nested = _static(member)
            if nested is None:
                return None
            items.append(nested)
        else:
            items.append(Matcher(member[0], None, member[1].compare))
    return MatchTree(group.kind, tuple(items))


def _indent(lines: list[str], depth: int = 1) -> list[str]:
    return ["    " * depth + line for line in lines]
