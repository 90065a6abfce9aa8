"""Delivery as an integration user with a restricted profile (the default org's restricted@emulator.test):
each permission error reaches the event's outcome with Salesforce's code and fields, over REST and Bulk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from delivery_support import ops_for
from sf_support import connection_for

from destination.budget import Budget
from destination.deliver import Delivery
from destination.outcomes import Status
from destination.salesforce.client import SalesforceClient
from destination.salesforce.connection import AuthMethod, AuthSettings

RESTRICTED = AuthSettings(AuthMethod.CLIENT_CREDENTIALS, "restricted-client", "restricted-secret")
LEAD = """    object: Lead
    operation: create
    fields:
      Email: $.traits.email
      LastName: Ng
      Company: Acme
      AnnualRevenue: $.traits.revenue
"""


@pytest.fixture
async def delivery(tls_emulator: Any) -> AsyncIterator[Delivery]:
    async with SalesforceClient(connection_for(tls_emulator, RESTRICTED), backoff_initial=0.01,
                                backoff_max=0.05) as client:
        client.bulk.poll_initial = 0.05
        yield Delivery({"default": client}, budget=Budget(recheck_seconds=0.2), backoff_seconds=0.01)


async def test_a_read_only_field_fails_only_the_events_that_write_it(delivery: Delivery, tls_emulator: Any) -> None:
    bodies = [{"traits": {"email": "a@x.example"}}, {"traits": {"email": "b@x.example", "revenue": 5}}]
    outcomes = {o.event.body["traits"]["email"]: o for o in await delivery.deliver(ops_for(LEAD, bodies))}
    assert outcomes["a@x.example"].status is Status.SUCCEEDED
    bad = outcomes["b@x.example"]
    assert (bad.status, bad.error_code, bad.fields) == (Status.FAILED, "INVALID_FIELD_FOR_INSERT_UPDATE",
                                                        ("AnnualRevenue",))
    assert "verify that it is read/write for your profile or permission set" in (bad.message or "")


async def test_retry_without_failing_fields_drops_a_field_the_profile_protects(delivery: Delivery,
                                                                               tls_emulator: Any) -> None:
    action = LEAD + "    retry_without_failing_fields: true\n"
    [outcome] = await delivery.deliver(ops_for(action, [{"traits": {"email": "b@x.example", "revenue": 5}}]))
    assert outcome.status is Status.SUCCEEDED and "dropped AnnualRevenue" in outcome.warnings[0]
    assert tls_emulator.state.store.records("Lead")[0]["AnnualRevenue"] is None


async def test_a_missing_create_permission_fails_every_event(delivery: Delivery) -> None:
    action = "    object: Contact\n    operation: create\n    fields: {LastName: $.traits.name}\n"
    outcomes = await delivery.deliver(ops_for(action, [{"traits": {"name": "A"}}, {"traits": {"name": "B"}}]))
    assert {(o.status, o.error_code) for o in outcomes} == {(Status.FAILED, "INSUFFICIENT_ACCESS_OR_READONLY")}


async def test_bulk_rows_carry_the_permission_error(delivery: Delivery) -> None:
    action = LEAD + "    mode: bulk\n"
    bodies = [{"traits": {"email": "a@x.example", "revenue": 1}}, {"traits": {"email": "b@x.example", "revenue": 2}}]
    outcomes = await delivery.deliver(ops_for(action, bodies))
    assert {(o.status, o.error_code, o.fields) for o in outcomes} == {
        (Status.FAILED, "INVALID_FIELD_FOR_INSERT_UPDATE", ("AnnualRevenue",))}


async def test_a_matcher_on_a_field_the_user_cannot_see_fails_with_invalid_field(delivery: Delivery,
                                                                                 tls_emulator: Any) -> None:
    tls_emulator.state.store.insert("Lead", {"LastName": "Ng", "Company": "Acme", "Rating": "Hot"})
    action = "    object: Lead\n    operation: update\n    match: {any: {Rating: $.traits.rating}}\n" \
             "    fields: {Title: $.traits.title}\n"
    [outcome] = await delivery.deliver(ops_for(action, [{"traits": {"rating": "Hot", "title": "CTO"}}]))
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "INVALID_FIELD")
    assert "No such column 'Rating'" in (outcome.message or "")
