"""Delivery against the emulator: lookups, coalescing, policies, retries, outcomes for every event."""

from __future__ import annotations

from typing import Any

from delivery_support import ops_for

from destination.deliver import Delivery
from destination.outcomes import Status

LEADS = """    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields:
      Email: $.traits.email
      LastName: {path: $.traits.last_name, default: Unknown}
      Company: {path: $.traits.company, default: n/a}
      Title: $.traits.title
      Phone: {path: $.traits.phone, policy: set_if_empty}
      Description: {path: $.traits.note, policy: most_recent}
"""


def _calls(emulator: Any) -> dict[str, int]:
    return dict(emulator.state.usage.by_endpoint)


async def test_a_batch_costs_one_query_and_one_write_and_merges_events_on_one_record(
        delivery: Delivery, tls_emulator: Any) -> None:
    bodies = [{"traits": {"email": f"u{i}@x.example", "last_name": f"U{i}"}} for i in range(150)]
    bodies += [{"traits": {"email": "U1@x.example", "title": "CTO"}}]  # same record as event 1, other case
    before = _calls(tls_emulator)
    outcomes = await delivery.deliver(ops_for(LEADS, bodies))
    after = _calls(tls_emulator)
    assert len(outcomes) == 151 and all(o.status is Status.SUCCEEDED for o in outcomes)
    assert after.get("query", 0) - before.get("query", 0) == 1
    assert after["composite/sobjects"] - before.get("composite/sobjects", 0) == 1
    leads = tls_emulator.state.store.records("Lead")
    assert len(leads) == 150
    merged = next(r for r in leads if r["Email"].lower() == "u1@x.example")
    # the later event's value wins per field, but its default (no last_name) never replaces the first's value
    assert (merged["LastName"], merged["Title"]) == ("U1", "CTO")
    first = next(o for o in outcomes if o.event.body["traits"]["email"] == "u1@x.example")
    last = next(o for o in outcomes if o.event.body["traits"]["email"] == "U1@x.example")
    assert first.record_id == last.record_id == merged["Id"] and first.created and not last.created


