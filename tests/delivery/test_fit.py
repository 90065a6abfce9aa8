"""Fitting operations to the describe, through the emulator: text cut to the field's length with a warning,
spread keys the object lacks dropped with a warning, numbers beyond the field fail only their own event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from delivery_support import ops_for

from destination.actions.loader import load_dir
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.events import Event
from destination.operations import RecordOp
from destination.outcomes import Outcome, Status
from destination.pipeline import Pipeline
from destination.route import route
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLogFilter

LEADS = """    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields:
      Email: $.traits.email
      LastName: {path: $.traits.last_name, default: Unknown}
      Company: {path: $.traits.company, default: n/a}
      Title: $.traits.title
"""


async def test_text_longer_than_its_field_is_cut_to_the_describe_length_with_a_warning(
        delivery: Delivery, tls_emulator: Any) -> None:
    outcomes = await delivery.deliver(ops_for(LEADS, [{"traits": {"email": "long@x.example", "title": "t" * 300}}]))
    assert outcomes[0].status is Status.SUCCEEDED
    assert outcomes[0].warnings == ("Title cut to its 128 characters (the value had 300)",)
    assert tls_emulator.state.store.records("Lead")[0]["Title"] == "t" * 128


async def test_fields_from_writes_known_keys_and_drops_unknown_ones_with_a_warning(
        delivery: Delivery, tls_emulator: Any) -> None:
    spread = LEADS + "    fields_from: {path: $.properties, rename: {employees: NumberOfEmployees}}\n"
    outcomes = await delivery.deliver(ops_for(spread, [
        {"traits": {"email": "s@x.example"}, "properties": {"Rating": "Hot", "employees": 12,
                                                            "Favourite_Colour__c": "green", "IsConverted": True}}]))
    assert outcomes[0].status is Status.SUCCEEDED
    assert set(outcomes[0].warnings) == {"fields_from: Lead has no field Favourite_Colour__c; left out",
                                         "fields_from: Lead cannot write the field IsConverted; left out"}
    record = tls_emulator.state.store.records("Lead")[0]
    assert (record["Rating"], record["NumberOfEmployees"], record["IsConverted"]) == ("Hot", 12, False)


async def test_a_number_beyond_its_field_fails_only_its_own_event(delivery: Delivery, tls_emulator: Any) -> None:
    action = """    object: Opportunity
    operation: create
    fields:
      Name: $.properties.name
      StageName: Prospecting
      CloseDate: "2026-12-01"
      Amount: $.properties.total
      Probability: {path: $.properties.chance, transform: to_number}
"""
    outcomes = await delivery.deliver(ops_for(action, [
        {"properties": {"name": "ok", "total": 12.5, "chance": "40"}},
        {"properties": {"name": "too big", "total": 1e20}},  # currency: 16 digits before the point
        {"properties": {"name": "too likely", "total": 1, "chance": "1000"}},  # percent(3, 0)
    ]))
    by_name = {o.event.body["properties"]["name"]: o for o in outcomes}
    assert by_name["ok"].status is Status.SUCCEEDED
    for name, field in (("too big", "Amount"), ("too likely", "Probability")):
        assert (by_name[name].status, by_name[name].error_code, by_name[name].fields) == (
            Status.FAILED, "MAPPING_ERROR", (field,))
    assert [r["Name"] for r in tls_emulator.state.store.records("Opportunity")] == ["ok"]


async def test_the_quick_start_order_with_a_huge_total_fails_alone(delivery: Delivery, tls_emulator: Any) -> None:
    sources = load_dir(Path(__file__).resolve().parents[2] / "actions")
    ops: list[RecordOp] = []
    failed: list[Outcome] = []
    for i, total in enumerate(["1e5000", "9.9e999", "1e1000000", "99.5"]):
        body = {"type": "track", "event": "Order Completed", "messageId": f"o{i}", "timestamp": "2026-12-01T00:00:00Z",
                "properties": {"order_id": f"o{i}", "total": total}}
        for result in route(sources, Event("web-app", body)):
            (ops if isinstance(result, RecordOp) else failed).append(result)  # type: ignore[arg-type]
    assert [o.error_code for o in failed] == ["MAPPING_ERROR"] * 3
    outcomes = await delivery.deliver(ops)
    assert [o.status for o in outcomes] == [Status.SUCCEEDED]
    assert tls_emulator.state.store.records("Opportunity")[0]["Amount"] == 99.5


async def test_through_the_pipeline_a_poison_number_fails_alone_and_its_neighbours_are_recorded(
        delivery: Delivery, tls_emulator: Any, tmp_path: Path) -> None:
    sources = load_dir(Path(__file__).resolve().parents[2] / "actions")
    log = open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}")
    async with log:
        pipeline = Pipeline(sources, delivery, log, batching=BatchingConfig(linger_ms=20))
        done: list[str] = []
        totals = {"n1": "10", "bad1": "1e5000", "n2": "20", "bad2": "9.9e999", "bad3": "1e1000000", "n3": 1e20}
        for message_id, total in totals.items():
            event = Event("web-app", {"type": "track", "event": "Order Completed", "messageId": message_id,
                                      "timestamp": "2026-12-01T00:00:00Z",
                                      "properties": {"order_id": message_id, "total": total}})
            await pipeline.submit(event, lambda m=message_id: done.append(m))
        await pipeline.drain()
        assert sorted(done) == sorted(totals)
        rows = {r.message_id: r for r in await log.rows(SyncLogFilter())}
        assert {m: rows[m].status for m in totals} == {
            "n1": Status.SUCCEEDED, "n2": Status.SUCCEEDED, "bad1": Status.FAILED, "bad2": Status.FAILED,
            "bad3": Status.FAILED, "n3": Status.FAILED}
        assert {rows[m].error_code for m in ("bad1", "bad2", "bad3", "n3")} == {"MAPPING_ERROR"}
    amounts = sorted(r["Amount"] for r in tls_emulator.state.store.records("Opportunity"))
    assert amounts == [10, 20]
