"""Bulk API 2.0 ingest jobs over HTTP: creation, upload, state machine, deletion, listing, whole-job failures."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from bulk_api import BulkApi

from salesforce_emulator.ids import is_well_formed

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


@pytest.fixture
def bulk(emulator) -> Iterator[BulkApi]:  # type: ignore[no-untyped-def]
    api = BulkApi.connect(emulator)
    yield api
    api.http.close()


def test_create_returns_200_with_open_job_info(bulk: BulkApi, emulator) -> None:  # type: ignore[no-untyped-def]
    r = bulk.create(object="account", operation="insert", contentType="CSV", lineEnding="LF")
    assert r.status_code == 200
    info = r.json()
    assert info["id"].startswith("750") and is_well_formed(info["id"]) and len(info["id"]) == 18
    assert info["state"] == "Open"
    assert info["object"] == "Account" and info["operation"] == "insert"
    assert info["contentUrl"] == f"services/data/v62.0/jobs/ingest/{info['id']}/batches"
    assert info["apiVersion"] == 62.0 and isinstance(info["apiVersion"], float)
    assert info["createdById"] == "0058c0000000001AAA"
    assert DATE_RE.match(info["createdDate"]) and DATE_RE.match(info["systemModstamp"])
    assert (info["concurrencyMode"], info["contentType"], info["jobType"]) == ("Parallel", "CSV", "V2Ingest")
    assert (info["lineEnding"], info["columnDelimiter"]) == ("LF", "COMMA")
    assert "externalIdFieldName" not in info


def test_create_upsert_echoes_external_id_field_and_options(bulk: BulkApi) -> None:
    info = bulk.create(object="Contact", operation="upsert", externalIdFieldName="External_Id__c",
                       columnDelimiter="PIPE", lineEnding="CRLF").json()
    assert info["externalIdFieldName"] == "External_Id__c"
    assert (info["columnDelimiter"], info["lineEnding"]) == ("PIPE", "CRLF")


def test_upsert_by_id_is_allowed(bulk: BulkApi) -> None:
    assert bulk.create(object="Account", operation="upsert", externalIdFieldName="Id").status_code == 200


@pytest.mark.parametrize("body,code,message", [
    ({"object": "Foo", "operation": "insert"}, "INVALIDJOB", "InvalidJob : Unable to find object: Foo"),
    ({"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"}, "INVALIDJOB",
     "InvalidJob : Field name provided, does not match an External ID for Account"),
    ({"object": "Account", "operation": "upsert"}, "INVALIDJOB",
     "InvalidJob : External ID was blank for Account. An External ID must be specified for upsert."),
    ({"object": "Account", "operation": "upsert", "externalIdFieldName": " "}, "INVALIDJOB",
     "InvalidJob : External ID was blank for Account. An External ID must be specified for upsert."),
    ({"object": "Account", "operation": ""}, "API_ERROR",
     "Invalid value: '' supplied for property: 'operation'"),
    ({"object": "Account", "operation": "merge"}, "API_ERROR",
     "Invalid value: 'merge' supplied for property: 'operation'"),
    ({"object": "Account", "operation": "insert", "columnDelimiter": "COLON"}, "API_ERROR",
     "Invalid value: 'COLON' supplied for property: 'columnDelimiter'"),
    ({"object": "Account", "operation": "insert", "lineEnding": "CR"}, "API_ERROR",
     "Invalid value: 'CR' supplied for property: 'lineEnding'"),
])
def test_create_errors_are_400_with_bulk_error_array(bulk: BulkApi, body: dict, code: str, message: str) -> None:
    r = bulk.create(**body)
    assert r.status_code == 400
    assert r.json() == [{"errorCode": code, "message": message}]


def test_create_with_unparseable_json_is_400(bulk: BulkApi) -> None:
    r = bulk.http.post("", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_requests_without_a_session_are_401(emulator) -> None:  # type: ignore[no-untyped-def]
    import httpx

    r = httpx.post(f"{emulator.url}/services/data/v62.0/jobs/ingest", json={"object": "Account"})
    assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_upload_is_201_empty_and_only_once(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    first = bulk.upload(job_id, "Name\nAcme\n")
    assert first.status_code == 201 and first.content == b""
    second = bulk.upload(job_id, "Name\nOther\n")
    assert second.status_code == 400
    assert second.json() == [{"errorCode": "BULK_API_ERROR", "message":
                              f"Found multipe contents for job: <{job_id[:15]}>, please 'Close' / 'Abort' / "
                              "'Delete' the current Job then create a new Job and make sure you only do 'PUT' "
                              "once on a given Job."}]


def test_upload_after_close_is_rejected(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    assert bulk.patch(job_id, "Aborted").status_code == 200
    r = bulk.upload(job_id, "Name\nAcme\n")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def test_upload_over_the_size_limit_is_rejected(bulk: BulkApi, emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.state.bulk.max_upload_bytes = 40  # 40 bytes of base64 = 30 raw bytes
    job_id = bulk.job(object="Account", operation="insert")
    assert bulk.upload(job_id, "Name\n" + "x" * 40 + "\n").status_code == 400
    assert bulk.upload(job_id, "Name\nAcme\n").status_code == 201


def test_unknown_job_is_404_everywhere(bulk: BulkApi) -> None:
    missing = "7508c00000ZZZZZAAA"
    expected = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
    for r in (bulk.http.get(f"/{missing}"), bulk.patch(missing, "Aborted"), bulk.http.delete(f"/{missing}"),
              bulk.upload(missing, "Name\nx\n"), bulk.http.get(f"/{missing}/successfulResults/"),
              bulk.http.get("/not-an-id")):
        assert r.status_code == 404 and r.json() == expected


def test_close_moves_through_upload_complete_and_in_progress(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    assert bulk.upload(job_id, "Nmae\nAcme\n").status_code == 201
    closed = bulk.patch(job_id, "UploadComplete")
    assert closed.status_code == 200
    assert closed.json()["state"] == "UploadComplete" and "contentUrl" not in closed.json()
    final = bulk.wait(job_id)
    assert final["_seen"][0] == "UploadComplete"
    assert "InProgress" in final["_seen"]
    assert final["_seen"][-1] == "Failed"


def test_unknown_header_column_fails_the_job_naming_only_the_first(bulk: BulkApi) -> None:
    job_id, info = bulk.run("Name,Industryy,Bogus__c\nAcme,Energy,x\nGlobex,Retail,y\n",
                            object="Account", operation="insert")
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Industryy"
    assert info["numberRecordsProcessed"] == 0 and info["numberRecordsFailed"] == 0
    assert bulk.result(job_id, "unprocessedrecords") == "Name,Industryy,Bogus__c\nAcme,Energy,x\nGlobex,Retail,y\n"
    assert bulk.result(job_id, "successfulResults") == '"sf__Id","sf__Created",Name,Industryy,Bogus__c\n'
    assert bulk.result(job_id, "failedResults") == '"sf__Id","sf__Error",Name,Industryy,Bogus__c\n'


@pytest.mark.parametrize("operation,header,message", [
    ("update", "Name", "InvalidBatch : Field name not found : Id"),
    ("delete", "Id,Name", "InvalidBatch : The 'delete' batch must contain only ids."),
    ("hardDelete", "Name", "InvalidBatch : Field name not found : Id"),
    ("insert", "Name,Acount.External_Id__c", "InvalidBatch : Unable to find relationship: Acount"),
])
def test_header_rules_per_operation_fail_the_job(bulk: BulkApi, operation: str, header: str, message: str) -> None:
    obj = "Contact" if "Acount" in header else "Account"
    _, info = bulk.run(f"{header}\n" + ",".join("x" for _ in header.split(",")) + "\n",
                       object=obj, operation=operation)
    assert (info["state"], info["errorMessage"]) == ("Failed", message)


def test_upsert_file_without_the_external_id_column_fails(bulk: BulkApi) -> None:
    _, info = bulk.run("Name\nAcme\n", object="Account", operation="upsert", externalIdFieldName="External_Id__c")
    assert (info["state"], info["errorMessage"]) == ("Failed", "InvalidBatch : Field name not found : External_Id__c")


def test_relationship_to_a_field_that_is_not_an_external_id_fails(bulk: BulkApi) -> None:
    _, info = bulk.run("LastName,Account.Name\nDoe,Acme\n", object="Contact", operation="insert")
    assert (info["state"], info["errorMessage"]) == ("Failed", "InvalidBatch : Field name not found : Account.Name")


@pytest.mark.parametrize("job_ending,data,setting", [
    ("LF", "Name\r\nAcme\r\n", "LF"),
    ("CRLF", "Name\nAcme\n", "CRLF"),
])
def test_line_ending_mismatch_fails_the_job(bulk: BulkApi, job_ending: str, data: str, setting: str) -> None:
    job_id, info = bulk.run(data, object="Account", operation="insert", lineEnding=job_ending)
    assert info["state"] == "Failed"
    assert info["errorMessage"] == \
        f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is {setting}"
    assert bulk.result(job_id, "unprocessedRecords").count("Acme") == 1


def test_closing_without_data_fails_the_job(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    assert bulk.patch(job_id, "UploadComplete").status_code == 200
    info = bulk.wait(job_id)
    assert info["state"] == "Failed" and info["errorMessage"]


def test_abort_an_open_job_leaves_every_row_unprocessed(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    bulk.upload(job_id, 'Name,Description\nAcme,"multi\nline"\nGlobex,x\n')
    r = bulk.patch(job_id, "Aborted")
    assert r.status_code == 200 and r.json()["state"] == "Aborted"
    assert bulk.info(job_id)["numberRecordsProcessed"] == 0
    assert bulk.result(job_id, "unprocessedrecords") == 'Name,Description\nAcme,"multi\nline"\nGlobex,x\n'


def test_abort_while_queued_prevents_processing(bulk: BulkApi, emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.state.bulk.start_delay = 0.5
    job_id = bulk.job(object="Account", operation="insert")
    bulk.upload(job_id, "Name\nAcme\n")
    bulk.patch(job_id, "UploadComplete")
    assert bulk.patch(job_id, "Aborted").json()["state"] == "Aborted"
    info = bulk.info(job_id)
    assert info["state"] == "Aborted" and info["numberRecordsProcessed"] == 0
    assert bulk.result(job_id, "unprocessedrecords") == "Name\nAcme\n"


@pytest.mark.parametrize("target", ["UploadComplete", "Aborted"])
def test_state_changes_from_a_terminal_state_are_rejected(bulk: BulkApi, target: str) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    bulk.patch(job_id, "Aborted")
    r = bulk.patch(job_id, target)
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALIDJOBSTATE"


@pytest.mark.parametrize("target", ["JobComplete", "InProgress", "Open", None])
def test_only_upload_complete_and_aborted_can_be_requested(bulk: BulkApi, target: str | None) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    r = bulk.http.patch(f"/{job_id}", json={"state": target})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    assert bulk.info(job_id)["state"] == "Open"


def test_delete_is_refused_while_open_and_404_after(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    refused = bulk.http.delete(f"/{job_id}")
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    bulk.patch(job_id, "Aborted")
    deleted = bulk.http.delete(f"/{job_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert bulk.http.get(f"/{job_id}").status_code == 404
    assert bulk.http.get(f"/{job_id}/failedResults/").status_code == 404


def test_delete_a_queued_job_stops_it(bulk: BulkApi, emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.state.bulk.start_delay = 0.3
    job_id = bulk.job(object="Account", operation="insert")
    bulk.upload(job_id, "Name\nAcme\n")
    bulk.patch(job_id, "UploadComplete")
    assert bulk.http.delete(f"/{job_id}").status_code == 204
    assert bulk.http.get(f"/{job_id}").status_code == 404


def test_results_are_refused_before_the_job_stops(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    r = bulk.http.get(f"/{job_id}/successfulResults/")
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def test_results_paths_accept_any_case_and_no_trailing_slash(bulk: BulkApi) -> None:
    job_id = bulk.job(object="Account", operation="insert")
    bulk.upload(job_id, "Name\nAcme\n")
    bulk.patch(job_id, "Aborted")
    for path in ("unprocessedrecords", "unprocessedRecords/", "UNPROCESSEDRECORDS", "successfulResults",
                 "failedresults/"):
        assert bulk.http.get(f"/{job_id}/{path}").status_code == 200, path
    assert bulk.http.get(f"/{job_id}/everything/").status_code == 404


def test_list_pages_jobs_by_1000(bulk: BulkApi, emulator) -> None:  # type: ignore[no-untyped-def]
    from salesforce_emulator.bulk import JobRequest

    for _ in range(1001):
        emulator.state.bulk.create(JobRequest(object="Account", operation="insert"), "0058c0000000001AAA", 62.0)
    first = bulk.http.get("").json()
    assert first["done"] is False and len(first["records"]) == 1000
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/jobs/ingest?queryLocator=01g")
    second = bulk.http.get(first["nextRecordsUrl"].split("/jobs/ingest", 1)[1]).json()
    assert second["done"] is True and len(second["records"]) == 1 and second["nextRecordsUrl"] is None
    ids = [j["id"] for j in first["records"] + second["records"]]
    assert len(set(ids)) == 1001
    assert bulk.http.get("", params={"jobType": "Classic"}).json()["records"] == []
