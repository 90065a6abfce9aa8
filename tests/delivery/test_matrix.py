"""Every operation, matcher kind (Id, external ID, field AND, field OR, domain) and mode (rest, bulk)
against the emulator: the records end as the events say, and every event has its outcome."""

from __future__ import annotations

from typing import Any

import pytest
from delivery_support import ops_for

from destination.deliver import Delivery
from destination.outcomes import Status

MATCHERS = {
    "id": "{any: {Id: $.properties.sfid}}",
    "external_id": "{any: {External_Id__c: $.properties.key}}",
    "field_and": "{all: {Name: $.properties.name, Phone: $.properties.phone}}",
    "field_or": "{any: {Phone: $.properties.phone, Name: $.properties.name}}",
    "domain": "{any: {Website: {path: $.properties.site, compare: domain}}}",
}


def _seed(emulator: Any) -> str:
    return emulator.state.store.insert("Account", {"Name": "Acme", "Phone": "111", "External_Id__c": "K1",
                                                   "Website": "https://www.acme.example/"}).id


def _body(existing: str | None) -> dict[str, Any]:
    return {"properties": {"sfid": existing or "0018c0000000099AAA", "key": "K1" if existing else "K2",
                           "name": "Acme" if existing else "Globex", "phone": "111" if existing else "222",
                           "site": "acme.example" if existing else "globex.example", "desc": "written"}}


@pytest.mark.parametrize("mode", ["rest", "bulk"])
@pytest.mark.parametrize("matcher", list(MATCHERS))
@pytest.mark.parametrize("operation", ["update", "upsert", "delete"])
async def test_operation_by_matcher_by_mode(delivery: Delivery, tls_emulator: Any, operation: str, matcher: str,
                                            mode: str) -> None:
    existing = _seed(tls_emulator)
    fields = "" if operation == "delete" else "    fields: {Description: $.properties.desc, Name: $.properties.name}\n"
    action = (f"    object: Account\n    operation: {operation}\n    match: {MATCHERS[matcher]}\n    mode: {mode}\n"
              + fields)
    hit, miss = ops_for(action, [_body(existing), _body(None)])
    outcomes = {o.event.message_id: o for o in await delivery.deliver([hit, miss])}
    assert len(outcomes) == 2
    store = tls_emulator.state.store
    found = outcomes[hit.event.message_id]
    assert found.status is Status.SUCCEEDED, found
    assert found.record_id == existing
    if operation == "delete":
        assert store.get(existing) is None
    else:
        assert store.get(existing)[1]["Description"] == "written"
    missing = outcomes[miss.event.message_id]
    if operation == "upsert":  # no match → create, whatever the matcher (an unknown Id included)
        assert missing.status is Status.SUCCEEDED and missing.created
        assert store.get(missing.record_id)[1]["Name"] == "Globex"
    else:
        assert missing.status is Status.FAILED
        assert missing.error_code in ("NOT_FOUND", "ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY")


@pytest.mark.parametrize("mode", ["rest", "bulk"])
async def test_create_in_both_modes(delivery: Delivery, tls_emulator: Any, mode: str) -> None:
    action = f"    object: Account\n    operation: create\n    mode: {mode}\n    fields: {{Name: $.properties.name}}\n"
    outcomes = await delivery.deliver(ops_for(action, [_body(None), _body(None)]))
    assert [o.status for o in outcomes] == [Status.SUCCEEDED] * 2 and all(o.created for o in outcomes)
    assert len(tls_emulator.state.store.records("Account")) == 2
