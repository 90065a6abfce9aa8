"""Creates are idempotent across errors, lost responses and crashes: a Bulk job that ran is followed to
its results and never submitted again; a create whose fate is unknown is looked up before it is resent;
its intent is in the sync log before it is sent, so a restart reconciles instead of duplicating."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from delivery_support import ops_for
from sf_support import connection_for

from destination.budget import Budget
from destination.deliver import Delivery
from destination.outcomes import Status
from destination.retry import RetryPolicy
from destination.salesforce.client import SalesforceClient, ssl_context
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLog

POLICY = RetryPolicy(max_attempts=6, max_elapsed_seconds=15.0, backoff_initial_seconds=0.02, backoff_max_seconds=0.1)
BULK_LEADS = """    object: Lead
    operation: create
    mode: bulk
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: x, Company: y}
"""
REST_LEADS = BULK_LEADS.replace("    mode: bulk\n", "")
MARKED_CASES = """    object: Case
    operation: create
    idempotency_field: External_Id__c
    fields: {Subject: $.traits.email}
"""
NATIVE_ACCOUNTS = """    object: Account
    operation: upsert
    match: {any: {External_Id__c: $.traits.email}}
    fields: {Name: $.traits.email}
"""
Hook = Callable[[httpx.Request, httpx.Response], Awaitable[None]]


@asynccontextmanager
async def _delivery(emulator: Any, *, on_response: Hook | None = None, sync_log: SyncLog | None = None,
                    transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Delivery]:
    """A delivery whose HTTP client calls `on_response` after each response (to fault the emulator at an
    exact step of a call sequence) or sends through `transport`."""
    connection = connection_for(emulator, timeout_seconds=5.0)

    async def hook(response: httpx.Response) -> None:
        if on_response is not None:
            await on_response(response.request, response)

    http = httpx.AsyncClient(verify=ssl_context(connection), event_hooks={"response": [hook]}, transport=transport)
    async with SalesforceClient(connection, http=http, policy=POLICY) as client:
        client.bulk.poll_initial = 0.05
        yield Delivery({"default": client}, sync_log=sync_log, budget=Budget(recheck_seconds=0.1))


def _closing(request: httpx.Request) -> bool:
    return request.method == "PATCH" and "/jobs/ingest/" in request.url.path and b"UploadComplete" in request.content


@pytest.mark.parametrize("fault", [{"limit_exceeded_for_seconds": 0.5}, {"error_503_rate": 1.0}],
                         ids=["rate-limit", "outage"])
async def test_a_bulk_job_that_was_submitted_is_followed_to_its_results_and_never_submitted_again(
        tls_emulator: Any, fault: dict[str, Any]) -> None:
    """Defect 10: after a rate limit or an outage hit the polling, the job's rows went into a new job."""
    faults = tls_emulator.state.faults
    injected: list[str] = []

    async def after_close(request: httpx.Request, response: httpx.Response) -> None:
        if _closing(request) and not injected:  # the job is running: polls and result reads now fail a while
            injected.append(request.url.path)
            faults.update(fault)
            asyncio.get_running_loop().call_later(0.5, faults.update, {"error_503_rate": 0.0})

    async with _delivery(tls_emulator, on_response=after_close) as delivery:
        ops = ops_for(BULK_LEADS, [{"traits": {"email": f"b{i}@x.example"}} for i in range(30)])
        outcomes = await delivery.deliver(ops)
    jobs = [j for j in tls_emulator.state.bulk.jobs.values() if j.operation == "insert"]
    assert injected and len(jobs) == 1, [(j.id, j.state) for j in jobs]
    assert len(tls_emulator.state.store.records("Lead")) == 30
    assert [o.status for o in outcomes] == [Status.SUCCEEDED] * 30


@pytest.mark.parametrize(("action", "obj", "key"), [(REST_LEADS, "Lead", "Email"), (MARKED_CASES, "Case", "Subject")],
                         ids=["by-matchers", "by-idempotency-field"])
