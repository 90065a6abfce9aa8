"""Compiled mapping (destination/mapgen.py) answers exactly as the reference (destination/mapping.py and the
trigger closures): same operations, fields, matchers, lookups, warnings, failures and messages — for the
shipped actions and for generated ones with odd field names, paths and strings, which must never be able
to change the generated code."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from destination.actions.loader import load_dir
from destination.actions.model import ActionFile, OnMissing, Operation, Policy, Transform
from destination.actions.paths import steps
from destination.actions.trigger import predicate
from destination.events import Event
from destination.mapgen import key_plan, plan_of
from destination.mapping import map_event
from destination.operations import RecordOp
from destination.route import route

SHIPPED = load_dir(Path(__file__).resolve().parents[2] / "actions")
ODD = st.lists(st.sampled_from([*"aZ_0- '\"\\\n{}$é€\x00\ud800", "\\n", "'''", '"""', "{{", "}}", "\\u0041"]),
               min_size=1, max_size=5).map("".join)
PATH_KEY = ODD.map(lambda s: s.replace(".", "").replace("[", "").replace("]", "").replace("{", "").replace("}", ""))
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10 ** 18, -10 ** 20, 2 ** 53, 10 ** 400]),
    st.floats(), st.sampled_from(["", "  ", "a@b.co", " A@Example.COM ", "https://www.Acme.com/x", "1,200",
                                  "1e5000", "2026-01-02", "2026-01-02T03:04:05+02:00", "yes", "no", "x,y, z",
                                  "Order Completed", "identify", "track", "12", "9.5"]), st.text(max_size=8))
VALUE = st.one_of(SCALAR, SCALAR, SCALAR, st.sampled_from([None, "", " \t"]), st.lists(st.sampled_from(["", "a", "b c", None, 3]), max_size=3),
                  st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["x", 1, None]), max_size=2))


def _results(run: Any) -> Any:
    try:
        return ("ok", run())
    except Exception as exc:  # the route's boundary turns these into INVALID_EVENT: both must raise alike
        return ("raised", type(exc))


def _reference(source: ActionFile, event: Event) -> list[Any]:
    return [map_event(source, action, event) for action in source.actions if predicate(action.when)(event.body)]


def _same(source: ActionFile, event: Event) -> None:
    compiled = _results(lambda: plan_of(source).run(event))
    expected = _results(lambda: _reference(source, event))
    assert compiled == expected
    if compiled[0] == "ok":  # what the generated code fills in ahead (batch key, shape, matchers) is what
        # the reference's ops work out when asked
        assert [_derived(r) for r in compiled[1]] == [_derived(r) for r in expected[1]]
    for action in source.actions:  # one action at a time, as replay asks for
        assert _one(source, action.name, event, compiled=True) == _one(source, action.name, event, compiled=False)
    _same_keys(source, event, compiled)


def _same_keys(source: ActionFile, event: Event, whole: Any) -> None:
    """The key plan (what the pipeline maps a packed event's actions with at submit) agrees with the whole
    mapping on everything batching reads; its matchers are built first, so where it fails, the whole mapping
    fails the same way (a failure in a field shows only when the op is mapped whole, as it is written)."""
    names = frozenset(a.name for a in source.actions if not a.lookups)
    keyed = _results(lambda: key_plan(source, names).run(event))
    if keyed[0] == "raised":
        assert whole == keyed
        return
    if whole[0] == "raised":
        return
    assert len(keyed[1]) == len(whole[1])
    for key_result, result in zip(keyed[1], whole[1], strict=True):
        if not isinstance(key_result, RecordOp):
            assert key_result == result
        elif isinstance(result, RecordOp):
            packed = result.action in names
            assert key_result.fields == ({} if packed else result.fields)
            assert (key_result.action, key_result.object, key_result.operation, key_result.mode,
                    key_result.connection, key_result.on_many_matches, key_result.match) == (
                result.action, result.object, result.operation, result.mode, result.connection,
                result.on_many_matches, result.match)
            assert _derived(key_result) == _derived(result)
        else:  # a field the key plan does not map failed the whole op
            assert key_result.action in names and result.error_code == "MAPPING_ERROR"


def _derived(result: Any) -> Any:
    """What an operation works out from its fields on first use (and keeps)."""
    if not isinstance(result, RecordOp):
        return result
    trees = [t for t in (result.match, *(lookup.match for lookup in result.lookups)) if t is not None]
    return (result.batch_key(), result.record_key(), result.intent_key(),
            [(tree.shape(), tree.matchers(), tree.single()) for tree in trees])


