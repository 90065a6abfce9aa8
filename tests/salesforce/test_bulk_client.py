"""Bulk API 2.0 through the client: one result per input row, correlated by carried key, not order."""

from __future__ import annotations

import asyncio

import pytest

from destination.salesforce.bulk import BulkIngest, cell, to_csv
from destination.salesforce.client import SalesforceClient
from destination.salesforce.errors import ErrorKind


def test_csv_is_crlf_rfc4180_and_null_only_where_meant() -> None:
    data, keys = to_csv(["Name", "Phone", "Description"], [{"Name": 'Acme, "Inc"', "Phone": None},
                                                             {"Name": "B", "Description": "two\nlines"}])
    assert data == b'Name,Phone,Description\r\n"Acme, ""Inc""",#N/A,\r\nB,,"two\nlines"\r\n'
    assert keys == [('Acme, "Inc"', "#N/A", ""), ("B", "", "two\nlines")]
    assert (cell(True), cell(3.5), cell(None)) == ("true", "3.5", "#N/A")


async def test_insert_maps_every_row_to_its_result(sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    rows = [{"LastName": f"L{i}", "Email": f"l{i}@example.com"} for i in range(300)]
    rows[5] = {"LastName": "Bad", "Email": "not-an-email"}
    rows[6] = {"Email": "nolast@example.com"}
    rows[7] = {"LastName": "L8", "Email": "l8@example.com"}  # identical to row 8: either result fits either row
    bulk = BulkIngest(sf, poll_initial=0.05)
    results = await bulk.run("Contact", "insert", rows)
    assert len(results) == 300
    assert [i for i, r in enumerate(results) if not r.success] == [5, 6]
    assert results[5].error and results[5].error.code == "INVALID_EMAIL_ADDRESS"
    assert results[6].error and results[6].error.fields == ("LastName",)
    store = tls_emulator.state.store
    for i in (0, 100, 299):
        found = store.get(results[i].id)
        assert found is not None and found[1]["Email"] == rows[i]["Email"]
    assert bulk.jobs[0].processed == 300 and bulk.jobs[0].failed == 2


async def test_upsert_update_and_delete_jobs(sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    bulk = BulkIngest(sf, poll_initial=0.05)
    first = await bulk.run("Account", "upsert", [{"External_Id__c": "A", "Name": "A"},
                                                 {"External_Id__c": "B", "Name": "B"}],
                           external_id_field="External_Id__c")
    assert [r.created for r in first] == [True, True]
    second = await bulk.run("Account", "upsert", [{"External_Id__c": "B", "Name": "B2", "Phone": None}],
                            external_id_field="External_Id__c")
    assert second[0].success and not second[0].created and second[0].id == first[1].id
    updated = await bulk.run("Account", "update", [{"Id": first[0].id, "Phone": "555"}])
    assert updated[0].success
    deleted = await bulk.run("Account", "delete", [{"Id": first[0].id}, {"Id": first[0].id}])
    assert sorted(r.success for r in deleted) == [False, True]


async def test_lock_errors_come_back_transient_per_row(sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    tls_emulator.state.faults.update({"lock_error_rate": 0.3, "seed": 11})
    results = await BulkIngest(sf, poll_initial=0.05).run("Account", "insert", [{"Name": f"N{i}"} for i in range(50)])
    failed = [r for r in results if not r.success]
    assert failed and all(r.kind is ErrorKind.TRANSIENT for r in failed)
    assert len(tls_emulator.state.store.records("Account")) == 50 - len(failed)


async def test_a_failed_job_fails_every_row_with_its_message(sf: SalesforceClient) -> None:
    results = await BulkIngest(sf, poll_initial=0.05).run("Account", "insert", [{"Name": "A", "Nope__c": "x"}])
    assert not results[0].success and results[0].error is not None
    assert "Nope__c" in results[0].error.message


async def test_uploads_over_the_size_limit_are_split_into_several_jobs(sf: SalesforceClient) -> None:
    bulk = BulkIngest(sf, poll_initial=0.05, max_upload_bytes=2_000)
    results = await bulk.run("Lead", "insert", [{"LastName": f"Lead number {i}", "Company": "C"} for i in range(200)])
    assert all(r.success for r in results) and len(bulk.jobs) > 1


async def test_cancelling_a_run_aborts_its_job(sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    bulk = BulkIngest(sf, poll_initial=0.05)
    task = asyncio.create_task(bulk.run("Lead", "insert", [{"LastName": f"L{i}", "Company": "C"}
                                                           for i in range(20000)]))
    for _ in range(400):  # cancel once the job is submitted (building 20,000 rows takes a while under load)
        if any(j.state in ("UploadComplete", "InProgress") for j in tls_emulator.state.bulk.jobs.values()):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    states = {job.state for job in tls_emulator.state.bulk.jobs.values()}
    assert states <= {"Aborted", "JobComplete"} and "Aborted" in states