async def test_a_create_whose_response_was_lost_is_confirmed_by_lookup_and_one_never_sent_is_resent(
        tls_emulator: Any, action: str, obj: str, key: str) -> None:
    """Defect 13: timed-out creates were all UNCERTAIN_WRITE, left to an operator, though only one was created."""
    calls: list[str] = []

    class LoseResponses(httpx.AsyncHTTPTransport):
        """First create call: applied by the emulator, its response lost. Second: lost before it arrives."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            creating = request.method == "POST" and request.url.path.endswith("/composite/sobjects")
            if creating:
                calls.append(request.url.path)
            if creating and len(calls) == 1:
                await super().handle_async_request(request)
                raise httpx.ReadTimeout("response lost", request=request)
            if creating and len(calls) == 2:
                raise httpx.ReadTimeout("request lost", request=request)
            return await super().handle_async_request(request)

    transport = LoseResponses(verify=ssl_context(connection_for(tls_emulator)))
    async with _delivery(tls_emulator, transport=transport) as delivery:
        applied = await delivery.deliver(ops_for(action, [{"traits": {"email": f"a{i}@x.example"}} for i in range(3)]))
        never = await delivery.deliver(ops_for(action, [{"traits": {"email": f"n{i}@x.example"}} for i in range(3)]))
    records = tls_emulator.state.store.records(obj)
    leads = {r[key]: r["Id"] for r in records}
    assert len(records) == len(leads) == 6 and len(calls) == 3 and len(applied + never) == 6  # the lost request was resent once; the applied one never
    for outcome in applied + never:
        assert outcome.status is Status.SUCCEEDED and outcome.created
        assert outcome.record_id == leads[outcome.event.body["traits"]["email"]]
    assert all("confirmed by lookup" in o.warnings[0] for o in applied) and not any(o.warnings for o in never)


@pytest.mark.parametrize("existed", [False, True], ids=["created-by-the-lost-send", "there-before"])
async def test_a_native_upsert_whose_answer_was_lost_is_recorded_as_created_only_when_that_send_created_it(
        tls_emulator: Any, existed: bool) -> None:
    """Issue 14: the resend of an upsert whose first answer was lost reports an update, so a record the lost
    send created was recorded as updated (created rows undercounted)."""
    calls: list[str] = []

    class LoseFirstAnswer(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await super().handle_async_request(request)
            if request.method == "PATCH" and "/composite/sobjects/Account/" in request.url.path:
                calls.append(request.url.path)
                if len(calls) == 1:
                    raise httpx.ReadTimeout("response lost", request=request)
            return response

    store = tls_emulator.state.store
    if existed:  # created a minute before the send: updated by it, not created
        earlier = store.insert("Account", {"Name": "Old", "External_Id__c": "acme"}).id
        found = store.get(earlier)
        assert found is not None
        found[1]["CreatedDate"] = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    transport = LoseFirstAnswer(verify=ssl_context(connection_for(tls_emulator)))
    async with _delivery(tls_emulator, transport=transport) as delivery:
        [outcome] = await delivery.deliver(ops_for(NATIVE_ACCOUNTS, [{"traits": {"email": "acme"}}]))
    [account] = store.records("Account")
    assert len(calls) == 2 and account["Name"] == "acme"  # sent again, and applied
    assert (outcome.status, outcome.record_id, outcome.created) == (Status.SUCCEEDED, account["Id"], not existed)


async def test_an_uncertain_create_without_matchers_is_unresolved_and_never_resent(tls_emulator: Any) -> None:
    class LoseResponse(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await super().handle_async_request(request)
            if request.method == "POST" and request.url.path.endswith("/composite/sobjects"):
                raise httpx.ReadTimeout("response lost", request=request)
            return response

    action = "    object: Case\n    operation: create\n    fields: {Subject: $.traits.email}\n"
    transport = LoseResponse(verify=ssl_context(connection_for(tls_emulator)))
    async with _delivery(tls_emulator, transport=transport) as delivery:
        [outcome] = await delivery.deliver(ops_for(action, [{"traits": {"email": "case@x.example"}}]))
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "UNRESOLVED_CREATE")
    assert "no matchers" in (outcome.message or "")
    assert len(tls_emulator.state.store.records("Case")) == 1


async def test_a_create_intent_left_by_a_crash_is_reconciled_before_anything_is_sent(tls_emulator: Any,
                                                                                   tmp_path: Path) -> None:
    """Defect 11 (in-process): the intent was recorded, the process died before the outcome; on redelivery
    the created record is found (not created again) and the one that never went out is sent."""
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as log:
        ops = ops_for(REST_LEADS, [{"traits": {"email": "made@x.example"}}, {"traits": {"email": "lost@x.example"}}])
        made, lost = ops
        await log.record_intents([(op.source, op.event.message_id, op.action, op.object, "[]") for op in ops])
        existing = tls_emulator.state.store.insert("Lead", {"Email": "made@x.example", "LastName": "x",
                                                            "Company": "y"}).id
        async with _delivery(tls_emulator, sync_log=log) as delivery:
            outcomes = {o.event.body["traits"]["email"]: o for o in await delivery.deliver(ops)}
        assert outcomes["made@x.example"].record_id == existing and "interrupted" in outcomes["made@x.example"].warnings[0]
        assert outcomes["lost@x.example"].status is Status.SUCCEEDED and not outcomes["lost@x.example"].warnings
        assert len(tls_emulator.state.store.records("Lead")) == 2
        # Recording the outcomes settles the intents.
        await log.record(list(outcomes.values()))
        assert await log.open_intents(made.source, made.action, [made.event.message_id, lost.event.message_id]) == {}


async def test_an_upsert_planned_as_a_create_and_interrupted_before_its_outcome_was_kept_has_one_created_row(
        tls_emulator: Any, tmp_path: Path) -> None:
    """Issue 14: upserts the lookup made creates (two events merged into one Lead, a third its own) were
    written, and the process died before their outcomes were kept. Redelivered one by one in other batches,
    the lookups find the records: exactly one row per record says created, whichever event comes back first."""
    upsert_leads = REST_LEADS.replace("operation: create", "operation: upsert")
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as log:
        first, second, other = ops_for(upsert_leads, [{"traits": {"email": "one@x.example"}},
                                                      {"traits": {"email": "one@x.example"}},
                                                      {"traits": {"email": "two@x.example"}}])
        async with _delivery(tls_emulator, sync_log=log) as delivery:
            interrupted = await delivery.deliver([first, second, other])  # written; never kept (the crash)
        assert [o.created for o in interrupted] == [True, False, True]
        rows = []
        async with _delivery(tls_emulator, sync_log=log) as delivery:  # the restart: a new process
            for batch in ([second], [other, first]):
                outcomes = await delivery.deliver(batch)
                await log.record(outcomes)
                rows += outcomes
        # and once more after the rows are kept: nothing left to claim
        async with _delivery(tls_emulator, sync_log=log) as delivery:
            again = await delivery.deliver(ops_for(upsert_leads, [{"traits": {"email": "one@x.example"}}]))
    leads = {r["Email"]: r["Id"] for r in tls_emulator.state.store.records("Lead")}
    assert len(leads) == 2
    assert sorted((o.event.body["traits"]["email"], o.record_id) for o in rows if o.created) == [
        ("one@x.example", leads["one@x.example"]), ("two@x.example", leads["two@x.example"])]
    assert all(o.status in (Status.SUCCEEDED, Status.SKIPPED) for o in rows)
    assert [bool(o.created) for o in again] == [False]


async def test_a_later_upsert_of_the_key_finding_the_record_while_its_create_row_is_on_its_way_does_not_say_created(
        tls_emulator: Any, tmp_path: Path) -> None:
    """The create's record intent is open until its row is kept; a later batch of the same process that finds
    the record meanwhile is an update, not a second `created` (only intents of an earlier process are claimed)."""
    upsert_leads = REST_LEADS.replace("operation: create", "operation: upsert")
    async with open_sync_log(f"sqlite:///{tmp_path / 's.db'}") as log:
        first, later = ops_for(upsert_leads, [{"traits": {"email": "one@x.example"}},
                                              {"traits": {"email": "one@x.example"}}])
        async with _delivery(tls_emulator, sync_log=log) as delivery:
            created = await delivery.deliver([first])  # its row is not kept yet
            updated = await delivery.deliver([later])
            await log.record(created + updated)
    assert [o.created for o in created] == [True] and not updated[0].created
    assert updated[0].record_id == created[0].record_id


def test_a_sigkill_during_a_create_makes_no_duplicate(tls_emulator: Any, tmp_path: Path) -> None:
    """Defect 11: `destination run` killed while Salesforce was applying a Case create; after a restart the
    redelivered event's open intent is reconciled by its marker instead of creating the Case again."""
    import time

    from chaos_support import DestinationProcess, send_until_accepted
    from running_emulator import free_port
    from settings_support import OPERATOR, settings_file

    config = settings_file(tmp_path, tls_emulator, "retry: {backoff_initial_seconds: 0.05, backoff_max_seconds: 0.2}\n")
    port = free_port()
    process = DestinationProcess(config, port, tmp_path / "run.log")
    store = tls_emulator.state.store
    process.start()
    try:
        tls_emulator.state.faults.update({"latency_ms": 1500})  # every answer now comes 1.5 s after the work
        event = {"type": "track", "event": "Support Requested", "messageId": "case-1", "userId": "u1",
                 "properties": {"subject": "Printer on fire"}, "context": {"traits": {"email": "p@x.example"}}}
        send_until_accepted(f"http://127.0.0.1:{port}", "web-app-demo-key", [event], time.monotonic() + 30)
        deadline = time.monotonic() + 30
        while not store.records("Case") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.records("Case"), "the create never reached the emulator"
        process.kill()  # the Case exists; the process never heard back
        tls_emulator.state.faults.update({"latency_ms": 0})
        process.start()
        deadline = time.monotonic() + 30
        rows: list[Any] = []
        while time.monotonic() < deadline and not rows:
            body = httpx.get(f"http://127.0.0.1:{port}/v1/sync-log", params={"source": "web-app"},
                             headers=OPERATOR).json()
            rows = [r for r in body["rows"] if r["action"] == "support-cases"]
            time.sleep(0.1)
    finally:
        process.stop()
    cases = store.records("Case")
    assert len(cases) == 1, cases
    assert rows and rows[0]["status"] == "succeeded" and rows[0]["record_id"] == cases[0]["Id"], rows
    assert "interrupted" in rows[0]["warnings"][0]


