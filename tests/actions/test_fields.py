"""Field sources and transforms: path fallbacks, whole objects as fields (`fields_from`), regex replace,
split/join, coalesce, template `on_missing`, explicit truncation — each a pure mapping of one event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from destination.actions.loader import ConfigError, load_text
from destination.events import Event
from destination.mapgen import map_event  # the compiled mapping; test_mapgen.py holds it to the reference
from destination.operations import RecordOp
from destination.outcomes import Outcome
from destination.route import route

SOURCE = load_text("""
source: app
actions:
  - name: contacts
    when: type exists
    object: Contact
    operation: create
    fields:
      Email: {path: [$.traits.email, $.properties.email, $.context.traits.email]}
      Phone: {path: $.traits.phone, transform: [{replace: {pattern: "[^0-9+]", replacement: ""}}]}
      FirstName: {path: $.traits.name, transform: [{split: {separator: " ", index: 0}}]}
      LastName: {path: $.traits.name, transform: [{split: {separator: " ", index: -1}}]}
      Interests__c: {path: $.traits.interests, transform: [split, join]}
      Tags__c: {path: $.traits.tags, transform: {join: {separator: ", "}}}
      Title: {path: $.traits.title, transform: {coalesce: [$.traits.role, $.properties.role, Member]}}
      Nickname__c: {path: $.traits.aliases, transform: coalesce}
      Description: {template: "Plan {{ traits.plan }}", on_missing: error}
      Department: {path: $.traits.department, truncate: 5}
""", "app.yaml")


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    op = map_event(SOURCE, SOURCE.actions[0], Event("app", {"type": "identify", **body}))
    assert isinstance(op, RecordOp), op
    return {k: v.value for k, v in op.fields.items()}


def _with_plan(traits: dict[str, Any], **body: Any) -> dict[str, Any]:
    return _fields({"traits": {"plan": "pro", **traits}, **body})


def test_the_first_non_blank_path_wins() -> None:
    assert _with_plan({"email": "t@x.example"}, properties={"email": "p@x.example"})["Email"] == "t@x.example"
    assert _with_plan({"email": " "}, properties={"email": "p@x.example"})["Email"] == "p@x.example"
    assert _with_plan({}, context={"traits": {"email": "c@x.example"}})["Email"] == "c@x.example"
    assert "Email" not in _with_plan({})


def test_replace_split_join_and_coalesce() -> None:
    values = _with_plan({"phone": "(555) 010-2000 ext", "name": "Ada King Lovelace", "interests": "a, b,,c",
                         "tags": ["x", "", None, 3], "role": "", "aliases": ["", None, "Countess"]},
                        properties={"role": "Engineer"})
    assert (values["Phone"], values["FirstName"], values["LastName"]) == ("5550102000", "Ada", "Lovelace")
    assert (values["Interests__c"], values["Tags__c"]) == ("a;b;c", "x, 3")
    assert (values["Title"], values["Nickname__c"]) == ("Engineer", "Countess")
    assert _with_plan({"title": "CTO"})["Title"] == "CTO"
    assert _with_plan({})["Title"] == "Member"  # a static last resort


def test_an_explicit_truncate_cuts_the_text() -> None:
    assert _with_plan({"department": "Engineering"})["Department"] == "Engin"


def test_a_template_with_on_missing_error_fails_the_event_naming_the_placeholder() -> None:
    outcome = map_event(SOURCE, SOURCE.actions[0], Event("app", {"type": "identify", "traits": {}}))
    assert isinstance(outcome, Outcome) and outcome.error_code == "MAPPING_ERROR"
    assert outcome.fields == ("Description",) and "traits.plan" in (outcome.message or "")


SPREAD = load_text("""
source: app
actions:
  - name: custom
    when: type exists
    object: Lead
    operation: create
    fields_from: {path: $.properties, rename: {plan: Plan__c, co: Company}, deny: [secret]}
    fields:
      LastName: $.traits.last_name
  - name: allowed
    when: type exists
    object: Lead
    operation: create
    fields_from: [{path: $.traits, allow: [email, Company]}, $.properties]