def _one(source: ActionFile, name: str, event: Event, *, compiled: bool) -> Any:
    if compiled:
        return _results(lambda: plan_of(source).run(event, {name}))
    action = next(a for a in source.actions if a.name == name)
    return _results(lambda: [map_event(source, action, event)] if predicate(action.when)(event.body) else [])


@st.composite
def _shipped_events(draw: st.DrawFn) -> Event:
    source = draw(st.sampled_from(sorted(SHIPPED)))
    body: dict[str, Any] = {"type": draw(st.sampled_from(["identify", "group", "track", "page", 5])),
                            "messageId": draw(st.text(max_size=5))}
    for key in ("userId", "groupId", "event", "timestamp"):
        if draw(st.booleans()):
            body[key] = draw(st.one_of(VALUE, st.sampled_from(["Order Completed", "Support Requested",
                                                                "Survey Submitted", "Account Deleted"])))
    for scope in ("traits", "properties", "context"):
        if draw(st.booleans()):
            keys = st.sampled_from(["email", "first_name", "last_name", "company", "title", "phone", "plan", "name",
                                    "website", "industry", "employees", "order_id", "total", "subject", "message",
                                    "priority", "score", "sentiment", "would_recommend", "comments", "groupId",
                                    "traits", "unsubscribed"])
            body[scope] = draw(st.dictionaries(keys, st.one_of(VALUE, st.fixed_dictionaries({"email": VALUE})),
                                               max_size=8))
    return Event(source, body)


@settings(max_examples=150, deadline=None)
@given(_shipped_events())
def test_compiled_shipped_actions_map_every_event_as_the_reference_does(event: Event) -> None:
    _same(SHIPPED[event.source], event)


def test_the_benchmark_event_maps_to_the_same_operation_both_ways() -> None:
    event = Event("web-app", {"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2026-01-01T00:00:00Z",
                              "traits": {"email": " User1@Example.com", "first_name": "Ada", "last_name": "L",
                                         "company": "Acme", "plan": "pro", "phone": "123"}})
    [op] = route(SHIPPED, event)
    assert isinstance(op, RecordOp) and [op] == _reference(SHIPPED["web-app"], event)
    assert op.fields["Email"].value == "user1@example.com" and op.fields["Description"].value == "Plan: pro"


# --- generated actions ---------------------------------------------------------------------------------------

@st.composite
def _path(draw: st.DrawFn, keys: list[str], used: list[str]) -> str:
    """A path over the example's keys (recorded in `used`, so the event can give it a value)."""
    steps = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2))
    text = ".".join(steps) + draw(st.sampled_from(["", "", "", "[0]", "[1]"]))
    text = "$." + text if draw(st.booleans()) else text
    used.append(text)
    return text


@st.composite
def _template(draw: st.DrawFn, keys: list[str], used: list[str]) -> str:
    parts = draw(st.lists(st.tuples(ODD, _path(keys, used)), min_size=0, max_size=3))
    return "".join(f"{fixed}{{{{ {path} }}}}" for fixed, path in parts) + draw(ODD)


@st.composite
def _spec(draw: st.DrawFn, keys: list[str], used: list[str]) -> Any:
    kind = draw(st.sampled_from(["path", "paths", "template", "value", "plain_path", "plain_value"]))
    if kind == "plain_path":
        return "$." + draw(_path(keys, used)).removeprefix("$.")
    if kind == "plain_value":
        return draw(st.one_of(st.text(max_size=5), st.integers(), st.booleans()))
    spec: dict[str, Any] = {}
    if kind == "path":
        spec["path"] = draw(_path(keys, used))
    elif kind == "paths":
        spec["path"] = draw(st.lists(_path(keys, used), min_size=1, max_size=3))
    elif kind == "template":
        spec["template"] = draw(_template(keys, used))
    else:
        spec["value"] = draw(st.one_of(st.text(max_size=5), st.integers(), st.floats(), st.booleans(),
                                       st.lists(st.integers(), max_size=1)))
    transforms = draw(st.lists(st.one_of(
        st.sampled_from([t.value for t in Transform]),
        st.sampled_from([{"replace": {"pattern": "[^0-9+]", "replacement": ""}},
                         {"replace": {"pattern": "(a)", "replacement": "\\1\\1"}},
                         {"replace": {"pattern": "(a)", "replacement": "\\2"}},
                         {"split": {"separator": " ", "index": 0}}, {"split": {"separator": ",", "index": -1}},
                         {"join": {"separator": ";"}}]),
        st.lists(st.one_of(_path(keys, used).map(lambda p: "$." + p.removeprefix("$.")), VALUE), max_size=2).map(
            lambda c: {"coalesce": c})), max_size=2)) if draw(st.booleans()) else []
    if transforms:
        spec["transform"] = transforms if len(transforms) > 1 or draw(st.booleans()) else transforms[0]
    if draw(st.booleans()):
        spec["default"] = draw(st.one_of(st.text(max_size=4), st.integers(), _template(keys, used), st.just("  ")))
    if draw(st.booleans()):
        spec["truncate"] = draw(st.one_of(st.integers(1, 4), st.booleans()))
    spec["policy"] = draw(st.sampled_from([p.value for p in Policy]))
    spec["required"] = draw(st.booleans())
    spec["compare"] = draw(st.sampled_from(["exact", "domain"]))
    if "template" in spec or (isinstance(spec.get("default"), str) and "{{" in spec["default"]):
        spec["on_missing"] = draw(st.sampled_from([m.value for m in OnMissing]))
    return spec


