"""One retry policy: every retry and wait is bounded by attempts and total time, the same for lookups and
writes; exhausted work fails RETRY_EXHAUSTED naming the last error; an outage shorter than the policy's
time is ridden out."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from delivery_support import ops_for
from sf_support import connection_for

from destination.budget import Budget
from destination.deliver import Delivery
from destination.outcomes import Status
from destination.retry import RETRY_EXHAUSTED, Decision, RetryPolicy, decide
from destination.salesforce.errors import ErrorKind, SalesforceError

LOOKUP_UPSERT = """    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: x, Company: y}
"""
CREATE = """    object: Case
    operation: create
    fields: {Subject: $.traits.email}
"""
LOCK = SalesforceError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")


@asynccontextmanager
async def _delivery(emulator: Any, policy: RetryPolicy) -> AsyncIterator[Delivery]:
    from destination.salesforce.client import SalesforceClient

    async with SalesforceClient(connection_for(emulator), policy=policy) as client:
        client.bulk.poll_initial = 0.05
        yield Delivery({"default": client}, budget=Budget(recheck_seconds=0.05))


def test_backoff_doubles_from_the_initial_wait_is_jittered_and_capped() -> None:
    policy = RetryPolicy(backoff_initial_seconds=1.0, backoff_max_seconds=8.0, rng=random.Random(1))
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [policy.backoff(failures) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits) and len(set(waits)) > 1


def test_decisions_come_from_the_error_kind() -> None:
    assert [decide(k) for k in ErrorKind] == [Decision.RETRY, Decision.PAUSE, Decision.REFRESH, Decision.FAIL,
                                              Decision.RECONCILE]


async def test_attempts_stop_at_max_attempts_and_name_the_last_error() -> None:
    attempts = RetryPolicy(max_attempts=3, backoff_initial_seconds=0.001).start()
    assert [await attempts.retry(LOCK) for _ in range(3)] == [True, True, False]
    error = attempts.exhausted("update of 1 Lead")
    assert error.code == RETRY_EXHAUSTED
    assert error.message.startswith("update of 1 Lead: gave up after 3 attempt(s)")
    assert error.message.endswith("last error UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record")


async def test_attempts_stop_at_max_elapsed_and_the_last_wait_is_cut_to_the_deadline() -> None:
    attempts = RetryPolicy(max_attempts=1000, max_elapsed_seconds=0.3, backoff_initial_seconds=10.0).start()
    started = time.monotonic()
    assert await attempts.retry(LOCK)  # a 5-10 s backoff, cut to the 0.3 s left
    assert not await attempts.retry(LOCK)
    assert 0.25 < time.monotonic() - started < 2.0
    assert not await attempts.wait(5.0)  # a pause is bounded by the same time


async def _within(seconds: float, work: Callable[[], Any]) -> Any:
    """Fails the test (instead of hanging it) when `work` loops past `seconds`."""
    return await asyncio.wait_for(work(), seconds)


async def test_a_transient_lookup_and_a_transient_write_have_the_same_bound(tls_emulator: Any) -> None:
    """Defect 9: a lookup in an outage retried forever while a write gave up after ~30 sends."""
    policy = RetryPolicy(max_attempts=3, max_elapsed_seconds=5.0, backoff_initial_seconds=0.01,
                         backoff_max_seconds=0.02)
    tls_emulator.state.faults.update({"error_503_rate": 1.0})
    async with _delivery(tls_emulator, policy) as delivery:
        lookup = await _within(20, lambda: delivery.deliver(ops_for(LOOKUP_UPSERT, [{"traits": {"email": "a@x.example"}}])))
        write = await _within(20, lambda: delivery.deliver(ops_for(CREATE, [{"traits": {"email": "b@x.example"}}])))
    for outcome in (lookup[0], write[0]):
        assert (outcome.status, outcome.error_code) == (Status.FAILED, RETRY_EXHAUSTED)
        assert "gave up after 3 attempt(s)" in (outcome.message or "")
        assert "last error SERVER_UNAVAILABLE" in (outcome.message or "")


async def test_lock_errors_past_the_policy_fail_retry_exhausted_with_the_lock_error_named(tls_emulator: Any) -> None:
    policy = RetryPolicy(max_attempts=4, backoff_initial_seconds=0.01, backoff_max_seconds=0.02)
    tls_emulator.state.faults.update({"lock_error_rate": 1.0})
    async with _delivery(tls_emulator, policy) as delivery:
        [outcome] = await delivery.deliver(ops_for(CREATE, [{"traits": {"email": "c@x.example"}}]))
    assert (outcome.status, outcome.error_code, outcome.attempts) == (Status.FAILED, RETRY_EXHAUSTED, 4)
    assert "last error UNABLE_TO_LOCK_ROW" in (outcome.message or "")


async def test_a_rate_limit_pause_is_bounded_by_the_policy_time(tls_emulator: Any) -> None:
    policy = RetryPolicy(max_attempts=100, max_elapsed_seconds=0.5, backoff_initial_seconds=0.01)
    tls_emulator.state.faults.update({"limit_exceeded_for_seconds": 30})
    started = time.monotonic()
    async with _delivery(tls_emulator, policy) as delivery:
        [outcome] = await _within(20, lambda: delivery.deliver(ops_for(CREATE, [{"traits": {"email": "d@x.example"}}])))
    assert (outcome.status, outcome.error_code) == (Status.FAILED, RETRY_EXHAUSTED)
    assert "REQUEST_LIMIT_EXCEEDED" in (outcome.message or "") and time.monotonic() - started < 10


@pytest.mark.parametrize("action", [CREATE, """    object: Opportunity
    operation: upsert
    match: {any: {External_Id__c: $.traits.email}}
    fields: {External_Id__c: $.traits.email, Name: x, StageName: Prospecting, CloseDate: "2026-01-01"}