""", "app.yaml")


def test_fields_from_spreads_an_object_with_renames_and_deny_and_explicit_fields_win() -> None:
    body = {"type": "track", "traits": {"last_name": "Real", "email": "a@x.example", "company": "T"},
            "properties": {"plan": "pro", "co": "Acme", "LastName": "Spread", "secret": "s", "Empty": " ",
                           "nested": {"a": 1}}}
    op = map_event(SPREAD, SPREAD.actions[0], Event("app", body))
    assert isinstance(op, RecordOp)
    assert {k: v.value for k, v in op.fields.items()} == {"Plan__c": "pro", "Company": "Acme", "LastName": "Real"}
    assert op.fields["Plan__c"].spread and not op.fields["LastName"].spread
    assert op.warnings == ("$.properties.nested is not a value a field can hold: left out",)
    allowed = map_event(SPREAD, SPREAD.actions[1], Event("app", body))
    assert isinstance(allowed, RecordOp)
    assert {k: v.value for k, v in allowed.fields.items()} == {
        "email": "a@x.example", "company": "T", "plan": "pro", "co": "Acme", "LastName": "Spread", "secret": "s"}


@pytest.mark.parametrize(("fields", "message"), [
    ('{X: {path: $.a, transform: split}}', "split makes a list"),
    ('{X: {path: $.a, transform: [{replace: {pattern: "("}}]}}', "not a regular expression"),
    ('{X: {path: $.a, on_missing: error}}', "on_missing applies to a template"),
    ('{X: {path: []}}', "at least one path"),
    ('{X: {path: $.a, transform: [{split: {}, join: {}}]}}', "exactly one of"),
])
def test_bad_field_specs_are_config_errors(fields: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_text(f"source: s\nactions:\n  - {{name: a, when: type exists, object: Lead, operation: create, "
                  f"fields: {fields}}}\n", "s.yaml")


def test_the_segment_conformance_example_in_the_docs_maps_fallbacks_and_custom_fields() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "actions.md").read_text()
    block = doc.split("## Segment conformance", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    source = load_text("source: segment\nactions:\n" + block, "segment.yaml")
    body = {"type": "track", "properties": {"email": "p@x.example", "phone": "+1 (555) 010",
                                            "customFields": {"Rating": "Hot", "Plan__c": "pro"}},
            "traits": {"email": " ", "company": "Acme"}}
    [op] = route({"segment": source}, Event("segment", body))
    assert isinstance(op, RecordOp)
    assert [(m.field, m.value) for m in op.match.matchers()] == [("Email", "p@x.example")]  # type: ignore[union-attr]
    assert {k: v.value for k, v in op.fields.items()} == {
        "Email": "p@x.example", "LastName": "Unknown", "Company": "Acme", "Phone": "+1555010", "Rating": "Hot",
        "Plan__c": "pro"}
    assert op.fields["LastName"].from_default and op.fields["Rating"].spread


EVERY_TRANSFORM = load_text("""
source: app
actions:
  - name: all
    when: type exists
    object: Lead
    operation: upsert
    match: {any: {Email: {path: [$.traits.a, $.properties.a], transform: [trim, lowercase]},
                  Website: {path: $.traits.b, transform: email_domain, compare: domain}}}
    fields_from: {path: $.properties, rename: {a: Email}, deny: [b]}
    fields:
      A: {path: $.traits.a, transform: [uppercase, domain]}
      B: {path: $.traits.b, transform: to_date}
      C: {path: $.traits.b, transform: to_datetime}
      D: {path: $.traits.c, transform: to_number}
      E: {path: $.traits.c, transform: to_bool}
      F: {path: $.traits.a, transform: [split, join, truncate], truncate: 3}
      G: {path: $.traits.a, transform: [{replace: {pattern: "(a+)", replacement: "<\\\\1>"}}, {split: {index: 1}}]}
      H: {path: $.traits.c, transform: [coalesce, {coalesce: [$.traits.b, x]}]}
      I: {template: "{{ traits.a }}-{{ properties.a }}", default: "{{ traits.c }}"}
""", "app.yaml")
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=12)
_dates = st.one_of(st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()), st.integers(), st.floats(),
                   st.text(max_size=30))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(_json, _dates)), _json)
def test_no_event_makes_mapping_raise_whatever_the_transforms(traits: dict[str, Any], properties: Any) -> None:
    event = Event("app", {"type": "identify", "traits": traits, "properties": properties})
    [result] = route({"app": EVERY_TRANSFORM}, event)
    assert isinstance(result, (RecordOp, Outcome))


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", 10 ** 400, 1e300,
                                   float("nan"), float("inf")])
def test_dates_beyond_the_calendar_are_mapping_errors(value: Any) -> None:
    source = load_text("source: app\nactions:\n  - {name: d, when: type exists, object: Lead, operation: create, "
                       "fields: {C: {path: $.b, transform: to_datetime}}}\n", "app.yaml")
    [result] = route({"app": source}, Event("app", {"type": "identify", "b": value}))
    assert isinstance(result, Outcome) and result.error_code == "MAPPING_ERROR" and result.fields == ("C",)


def test_a_template_with_every_placeholder_missing_is_not_written_even_under_policy_always() -> None:
    source = load_text("source: app\nactions:\n  - {name: t, when: type exists, object: Lead, operation: create, "
                       "fields: {Description: {template: 'Plan: {{ traits.plan }}', policy: always}, "
                       "Title: {path: $.traits.title, policy: always}}}\n", "app.yaml")
    [op] = route({"app": source}, Event("app", {"type": "identify", "traits": {"title": None}}))
    assert isinstance(op, RecordOp)
    assert {k: v.value for k, v in op.fields.items()} == {"Title": None}  # an explicit null clears; no plan: nothing