@st.composite
def _group(draw: st.DrawFn, keys: list[str], used: list[str], depth: int = 0) -> dict[str, Any]:
    members = draw(st.dictionaries(ODD, _spec(keys, used), min_size=1, max_size=3))
    kind = draw(st.sampled_from(["any", "any", "all"]))
    if depth < 1 and draw(st.booleans()):
        return {kind: [members, draw(_group(keys, used, depth + 1))]}
    return {kind: members}


@st.composite
def _trigger(draw: st.DrawFn, keys: list[str], used: list[str]) -> str:
    path = draw(st.sampled_from(keys)).strip() or "type"
    name = path if path.replace("_", "a").replace("-", "a").isalnum() and path[0].isalpha() else "type"
    literal = draw(st.one_of(st.text(max_size=4).map(json.dumps), st.sampled_from(['"identify"', "12", "-3.5",
                                                                                    "true", "null", "'x'"])))
    leaf = draw(st.sampled_from([f"{name} exists", f"{name} not exists", f"{name} = {literal}",
                                 f"{name} != {literal}", f"{name} > {literal}", f"{name} <= 2",
                                 f"{name} in ({literal}, 2)", f"{name} not in ({literal})",
                                 f"{name} contains {literal}"]))
    if draw(st.booleans()):
        return draw(st.sampled_from([leaf, "type exists", f"type exists or {leaf}"]))
    other = draw(_trigger(keys, used))
    return draw(st.sampled_from([f"{leaf} and {other}", f"{leaf} or ({other})", f"not ({leaf}) and {other}"]))


@st.composite
def _source_and_event(draw: st.DrawFn) -> tuple[ActionFile, Event]:
    keys = [*draw(st.lists(PATH_KEY, min_size=1, max_size=3, unique=True)), "type", "traits"]
    used: list[str] = []
    spreads: list[str] = []
    actions = []
    for index in range(draw(st.integers(1, 2))):
        operation = draw(st.sampled_from([o.value for o in Operation]))
        action: dict[str, Any] = {"name": f"a{index}", "when": draw(_trigger(keys, used)), "object": "Lead",
                                  "operation": operation}
        if operation != "create" or draw(st.booleans()):
            action["match"] = draw(_group(keys, used))
        if operation != "delete":
            action["fields"] = draw(st.dictionaries(ODD, _spec(keys, used), max_size=3))
            if draw(st.booleans()):
                action["fields_from"] = draw(st.one_of(_path(keys, spreads), st.fixed_dictionaries(
                    {"path": _path(keys, spreads), "rename": st.dictionaries(ODD, ODD, max_size=1),
                     "deny": st.lists(ODD, max_size=1)})))
        if draw(st.booleans()):
            action["lookups"] = {draw(ODD): {"object": "Account", "match": draw(_group(keys, used)),
                                             "required": draw(st.booleans())}}
        if draw(st.booleans()):
            action["record_type"] = draw(ODD)
        if operation == "create" and draw(st.booleans()):
            action["idempotency_field"] = "Event_Id__c"
        actions.append(action)
    try:
        config: dict[str, Any] = {"source": "odd", "actions": actions}
        if draw(st.booleans()):  # per-field direction rules for Lead: a field Salesforce owns is left out
            names = [n for a in actions for n in a.get("fields", {})] + draw(st.lists(ODD, max_size=2))
            config["sync_back"] = {"kafka_topic": "t", "objects": [{"object": "Lead", "fields": {
                n: {"direction": draw(st.sampled_from(["to_salesforce", "from_salesforce", "both"])),
                    "merge": draw(st.sampled_from(["most_recent", "salesforce_wins", "app_wins"]))}
                for n in names}}]} if names else None
        source = ActionFile.model_validate(config)
    except ValidationError:
        assume(False)
        raise
    body: dict[str, Any] = {"type": draw(st.sampled_from(["identify", "track", 12])), "messageId": draw(ODD)}
    for path in used:
        if draw(st.integers(0, 3)):
            _put(body, steps(path), draw(VALUE))
    for path in spreads:  # an object whose keys become fields: values, blanks, objects and lists
        _put(body, steps(path), draw(st.dictionaries(ODD, VALUE, max_size=4)))
    return source, Event("odd", body)