async def test_existing_records_are_updated_with_policies_and_unchanged_values_skipped(
        delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    lead_id = store.insert("Lead", {"LastName": "Old", "Company": "C", "Email": "a@x.example", "Phone": "111",
                                    "Description": "old note"}).id
    outcomes = await delivery.deliver(ops_for(LEADS, [
        {"traits": {"email": "a@x.example", "last_name": "Old", "company": "C", "phone": "999",
                    "note": "stale"}, "timestamp": "2001-01-01T00:00:00Z"}]))
    assert outcomes[0].status is Status.SKIPPED and "NOTHING_TO_CHANGE" in (outcomes[0].reason or "")
    outcomes = await delivery.deliver(ops_for(LEADS, [
        {"traits": {"email": "a@x.example", "last_name": "New", "phone": "999", "note": "fresh"},
         "timestamp": "2999-01-01T00:00:00Z"}]))
    assert outcomes[0].status is Status.SUCCEEDED and outcomes[0].created is False
    record = store.get(lead_id)[1]
    assert (record["LastName"], record["Phone"], record["Description"]) == ("New", "111", "fresh")


async def test_update_not_found_and_multiple_matches_are_failed_outcomes(delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    for name in ("A", "B"):
        store.insert("Contact", {"LastName": name, "Email": "same@x.example"})
    update = """    object: Contact
    operation: update
    match: {any: {Email: $.traits.email}}
    fields: {Title: $.traits.title}
"""
    outcomes = await delivery.deliver(ops_for(update, [{"traits": {"email": "none@x.example", "title": "x"}},
                                                       {"traits": {"email": "same@x.example", "title": "x"}}]))
    codes = sorted(o.error_code or "" for o in outcomes)
    assert codes == ["MULTIPLE_MATCHES", "NOT_FOUND"]
    newest = update.replace("    fields:", "    on_many_matches: newest\n    fields:")
    outcomes = await delivery.deliver(ops_for(newest, [{"traits": {"email": "same@x.example", "title": "VP"}}]))
    assert outcomes[0].status is Status.SUCCEEDED
    assert sorted(r["Title"] or "" for r in store.records("Contact")) == ["", "VP"]


async def test_native_upsert_by_external_id_needs_no_query(delivery: Delivery, tls_emulator: Any) -> None:
    action = """    object: Account
    operation: upsert
    match: {any: {External_Id__c: $.groupId}}
    fields: {Name: $.traits.name}
"""
    before = _calls(tls_emulator)
    outcomes = await delivery.deliver(ops_for(action, [{"groupId": "g1", "traits": {"name": "One"}},
                                                       {"groupId": "G1", "traits": {"name": "One again"}},
                                                       {"groupId": "g2", "traits": {"name": "Two"}}]))
    after = _calls(tls_emulator)
    assert after.get("query", 0) == before.get("query", 0)
    assert after["composite/sobjects"] - before.get("composite/sobjects", 0) == 1
    assert all(o.status is Status.SUCCEEDED for o in outcomes) and outcomes[0].record_id == outcomes[1].record_id
    assert sorted(r["Name"] for r in tls_emulator.state.store.records("Account")) == ["One again", "Two"]


async def test_lock_errors_are_retried_for_just_those_records(delivery: Delivery, tls_emulator: Any) -> None:
    tls_emulator.state.faults.update({"lock_error_rate": 0.3, "seed": 5})
    bodies = [{"traits": {"email": f"l{i}@x.example"}} for i in range(100)]
    outcomes = await delivery.deliver(ops_for(LEADS, bodies))
    assert all(o.status is Status.SUCCEEDED for o in outcomes)
    assert max(o.attempts for o in outcomes) > 1
    assert len(tls_emulator.state.store.records("Lead")) == 100


async def test_permanent_errors_fail_only_their_events_with_salesforce_details(delivery: Delivery,
                                                                             tls_emulator: Any) -> None:
    bodies = [{"traits": {"email": "ok@x.example"}}, {"traits": {"email": "bad@x.example", "title": "x" * 200}}]
    uncut = LEADS.replace("Title: $.traits.title", "Title: {path: $.traits.title, truncate: false}")
    outcomes = {o.event.body["traits"]["email"]: o for o in await delivery.deliver(ops_for(uncut, bodies))}
    assert outcomes["ok@x.example"].status is Status.SUCCEEDED
    bad = outcomes["bad@x.example"]
    assert (bad.status, bad.error_code, bad.fields) == (Status.FAILED, "STRING_TOO_LONG", ("Title",))


async def test_retry_without_failing_fields_drops_them_and_warns(delivery: Delivery, tls_emulator: Any) -> None:
    action = LEADS + "      Status: $.traits.status\n    retry_without_failing_fields: true\n"
    outcomes = await delivery.deliver(ops_for(action, [{"traits": {"email": "p@x.example", "status": "Bogus"}}]))
    assert outcomes[0].status is Status.SUCCEEDED and "dropped Status" in outcomes[0].warnings[0]
    assert tls_emulator.state.store.records("Lead")[0]["Status"] == "Open - Not Contacted"


async def test_updates_to_converted_leads_follow_to_the_contact(delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    lead_id = store.insert("Lead", {"LastName": "L", "Company": "C", "Email": "c@x.example"}).id
    store.convert_lead(lead_id)
    action = LEADS + "    follow_converted_leads: true\n"
    outcomes = await delivery.deliver(ops_for(action, [{"traits": {"email": "c@x.example", "title": "Boss"}}]))
    contact_id = store.get(lead_id)[1]["ConvertedContactId"]
    assert outcomes[0].status is Status.SUCCEEDED and outcomes[0].record_id == contact_id
    assert store.get(contact_id)[1]["Title"] == "Boss"


async def test_parent_lookup_by_domain_sets_the_account(delivery: Delivery, tls_emulator: Any) -> None:
    store = tls_emulator.state.store
    acme = store.insert("Account", {"Name": "Acme", "Website": "https://www.acme.example/about"}).id
    action = """    object: Contact
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: x}
    lookups:
      AccountId:
        object: Account
        match: {any: {Website: {path: $.traits.email, transform: email_domain, compare: domain}}}
"""
    outcomes = await delivery.deliver(ops_for(action, [{"traits": {"email": "jo@ACME.example"}},
                                                       {"traits": {"email": "al@other.example"}}]))
    assert all(o.status is Status.SUCCEEDED for o in outcomes)
    by_email = {r["Email"]: r for r in store.records("Contact")}
    assert by_email["jo@ACME.example"]["AccountId"] == acme and by_email["al@other.example"]["AccountId"] is None


async def test_bulk_mode_maps_every_row_back_to_its_event(delivery: Delivery, tls_emulator: Any) -> None:
    action = """    object: Survey_Response__c
    operation: create
    mode: bulk
    fields: {Score__c: {path: $.properties.score, transform: to_number}, Sentiment__c: $.properties.s}
"""
    bodies = [{"properties": {"score": i, "s": "Positive"}} for i in range(40)]
    bodies[3] = {"properties": {"score": 3, "s": "Furious"}}
    outcomes = await delivery.deliver(ops_for(action, bodies))
    assert len(outcomes) == 40
    failed = [o for o in outcomes if o.status is Status.FAILED]
    assert [o.event.body["properties"]["score"] for o in failed] == [3]
    assert failed[0].error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert len(tls_emulator.state.store.records("Survey_Response__c")) == 39


async def test_request_limit_exceeded_pauses_and_nothing_is_dropped(delivery: Delivery, tls_emulator: Any) -> None:
    tls_emulator.state.faults.update({"limit_exceeded_for_seconds": 2})
    outcomes = await delivery.deliver(ops_for(LEADS, [{"traits": {"email": "r@x.example"}}]))
    assert outcomes[0].status is Status.SUCCEEDED and delivery.budget.pauses >= 1


async def test_a_create_already_confirmed_for_a_message_id_is_not_sent_again(tls_emulator: Any, tmp_path: Any) -> None:
    from sf_support import connection_for

    from destination.salesforce.client import SalesforceClient
    from destination.synclog import open_sync_log

    action = "    object: Case\n    operation: create\n    fields: {Subject: $.properties.s}\n"
    async with SalesforceClient(connection_for(tls_emulator)) as client, \
            open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as log:
        delivery = Delivery({"default": client}, sync_log=log)
        ops = ops_for(action, [{"properties": {"s": "once"}}])
        first = await delivery.deliver(ops)
        await log.record(first)
        again = await delivery.deliver(ops)  # the same event, redelivered after a crash
    assert again[0].status is Status.SUCCEEDED and again[0].record_id == first[0].record_id
    assert "not sent again" in again[0].warnings[0]
    assert len(tls_emulator.state.store.records("Case")) == 1
