"""Mapping is a pure function: event → RecordOp, or a failed outcome naming source, action and field."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from destination.actions.loader import load_text
from destination.actions.model import Compare, Operation, Policy
from destination.actions.paths import MISSING, resolve
from destination.actions.values import domain_of, render_template
from destination.events import Event
from destination.mapgen import map_event  # the compiled mapping; test_mapgen.py holds it to the reference
from destination.operations import RecordOp
from destination.outcomes import Outcome, Status
from destination.route import route

SOURCE = load_text("""
source: app
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email, External_Id__c: $.userId}}
    fields:
      LastName: {path: $.traits.last_name, default: Unknown}
      Company: {path: $.traits.company, required: true}
      Website: {path: $.traits.site, transform: domain}
      NumberOfEmployees: {path: $.traits.size, transform: to_number}
      Description: "Plan: {{ traits.plan }}"
      Phone: {path: $.traits.phone, policy: always}
      LeadSource: Web
  - name: by-domain
    when: type = "group"
    object: Account
    operation: update
    match: {all: {Website: {path: $.traits.website, compare: domain}, Name: $.traits.name}}
    fields: {Description: x}
""", "app.yaml")


def _map(body: dict[str, Any], index: int = 0) -> RecordOp | Outcome:
    return map_event(SOURCE, SOURCE.actions[index], Event("app", body))


def test_an_event_maps_to_one_operation_with_values_and_policies() -> None:
    op = _map({"type": "identify", "userId": "u1", "traits": {"email": "a@b.co", "company": "Acme", "site":
                                                              "https://www.Acme.com/x", "size": "1,200",
                                                              "plan": "pro", "phone": ""}})
    assert isinstance(op, RecordOp) and op.operation is Operation.UPSERT
    assert [(m.field, m.value) for m in op.match.matchers()] == [("Email", "a@b.co"), ("External_Id__c", "u1")]  # type: ignore[union-attr]
    values = {k: v.value for k, v in op.fields.items()}
    assert values == {"LastName": "Unknown", "Company": "Acme", "Website": "acme.com", "NumberOfEmployees": 1200,
                      "Description": "Plan: pro", "Phone": None, "LeadSource": "Web"}
    assert op.fields["Phone"].policy is Policy.ALWAYS  # an explicit blank clears; an absent key is left alone
    absent = _map({"type": "identify", "userId": "u1", "traits": {"company": "Acme"}})
    assert isinstance(absent, RecordOp) and "Phone" not in absent.fields
    assert op.batch_key() == ("default", "lead", "upsert", "any(Email:exact,External_Id__c:exact)", "rest")


def test_blank_matchers_drop_out_of_any_but_fail_all() -> None:
    op = _map({"type": "identify", "userId": "u1", "traits": {"company": "Acme"}})
    assert isinstance(op, RecordOp) and [m.field for m in op.match.matchers()] == ["External_Id__c"]  # type: ignore[union-attr]
    none = _map({"type": "identify", "traits": {"company": "Acme"}})
    assert isinstance(none, Outcome) and none.status is Status.FAILED and "none of the matchers" in (none.message or "")
    partial = _map({"type": "group", "traits": {"website": "acme.com"}}, 1)
    assert isinstance(partial, Outcome) and partial.fields == ("Name",)
    domain = _map({"type": "group", "traits": {"website": "HTTP://www.ACME.com/about", "name": "A"}}, 1)
    assert isinstance(domain, RecordOp)
    assert domain.match.matchers()[0].value == "acme.com" and domain.match.matchers()[0].compare is Compare.DOMAIN  # type: ignore[union-attr]


def test_missing_required_and_failed_transforms_are_failed_outcomes_naming_the_field() -> None:
    missing = _map({"type": "identify", "userId": "u1", "traits": {}})
    assert isinstance(missing, Outcome) and missing.error_code == "MAPPING_ERROR" and missing.fields == ("Company",)
    assert "source app, action leads, field Company" in (missing.message or "")
    bad = _map({"type": "identify", "userId": "u1", "traits": {"company": "A", "size": "lots"}})
    assert isinstance(bad, Outcome) and bad.fields == ("NumberOfEmployees",) and "to_number" in (bad.message or "")


def test_routing_honours_the_integrations_opt_out_and_source_isolation() -> None:
    body = {"type": "identify", "userId": "u1", "traits": {"company": "A"}}
    assert isinstance(route({"app": SOURCE}, Event("app", body))[0], RecordOp)
    skipped = route({"app": SOURCE}, Event("app", {**body, "integrations": {"Salesforce": False}}))
    assert skipped[0].status is Status.SKIPPED  # type: ignore[union-attr]
    all_off = route({"app": SOURCE}, Event("app", {**body, "integrations": {"All": False, "Salesforce": True}}))
    assert isinstance(all_off[0], RecordOp)
    other = route({"app": SOURCE}, Event("other", body))
    assert other[0].status is Status.FAILED and other[0].error_code == "UNKNOWN_SOURCE"  # type: ignore[union-attr]
    no_action = route({"app": SOURCE}, Event("app", {"type": "page"}))
    assert no_action[0].status is Status.SKIPPED  # type: ignore[union-attr]


_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_scalars = st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.floats(allow_nan=False))


@given(st.lists(_keys, min_size=1, max_size=5), _scalars)
def test_a_path_resolves_exactly_the_nested_value(keys: list[str], value: Any) -> None:
    body: Any = value
    for key in reversed(keys):
        body = {key: body}
    assert resolve(body, "$." + ".".join(keys)) == value
    assert resolve(body, "$." + ".".join([*keys, "missing"])) is MISSING


@given(_keys, st.text(alphabet=st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)), max_size=30))
def test_templates_substitute_values_and_never_evaluate(key: str, text: str) -> None:
    expected = "" if not text.strip() else f"<{text}>"  # every placeholder blank: the whole template is blank
    assert render_template("<{{ " + key + " }}>", {key: text}) == expected
    assert render_template("{{ " + key + " }}", {}) == ""
    assert render_template("{{ __class__ }}", {"x": 1}) == ""


@given(st.sampled_from(["acme.com", "sub.acme.io"]), st.sampled_from(["", "http://", "https://", "HTTPS://"]),
       st.sampled_from(["", "www.", "WWW."]), st.sampled_from(["", "/", "/pricing?x=1", ":8080/a"]))
def test_domain_normalisation_strips_scheme_www_path_and_case(domain: str, scheme: str, www: str, path: str) -> None:
    assert domain_of(f"{scheme}{www}{domain.upper()}{path}") == domain