"""], ids=["create", "native-upsert"])
async def test_an_outage_shorter_than_the_policy_time_is_ridden_out(tls_emulator: Any, action: str) -> None:
    """Defect 12: creates and upserts that need no lookup failed permanently after ~30 sends in an outage."""
    policy = RetryPolicy(max_attempts=1000, max_elapsed_seconds=20.0, backoff_initial_seconds=0.02,
                         backoff_max_seconds=0.1)

    async def outage_ends() -> None:
        await asyncio.sleep(4)  # the old code's ~30 sends with these backoffs span about 2 s
        tls_emulator.state.faults.update({"error_503_rate": 0.0})

    async with _delivery(tls_emulator, policy) as delivery:
        await delivery.deliver(ops_for(action, [{"traits": {"email": "warm@x.example"}}]))  # describe cached, as in a run
        tls_emulator.state.faults.update({"error_503_rate": 1.0})
        ops = ops_for(action, [{"traits": {"email": f"o{i}@x.example"}} for i in range(5)])
        _, outcomes = await asyncio.gather(outage_ends(), delivery.deliver(ops))
    assert [o.status for o in outcomes] == [Status.SUCCEEDED] * 5


async def test_the_api_budget_pause_is_bounded_by_the_policy_time(tls_emulator: Any) -> None:
    import httpx

    admin, verify = f"{tls_emulator.url}/__admin", ssl.create_default_context(cafile=tls_emulator.ca_pem)
    await asyncio.to_thread(httpx.post, f"{admin}/faults", json={"api_daily_max": 100}, verify=verify)
    await asyncio.to_thread(httpx.post, f"{admin}/usage", json={"total": 90}, verify=verify)
    policy = RetryPolicy(max_attempts=100, max_elapsed_seconds=0.5, backoff_initial_seconds=0.01)
    async with _delivery(tls_emulator, policy) as delivery:
        await delivery.clients["default"].limits()  # the client now knows usage is over the 80 % ceiling
        started = time.monotonic()
        [outcome] = await _within(20, lambda: delivery.deliver(ops_for(CREATE, [{"traits": {"email": "e@x.example"}}])))
    assert (outcome.status, outcome.error_code) == (Status.FAILED, RETRY_EXHAUSTED)
    assert "waiting for the API budget" in (outcome.message or "") and "API_BUDGET_EXCEEDED" in (outcome.message or "")
    assert time.monotonic() - started < 10
