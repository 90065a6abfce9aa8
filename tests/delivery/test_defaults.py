"""Defaults and templates through the emulator: a default fills a create or an empty field and never
replaces a value the record holds; a template with every placeholder missing writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from delivery_support import ops_for

from destination.actions.loader import load_dir
from destination.deliver import Delivery
from destination.events import Event
from destination.operations import RecordOp
from destination.outcomes import Outcome, Status
from destination.route import route

SHIPPED = load_dir(Path(__file__).resolve().parents[2] / "actions")


async def _shipped(delivery: Delivery, source: str, body: dict[str, Any]) -> list[Outcome]:
    results = route(SHIPPED, Event(source, {"messageId": f"m-{id(body)}", **body}))
    ops = [r for r in results if isinstance(r, RecordOp)]
    assert len(ops) == len(results) == 1, results
    return await delivery.deliver(ops)


async def test_an_identify_without_last_name_or_company_keeps_the_existing_leads_values(
        delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    lead_id = store.insert("Lead", {"Email": "ada@example.com", "LastName": "Lovelace",
                                    "Company": "Analytical Engines", "Description": "Plan: pro"}).id
    outcomes = await _shipped(delivery, "web-app", {"type": "identify", "userId": "u1",
                                                    "traits": {"email": "ada@example.com", "first_name": "Ada"}})
    assert outcomes[0].status is Status.SUCCEEDED and outcomes[0].record_id == lead_id
    record = store.get(lead_id)[1]
    assert (record["LastName"], record["Company"], record["Description"], record["FirstName"]) == (
        "Lovelace", "Analytical Engines", "Plan: pro", "Ada")


async def test_the_shipped_lead_defaults_fill_a_new_lead(delivery: Delivery, tls_emulator: Any) -> None:
    outcomes = await _shipped(delivery, "web-app", {"type": "identify", "userId": "u2",
                                                    "traits": {"email": "new@example.com"}})
    assert outcomes[0].status is Status.SUCCEEDED and outcomes[0].created
    record = tls_emulator.state.store.records("Lead")[0]
    assert (record["LastName"], record["Company"], record["Description"]) == ("Unknown", "[not provided]", None)


async def test_a_group_without_a_name_keeps_the_accounts_name_and_names_a_new_one_from_the_template(
        delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    account_id = store.insert("Account", {"Name": "Analytical Engines", "External_Id__c": "g1"}).id
    outcomes = await _shipped(delivery, "web-app", {"type": "group", "userId": "u1", "groupId": "g1",
                                                    "traits": {"industry": "Computing"}})
    assert outcomes[0].status is Status.SUCCEEDED and outcomes[0].record_id == account_id
    assert store.get(account_id)[1]["Name"] == "Analytical Engines"
    outcomes = await _shipped(delivery, "web-app", {"type": "group", "userId": "u1", "groupId": "g2", "traits": {}})
    assert outcomes[0].status is Status.SUCCEEDED and outcomes[0].created
    created = store.get(outcomes[0].record_id)[1]
    assert created["Name"] == "g2"  # the default template rendered, not the literal {{ groupId }}


TEMPLATED = """    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields:
      Email: $.traits.email
      LastName: {path: $.traits.last_name, default: "{{ traits.email }} (no name)"}
      Company: {path: $.traits.company, default: Unknown, policy: always}
      Description: "Plan: {{ properties.plan }}"
      Title: {path: $.traits.title, default: "{{ traits.role }}"}
"""


async def test_a_template_with_its_placeholders_missing_writes_nothing_and_a_default_template_renders(
        delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    lead_id = store.insert("Lead", {"Email": "a@x.example", "LastName": "Real", "Company": "Acme",
                                    "Description": "Plan: pro", "Title": ""}).id
    outcomes = await delivery.deliver(ops_for(TEMPLATED, [{"traits": {"email": "a@x.example"}},
                                                          {"traits": {"email": "b@x.example", "role": "CTO"}}]))
    assert [o.status for o in outcomes] == [Status.SUCCEEDED, Status.SUCCEEDED]
    kept = store.get(lead_id)[1]
    # policy: always lets a default replace a value; nothing else does, and "Plan: " is not written
    assert (kept["LastName"], kept["Company"], kept["Description"], kept["Title"]) == ("Real", "Unknown",
                                                                                        "Plan: pro", "")
    created = next(r for r in store.records("Lead") if r["Email"] == "b@x.example")
    assert (created["LastName"], created["Title"], created["Description"]) == ("b@x.example (no name)", "CTO", None)


async def test_a_default_fills_a_field_the_record_holds_empty(delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    lead_id = store.insert("Lead", {"Email": "e@x.example", "LastName": "Real", "Company": "Acme"}).id
    outcomes = await delivery.deliver(ops_for(TEMPLATED, [{"traits": {"email": "e@x.example", "role": "VP"}}]))
    assert outcomes[0].status is Status.SUCCEEDED
    assert store.get(lead_id)[1]["Title"] == "VP"


async def test_defaults_on_an_external_id_upsert_still_never_replace_values(delivery: Delivery,
                                                                            tls_emulator: Any) -> None:
    action = """    object: Account
    operation: upsert
    match: {any: {External_Id__c: $.groupId}}
    fields:
      Name: {path: $.traits.name, default: "{{ groupId }}"}
      Industry: $.traits.industry
"""
    store = tls_emulator.state.store
    account_id = store.insert("Account", {"Name": "Kept", "External_Id__c": "x1"}).id
    # the first op has no default: the batch must still read current values for the second one
    outcomes = await delivery.deliver(ops_for(action, [{"groupId": "x2", "traits": {"name": "Other"}},
                                                       {"groupId": "x1", "traits": {"industry": "Energy"}}]))
    assert all(o.status is Status.SUCCEEDED for o in outcomes)
    assert (store.get(account_id)[1]["Name"], store.get(account_id)[1]["Industry"]) == ("Kept", "Energy")
