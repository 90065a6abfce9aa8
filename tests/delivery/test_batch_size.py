"""Batch-level failures caused by the customer's org (a trigger or flow hitting an Apex governor limit
fails a whole call): the writer splits the call in halves so one bad record fails alone, and shrinks the
object's write size, growing it back as calls go through."""

from __future__ import annotations

from typing import Any

import pytest
from delivery_support import ops_for

from destination.deliver import Delivery
from destination.outcomes import Status

CASES = """    object: Case
    operation: create
    {mode}
    fields: {{Subject: $.properties.s}}
"""


def _calls(emulator: Any) -> int:
    return emulator.state.usage.by_endpoint.get("composite/sobjects", 0)


@pytest.mark.parametrize("mode", ["rest", "bulk"])
async def test_one_bad_record_fails_alone_when_the_org_fails_its_whole_call(delivery: Delivery, tls_emulator: Any,
                                                                            mode: str) -> None:
    tls_emulator.state.faults.update({"trigger_error_marker": "poison"})
    bodies = [{"properties": {"s": "poison" if i == 17 else f"case {i}"}} for i in range(40)]
    outcomes = await delivery.deliver(ops_for(CASES.format(mode=f"mode: {mode}"), bodies))
    failed = [o for o in outcomes if o.status is Status.FAILED]
    assert [o.event.body["properties"]["s"] for o in failed] == ["poison"]
    assert failed[0].error_code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    assert "Too many SOQL queries: 101" in (failed[0].message or "")
    assert len(outcomes) == 40 and len(tls_emulator.state.store.records("Case")) == 39


async def test_the_write_size_halves_on_a_governor_limit_and_grows_back_after_successes(
        delivery: Delivery, tls_emulator: Any) -> None:
    action = CASES.format(mode="")
    key = ("case", "create", "rest")
    tls_emulator.state.faults.update({"trigger_error_above": 60})
    first = await delivery.deliver(ops_for(action, [{"properties": {"s": f"a{i}"}} for i in range(200)]))
    assert all(o.status is Status.SUCCEEDED for o in first) and len(tls_emulator.state.store.records("Case")) == 200
    size = delivery.sizes.size(key)
    assert size is not None and size <= 60
    before = _calls(tls_emulator)
    second = await delivery.deliver(ops_for(action, [{"properties": {"s": f"b{i}"}} for i in range(200)]))
    assert all(o.status is Status.SUCCEEDED for o in second)
    assert _calls(tls_emulator) - before <= 200 // size + 2  # sized calls; at most one over-limit call and its halves
    tls_emulator.state.faults.update({"trigger_error_above": None})  # the org's automation is fixed
    for round_ in range(12):
        await delivery.deliver(ops_for(action, [{"properties": {"s": f"c{round_}-{i}"}} for i in range(200)]))
    assert delivery.sizes.size(key) is None  # throughput is back: one call per 200
    before = _calls(tls_emulator)
    await delivery.deliver(ops_for(action, [{"properties": {"s": f"d{i}"}} for i in range(200)]))
    assert _calls(tls_emulator) - before == 1