async def test_replay_never_resends_an_unresolved_create_unless_told(tls_emulator: Any, tmp_path: Path) -> None:
    """Defect 11/13: replaying failures as an operator would duplicated creates whose fate was unknown."""
    from settings_support import settings_file

    from destination.cli import main
    from destination.config import load_settings
    from destination.events import Event
    from destination.outcomes import Outcome

    config = settings_file(tmp_path, tls_emulator)
    event = Event("web-app", {"type": "track", "event": "Support Requested", "messageId": "u1", "userId": "u",
                              "properties": {"subject": "Maybe sent"}})
    async with open_sync_log(load_settings(config).sync_log_url) as log:
        await log.record([Outcome.failed(event, "UNRESOLVED_CREATE", "fate unknown", action="support-cases",
                                         object="Case", operation="create")])
    await asyncio.to_thread(main, ["--config", str(config), "replay"])
    assert tls_emulator.state.store.records("Case") == []
    await asyncio.to_thread(main, ["--config", str(config), "replay", "--resend-unresolved"])
    assert [c["Subject"] for c in tls_emulator.state.store.records("Case")] == ["Maybe sent"]


async def test_a_close_whose_answer_was_lost_is_read_back_from_the_job_not_submitted_again(tls_emulator: Any) -> None:
    class LoseCloseAnswer(httpx.AsyncHTTPTransport):
        lost = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await super().handle_async_request(request)
            if _closing(request) and not self.lost:
                self.lost += 1
                raise httpx.ReadTimeout("close answer lost", request=request)
            return response

    transport = LoseCloseAnswer(verify=ssl_context(connection_for(tls_emulator)))
    async with _delivery(tls_emulator, transport=transport) as delivery:
        outcomes = await delivery.deliver(ops_for(BULK_LEADS, [{"traits": {"email": f"c{i}@x.example"}}
                                                               for i in range(10)]))
    assert transport.lost == 1 and [o.status for o in outcomes] == [Status.SUCCEEDED] * 10
    assert [j.state for j in tls_emulator.state.bulk.jobs.values()] == ["JobComplete"]
    assert len(tls_emulator.state.store.records("Lead")) == 10