def _put(body: dict[str, Any], keys: tuple[str | int, ...], value: Any) -> None:
    """Set `value` at the path `keys` of `body`, making the objects and lists on the way."""
    scope: Any = body
    for index, key in enumerate(keys):
        last = index == len(keys) - 1
        child: Any = value if last else [] if isinstance(keys[index + 1], int) else {}
        if isinstance(key, int):
            if not isinstance(scope, list):
                return
            scope.extend([None] * (key + 1 - len(scope)))
        elif not isinstance(scope, dict):
            return
        if last or not isinstance(scope[key] if isinstance(key, int) else scope.get(key), type(child)):
            scope[key] = child
        scope = scope[key]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(_source_and_event())
def test_compiled_generated_actions_map_every_event_as_the_reference_does(case: tuple[ActionFile, Event]) -> None:
    source, event = case
    _same(source, event)


@settings(max_examples=100, deadline=None)
@given(name=ODD, text=st.text(), number=st.integers())
def test_odd_names_and_strings_are_values_in_the_generated_code_never_code(name: str, text: str, number: int) -> None:
    source = ActionFile.model_validate({"source": "odd", "actions": [{
        "name": "a", "when": "type exists", "object": "Lead", "operation": "create",
        "fields": {name: {"path": f"$.traits.{name.replace('.', '')}", "default": text},
                   name + "2": {"template": text + "{{ traits.x }}" + text}, name + "3": {"value": number}}}]})
    body = {"type": "identify", "traits": {name.replace(".", ""): text, "x": name}}
    [op] = plan_of(source).run(Event("odd", body))
    assert op == map_event(source, source.actions[0], Event("odd", body)) or not isinstance(op, RecordOp)
    _same(source, Event("odd", body))


def test_a_float_that_is_not_finite_fails_the_event_in_both() -> None:
    source = ActionFile.model_validate({"source": "odd", "actions": [{
        "name": "a", "when": "type exists", "object": "Lead", "operation": "create", "fields": {"X": "$.traits.x"}}]})
    event = Event("odd", {"type": "identify", "traits": {"x": math.inf}})
    [outcome] = plan_of(source).run(event)
    assert not isinstance(outcome, RecordOp) and outcome.error_code == "MAPPING_ERROR"
    _same(source, event)


BLANKS = ActionFile.model_validate({"source": "blanks", "actions": [{
    "name": "a", "when": "type exists", "object": "Lead", "operation": "upsert",
    "match": {"any": {"Email": "$.traits.x", "Other": {"path": "$.traits.y", "compare": "domain"}}},
    "fields": {f"{kind}_{policy.value}": {**spec, "policy": policy.value}
               for policy in Policy
               for kind, spec in {"path": {"path": "$.traits.x"}, "paths": {"path": ["$.traits.x", "$.traits.y"]},
                                  "default": {"path": "$.traits.x", "default": "D"},
                                  "template": {"template": "<{{ traits.x }}>"},
                                  "default_template": {"path": "$.traits.x", "default": "{{ traits.y }}"},
                                  "cut": {"path": "$.traits.x", "truncate": 1, "transform": "trim"}}.items()}}]})


@settings(max_examples=100, deadline=None)
@given(x=st.sampled_from([None, "", " ", "v", 0, False, "A@b.co"]), y=st.sampled_from([None, "", "w", "http://W.io/a"]),
       present=st.sampled_from(["x", "y", "both", "none"]))
def test_blank_and_absent_values_under_every_policy_map_as_the_reference_does(x: Any, y: Any, present: str) -> None:
    traits = {**({"x": x} if present in ("x", "both") else {}), **({"y": y} if present in ("y", "both") else {})}
    _same(BLANKS, Event("blanks", {"type": "identify", "traits": traits}))
