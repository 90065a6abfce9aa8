"""`on_duplicate`: when the org's duplicate rules block a create, `update_existing` writes to the record
Salesforce matched (its Id from duplicateResult) and warns; `fail` (the default) fails the event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from delivery_support import ops_for
from running_emulator import RunningEmulator, started
from sf_support import connection_for

from destination.actions.check import Locator, risky_choices
from destination.actions.loader import ConfigError, load_text
from destination.budget import Budget
from destination.deliver import Delivery
from destination.outcomes import Status
from destination.salesforce.client import SalesforceClient
from salesforce_emulator.state import build_state

ORG = """extends: default
objects:
  Lead:
    duplicate_rules:
      - {name: Lead_Same_Email, match_fields: [Email]}
"""
CREATE = """    object: Lead
    operation: create
    fields:
      Email: $.traits.email
      LastName: $.traits.last_name
      Company: Acme
      Title: $.traits.title
"""
UPSERT = """    object: Lead
    operation: upsert
    match: {any: {External_Id__c: $.userId}}
    fields:
      Email: $.traits.email
      LastName: $.traits.last_name
      Company: Acme
      Title: $.traits.title
"""


@pytest.fixture
def dup_emulator(tmp_path: Path, tls_dir: Path) -> Iterator[RunningEmulator]:
    org = tmp_path / "org.yaml"
    org.write_text(ORG)
    with started(build_state(org), tls_dir=tls_dir) as running:
        yield running


@pytest.fixture
async def delivery(dup_emulator: RunningEmulator) -> AsyncIterator[Delivery]:
    async with SalesforceClient(connection_for(dup_emulator), backoff_initial=0.01, backoff_max=0.05) as client:
        yield Delivery({"default": client}, budget=Budget(recheck_seconds=0.2), backoff_seconds=0.01)


def _existing(emulator: RunningEmulator) -> str:
    result = emulator.state.store.insert("Lead", {"LastName": "Old", "Company": "Acme", "Email": "ada@x.example",
                                                  "Title": "Engineer"})
    assert result.id is not None
    return result.id


EVENT = {"userId": "u-1", "traits": {"email": "ADA@x.example", "last_name": "Lovelace", "title": "CTO"}}


async def test_a_blocked_create_fails_by_default_naming_the_duplicate(delivery: Delivery,
                                                                      dup_emulator: RunningEmulator) -> None:
    existing = _existing(dup_emulator)
    [outcome] = await delivery.deliver(ops_for(CREATE, [EVENT]))
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "DUPLICATES_DETECTED")
    assert existing in outcome.message
    assert len(dup_emulator.state.store.records("Lead")) == 1


async def test_update_existing_writes_the_create_onto_the_matched_record(delivery: Delivery,
                                                                         dup_emulator: RunningEmulator) -> None:
    existing = _existing(dup_emulator)
    [outcome] = await delivery.deliver(ops_for(CREATE + "    on_duplicate: update_existing\n", [EVENT]))
    assert outcome.status is Status.SUCCEEDED, outcome
    assert outcome.record_id == existing and outcome.created is False
    assert any(existing in w and "Lead_Same_Email" in w for w in outcome.warnings), outcome.warnings
    [lead] = dup_emulator.state.store.records("Lead")
    assert (lead["Id"], lead["Title"], lead["LastName"]) == (existing, "CTO", "Lovelace")


async def test_update_existing_on_an_upsert_gives_the_matched_record_the_key(delivery: Delivery,
                                                                             dup_emulator: RunningEmulator) -> None:
    existing = _existing(dup_emulator)
    [outcome] = await delivery.deliver(ops_for(UPSERT + "    on_duplicate: update_existing\n", [EVENT]))
    assert (outcome.status, outcome.record_id) == (Status.SUCCEEDED, existing), outcome
    [lead] = dup_emulator.state.store.records("Lead")
    assert (lead["External_Id__c"], lead["Title"]) == ("u-1", "CTO")
    # the next event for that user upserts by key, with no duplicate in the way
    [again] = await delivery.deliver(ops_for(UPSERT + "    on_duplicate: update_existing\n",
                                             [{**EVENT, "traits": {**EVENT["traits"], "title": "CEO"}}]))
    assert (again.status, again.record_id, again.warnings) == (Status.SUCCEEDED, existing, ())
    assert dup_emulator.state.store.records("Lead")[0]["Title"] == "CEO"


async def test_creates_without_a_duplicate_are_untouched(delivery: Delivery, dup_emulator: RunningEmulator) -> None:
    [outcome] = await delivery.deliver(ops_for(CREATE + "    on_duplicate: update_existing\n", [EVENT]))
    assert (outcome.status, outcome.created, outcome.warnings) == (Status.SUCCEEDED, True, ())


def test_update_existing_is_refused_for_update_and_delete() -> None:
    text = ("source: app\nactions:\n  - name: a\n    when: type exists\n    object: Lead\n    operation: update\n"
            "    match: {any: {Email: $.traits.email}}\n    on_duplicate: update_existing\n")
    with pytest.raises(ConfigError, match="applies to create and upsert"):
        load_text(text, "t.yaml")


def test_check_warns_that_bulk_mode_cannot_reuse_duplicates(tmp_path: Path) -> None:
    text = ("source: app\nactions:\n  - name: a\n    when: type exists\n" + CREATE
            + "    on_duplicate: update_existing\n    mode: bulk\n")
    (tmp_path / "app.yaml").write_text(text)
    problems = risky_choices(load_text(text, "app.yaml"), Locator(str(tmp_path / "app.yaml")))
    [problem] = [p for p in problems if p.path == "actions[0].on_duplicate"]  # (and: no idempotency_field)
    assert (problem.severity, problem.line) == ("warning", 12)