async def test_a_refused_close_leaves_the_job_open_so_its_rows_go_into_a_new_job_once(tls_emulator: Any) -> None:
    faults = tls_emulator.state.faults
    refused: list[str] = []

    async def refuse_close(request: httpx.Request, response: httpx.Response) -> None:
        if request.method == "PUT" and request.url.path.endswith("/batches") and not refused:
            refused.append(request.url.path)
            faults.update({"limit_exceeded_for_seconds": 0.3})  # the close that follows is refused

    async with _delivery(tls_emulator, on_response=refuse_close) as delivery:
        outcomes = await delivery.deliver(ops_for(BULK_LEADS, [{"traits": {"email": f"r{i}@x.example"}}
                                                               for i in range(10)]))
    assert [o.status for o in outcomes] == [Status.SUCCEEDED] * 10
    states = sorted(j.state for j in tls_emulator.state.bulk.jobs.values())
    assert states[-1] == "JobComplete" and all(s in ("Aborted", "Open") for s in states[:-1]) and len(states) >= 2
    assert len(tls_emulator.state.store.records("Lead")) == 10


async def test_a_bulk_job_running_past_its_time_is_aborted_and_its_unprocessed_rows_fail_retry_exhausted(
        tls_emulator: Any) -> None:
    tls_emulator.state.bulk.start_delay = 3.0  # queued for 3 s before it starts
    async with _delivery(tls_emulator) as delivery:
        delivery.clients["default"].bulk.job_max_seconds = 0.5
        outcomes = await delivery.deliver(ops_for(BULK_LEADS, [{"traits": {"email": f"s{i}@x.example"}}
                                                               for i in range(5)]))
    assert {(o.status, o.error_code) for o in outcomes} == {(Status.FAILED, "RETRY_EXHAUSTED")}
    assert "not processed" in (outcomes[0].message or "")
    assert [j.state for j in tls_emulator.state.bulk.jobs.values()] == ["Aborted"]
    assert tls_emulator.state.store.records("Lead") == []
