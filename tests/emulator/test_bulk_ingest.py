"""Bulk API 2.0 ingest data flows over HTTP against the real Store: exact result files per operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from bulk_api import BulkApi

from salesforce_emulator.state import EmulatorState


@pytest.fixture
def bulk(emulator) -> Iterator[BulkApi]:  # type: ignore[no-untyped-def]
    api = BulkApi.connect(emulator)
    yield api
    api.http.close()


@pytest.fixture
def state(emulator) -> EmulatorState:  # type: ignore[no-untyped-def]
    return emulator.state


def _by(state: EmulatorState, obj: str, field: str, value: Any) -> dict[str, Any]:
    matches = [r for r in state.store.records(obj) if r[field] == value]
    assert len(matches) == 1, (field, value, matches)
    return matches[0]


def _seed(state: EmulatorState, obj: str, **values: Any) -> str:
    result = state.store.insert(obj, values)
    assert result.success, result.errors
    assert result.id is not None
    return result.id


def test_insert_with_mixed_rows_reports_each_in_the_right_file(bulk: BulkApi, state: EmulatorState) -> None:
    data = ('Name,Description,NumberOfEmployees\n'
            'Acme,"Tools, ""anvils"" and\nrockets",12\n'
            ',no name,3\n'
            ' Globex ,,#N/A\n')
    job_id, info = bulk.run(data, object="Account", operation="insert")
    assert info["state"] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (3, 1)
    acme = _by(state, "Account", "Name", "Acme")
    globex = _by(state, "Account", "Name", " Globex ")  # values are not trimmed
    assert acme["Description"] == 'Tools, "anvils" and\nrockets' and acme["NumberOfEmployees"] == 12
    assert globex["Description"] is None and globex["NumberOfEmployees"] is None
    assert bulk.result(job_id, "successfulResults") == (
        '"sf__Id","sf__Created",Name,Description,NumberOfEmployees\n'
        f'"{acme["Id"]}","true","Acme","Tools, ""anvils"" and\nrockets","12"\n'
        f'"{globex["Id"]}","true"," Globex ",,"#N/A"\n')
    assert bulk.result(job_id, "failedResults") == (
        '"sf__Id","sf__Error",Name,Description,NumberOfEmployees\n'
        '"","REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",,"no name","3"\n')
    assert bulk.result(job_id, "unprocessedrecords") == "Name,Description,NumberOfEmployees\n"


def test_update_ignores_empty_values_nulls_na_and_reports_bad_ids(bulk: BulkApi, state: EmulatorState) -> None:
    acme = _seed(state, "Account", Name="Acme", Phone="111", Website="acme.example")
    globex = _seed(state, "Account", Name="Globex", Phone="222")
    deleted = _seed(state, "Account", Name="Gone")
    assert state.store.delete("Account", deleted).success
    data = f"Id,Phone,Website\n{acme},,#N/A\n{globex[:15]},333,\n{deleted},444,\n"
    job_id, info = bulk.run(data, object="Account", operation="update")
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 3, 1)
    record = state.store.get(acme)
    assert record is not None and record[1]["Phone"] == "111" and record[1]["Website"] is None
    assert state.store.get(globex)[1]["Phone"] == "333"  # type: ignore[index]
    assert bulk.result(job_id, "successfulResults") == (
        '"sf__Id","sf__Created",Id,Phone,Website\n'
        f'"{acme}","false","{acme}",,"#N/A"\n'
        f'"{globex}","false","{globex[:15]}","333",\n')
    failed = bulk.result(job_id, "failedResults").splitlines()
    assert failed[0] == '"sf__Id","sf__Error",Id,Phone,Website'
    assert failed[1].startswith(f'"{deleted}","ENTITY_IS_DELETED:entity is deleted:')
    assert failed[1].endswith(f'"{deleted}","444",')


def test_upsert_creates_updates_and_fails_duplicate_keys(bulk: BulkApi, state: EmulatorState) -> None:
    existing = _seed(state, "Contact", LastName="Old", External_Id__c="C-1")
    data = ("External_Id__c;LastName;Email\r\n"
            "C-1;Updated;old@example.com\r\n"
            "C-2;New;new@example.com\r\n"
            "C-3;Twice;a@example.com\r\n"
            "c-3;Twice again;b@example.com\r\n"
            "C-4;Bad email;not-an-email\r\n")
    job_id, info = bulk.run(data, object="Contact", operation="upsert", externalIdFieldName="External_Id__c",
                            columnDelimiter="SEMICOLON", lineEnding="CRLF")
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 5, 3)
    assert state.store.get(existing)[1]["LastName"] == "Updated"  # type: ignore[index]
    created = _by(state, "Contact", "External_Id__c", "C-2")
    assert created["LastName"] == "New"
    assert bulk.result(job_id, "successfulResults") == (
        '"sf__Id";"sf__Created";External_Id__c;LastName;Email\r\n'
        f'"{existing}";"false";"C-1";"Updated";"old@example.com"\r\n'
        f'"{created["Id"]}";"true";"C-2";"New";"new@example.com"\r\n')
    failed = bulk.result(job_id, "failedResults").split("\r\n")
    assert failed[1] == '"";"DUPLICATE_VALUE:Duplicate external id specified: C-3:External_Id__c --";' \
                        '"C-3";"Twice";"a@example.com"'
    assert failed[2] == '"";"DUPLICATE_VALUE:Duplicate external id specified: c-3:External_Id__c --";' \
                        '"c-3";"Twice again";"b@example.com"'
    assert failed[3].startswith('"";"INVALID_EMAIL_ADDRESS:')
    assert not [r for r in state.store.records("Contact") if r["External_Id__c"] in ("C-3", "c-3", "C-4")]


def test_delete_and_hard_delete(bulk: BulkApi, state: EmulatorState) -> None:
    soft = _seed(state, "Lead", LastName="Soft", Company="A")
    hard = _seed(state, "Lead", LastName="Hard", Company="B")
    job_id, info = bulk.run(f"Id\n{soft}\n{soft}\n", object="Lead", operation="delete")
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 2, 1)
    assert state.store.get(soft) is None and state.store.get(soft, include_deleted=True) is not None
    assert bulk.result(job_id, "successfulResults") == f'"sf__Id","sf__Created",Id\n"{soft}","false","{soft}"\n'
    failed = bulk.result(job_id, "failedResults").splitlines()
    assert failed[1].startswith(f'"{soft}","ENTITY_IS_DELETED:entity is deleted:')
    _, info = bulk.run(f"Id\n{hard}\n", object="Lead", operation="hardDelete")
    assert info["numberRecordsFailed"] == 0
    assert state.store.get(hard, include_deleted=True) is None


def test_relationship_columns_resolve_parents_by_external_id_and_id_lookup(bulk: BulkApi,
                                                                          state: EmulatorState) -> None:
    account = _seed(state, "Account", Name="Parent", External_Id__c="A-1")
    owner = next(u for u in state.org.users if u.username == "integration@emulator.test")
    data = ("LastName,Account.External_Id__c,Owner.Email\n"
            f"Child,A-1,{owner.username}\n"
            "Orphan,A-404,\n")
    job_id, info = bulk.run(data, object="Contact", operation="insert")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    child = _by(state, "Contact", "LastName", "Child")
    assert child["AccountId"] == account and child["OwnerId"] == owner.id
    failed = bulk.result(job_id, "failedResults").splitlines()
    assert "A-404" in failed[1] and failed[1].startswith('"","')


def test_lock_faults_fail_rows_with_unable_to_lock_row(bulk: BulkApi, state: EmulatorState) -> None:
    state.faults.update({"lock_error_rate": 1.0})
    job_id, info = bulk.run("Name\nAcme\nGlobex\n", object="Account", operation="insert")
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 2, 2)
    failed = bulk.result(job_id, "failedResults").splitlines()
    assert all(line.startswith('"","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record')
               for line in failed[1:])
    assert [line.rsplit(",", 1)[1] for line in failed[1:]] == ['"Acme"', '"Globex"']
    assert state.store.records("Account") == []


def test_tab_delimiter_with_bom_and_crlf(bulk: BulkApi, state: EmulatorState) -> None:
    data = "\ufeffName\tBillingCity\r\nAcme\t\"Paris\tFrance\"\r\n".encode()
    job_id, info = bulk.run(data, object="Account", operation="insert", columnDelimiter="TAB", lineEnding="CRLF")
    assert info["numberRecordsFailed"] == 0
    acme = _by(state, "Account", "Name", "Acme")
    assert acme["BillingCity"] == "Paris\tFrance"
    assert bulk.result(job_id, "successfulResults") == \
        f'"sf__Id"\t"sf__Created"\tName\tBillingCity\r\n"{acme["Id"]}"\t"true"\t"Acme"\t"Paris\tFrance"\r\n'


def test_abort_while_in_progress_leaves_the_rest_unprocessed(bulk: BulkApi, state: EmulatorState,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    insert = state.store.insert

    def slow_insert(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.001)  # ~3 s for the whole file, so the abort surely lands mid-way
        return insert(*args, **kwargs)

    monkeypatch.setattr(state.store, "insert", slow_insert)
    rows = [f"Acc {i:04d}" for i in range(3000)]
    job_id = bulk.job(object="Account", operation="insert")
    bulk.upload(job_id, "Name\n" + "\n".join(rows) + "\n")
    bulk.patch(job_id, "UploadComplete")
    while bulk.info(job_id)["numberRecordsProcessed"] == 0:
        time.sleep(0.002)
    aborted = bulk.patch(job_id, "Aborted")
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    job = state.bulk.get(job_id)
    assert job is not None and job.task is not None
    while not job.task.done():
        time.sleep(0.01)
    info = bulk.info(job_id)
    done = info["numberRecordsProcessed"]
    assert info["state"] == "Aborted" and 0 < done < 3000
    successful = bulk.result(job_id, "successfulResults").splitlines()
    assert len(successful) - 1 == done == len(state.store.records("Account"))
    assert bulk.result(job_id, "unprocessedrecords").splitlines() == ["Name", *rows[done:]]


def test_multipart_create_uploads_and_closes_in_one_call(bulk: BulkApi, state: EmulatorState) -> None:
    files = {"job": (None, '{"object":"Account","operation":"insert","contentType":"CSV"}', "application/json"),
             "content": ("content", b"Name\nAcme\n", "text/csv")}
    r = bulk.http.post("", files=files)
    assert r.status_code == 200 and r.json()["state"] == "UploadComplete"
    info = bulk.wait(r.json()["id"])
    assert (info["state"], info["numberRecordsProcessed"]) == ("JobComplete", 1)
    assert _by(state, "Account", "Name", "Acme")


def test_ten_thousand_row_insert_finishes_in_a_few_seconds_and_polls_stay_fast(bulk: BulkApi,
                                                                               state: EmulatorState) -> None:
    data = "Name,External_Id__c,NumberOfEmployees\n" + "".join(f"Account {i},EXT-{i},{i}\n" for i in range(10_000))
    started = time.monotonic()
    job_id = bulk.job(object="Account", operation="insert")
    assert bulk.upload(job_id, data).status_code == 201
    assert bulk.patch(job_id, "UploadComplete").status_code == 200
    slowest_poll = 0.0
    while True:
        t0 = time.monotonic()
        info = bulk.info(job_id)
        slowest_poll = max(slowest_poll, time.monotonic() - t0)
        if info["state"] not in ("UploadComplete", "InProgress"):
            break
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    print(f"\n10,000-row Bulk insert: {elapsed:.2f}s end to end, {info['apiActiveProcessingTime']} ms writing, "
          f"slowest status poll {slowest_poll * 1000:.0f} ms")
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 10_000, 0)
    assert len(state.store.records("Account")) == 10_000
    assert elapsed < 8
    # processing pauses every few milliseconds: a quiet machine polls in well under 100 ms; a job that held the
    # loop would hold a poll for its whole writing time (~1.7 s), so 1 s still tells them apart on a busy host
    assert slowest_poll < 1.0
    assert bulk.result(job_id, "successfulResults").count("\n") == 10_001
