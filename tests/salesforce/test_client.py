"""The client against the emulator over HTTPS: auth flows, host safety, REST, collections, query, retries."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import httpx
import pytest
from sf_support import CLIENT_ID, CLIENT_SECRET, connection_for

from destination.salesforce.client import SalesforceClient, ssl_context
from destination.salesforce.connection import AuthMethod, AuthSettings, Connection
from destination.salesforce.errors import AuthenticationError, ErrorKind, HostNotAllowed, SalesforceApiError
from destination.salesforce.transport import transport


async def test_client_credentials_token_is_cached_and_instance_url_used(sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    await sf.json("GET", "sobjects")
    await sf.json("GET", "sobjects")
    assert sf.tokens.fetches == 1
    assert (await sf.tokens.token()).instance_url == tls_emulator.url
    assert sf.usage.used == 2 and sf.usage.max == 100000


async def test_password_and_refresh_token_flows(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    password = AuthSettings(AuthMethod.PASSWORD, CLIENT_ID, CLIENT_SECRET, username="admin@emulator.test",
                            password="emulator")
    async with SalesforceClient(connection_for(tls_emulator, password)) as client:
        await client.json("GET", "limits")
        refresh_token = (await client.tokens.token()).refresh_token
    assert refresh_token
    refresh = AuthSettings(AuthMethod.REFRESH_TOKEN, CLIENT_ID, CLIENT_SECRET, refresh_token=refresh_token)
    async with SalesforceClient(connection_for(tls_emulator, refresh)) as client:
        assert "DailyApiRequests" in await client.limits()


async def test_bad_credentials_raise_authentication_error(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    bad = AuthSettings(AuthMethod.CLIENT_CREDENTIALS, CLIENT_ID, "wrong")
    async with SalesforceClient(connection_for(tls_emulator, bad)) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.json("GET", "limits")
    assert caught.value.error.code == "invalid_client"


async def test_expired_session_refreshes_once_and_concurrent_callers_share_the_refresh(
        sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    await sf.json("GET", "limits")
    tls_emulator.state.tokens.revoke_all()
    await asyncio.gather(*(sf.json("GET", "limits") for _ in range(50)))
    assert sf.tokens.fetches == 2


async def test_hosts_outside_salesforce_and_plain_http_are_refused(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    auth = AuthSettings(AuthMethod.CLIENT_CREDENTIALS, CLIENT_ID, CLIENT_SECRET)
    no_allow = Connection(login_url=tls_emulator.url, auth=auth, ca_bundle=tls_emulator.ca_pem)
    async with SalesforceClient(no_allow) as client:
        with pytest.raises(HostNotAllowed):
            await client.json("GET", "limits")
    plain = Connection(login_url=tls_emulator.url.replace("https", "http"), auth=auth, allowed_hosts=("127.0.0.1",))
    async with SalesforceClient(plain) as client:
        with pytest.raises(HostNotAllowed):
            await client.json("GET", "limits")


async def test_certificates_are_verified_without_the_ca_bundle(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    auth = AuthSettings(AuthMethod.CLIENT_CREDENTIALS, CLIENT_ID, CLIENT_SECRET)
    untrusted = Connection(login_url=tls_emulator.url, auth=auth, allowed_hosts=("127.0.0.1",))
    async with SalesforceClient(untrusted) as client:
        with pytest.raises(SalesforceApiError) as caught:
            await client.json("GET", "limits")
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.error.message


async def test_single_record_create_get_update_upsert_delete(sf: SalesforceClient) -> None:
    created = await sf.records.create("Contact", {"LastName": "Ada", "Email": "ada@example.com"})
    assert created.success and created.created and created.id and created.id.startswith("003")
    assert (await sf.records.update("Contact", created.id, {"Title": "Countess"})).success
    record = await sf.records.get("Contact", created.id, ["Title"])
    assert record is not None and record["Title"] == "Countess"
    up = await sf.records.upsert("Contact", "External_Id__c", "ext/1", {"LastName": "Up"})
    again = await sf.records.upsert("Contact", "External_Id__c", "ext/1", {"LastName": "Up2"})
    assert (up.created, again.created, again.id) == (True, False, up.id)
    failed = await sf.records.create("Contact", {"FirstName": "NoLast"})
    assert not failed.success and failed.error and failed.error.code == "REQUIRED_FIELD_MISSING"
    assert failed.kind is ErrorKind.PERMANENT and failed.error.fields == ("LastName",)
    assert (await sf.records.delete("Contact", created.id)).success
    assert await sf.records.get("Contact", created.id) is None


async def test_collections_chunk_by_200_and_return_one_typed_result_per_record(sf: SalesforceClient,
                                                                              tls_emulator) -> None:  # type: ignore[no-untyped-def]
    records: list[dict[str, Any]] = [{"Name": f"A{i}"} for i in range(450)]
    records[7] = {"Name": "x" * 300}
    calls_before = tls_emulator.state.usage.total
    results = await sf.records.create_many("Account", records)
    assert len(results) == 450 and tls_emulator.state.usage.total - calls_before == 3
    assert [i for i, r in enumerate(results) if not r.success] == [7]
    assert results[7].error is not None and results[7].error.code == "STRING_TOO_LONG"
    ids = [r.id for r in results if r.success]
    updates = [{"Id": i, "Phone": "1"} for i in ids[:250]]
    assert all(r.success for r in await sf.records.update_many("Account", updates))
    upserts = [{"External_Id__c": f"K{i}", "Name": f"K{i}"} for i in range(3)]
    first = await sf.records.upsert_many("Account", "External_Id__c", upserts)
    second = await sf.records.upsert_many("Account", "External_Id__c", upserts)
    assert [r.created for r in first] == [True] * 3 and [r.created for r in second] == [False] * 3
    deleted = await sf.records.delete_many([*ids[:3], "001000000000000AAA"])
    assert [r.success for r in deleted] == [True, True, True, False]


async def test_query_follows_next_records_url(sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    for i in range(2300):
        tls_emulator.state.store.insert("Lead", {"LastName": f"L{i}", "Company": "C"})
    rows = await sf.query("SELECT Id FROM Lead")
    assert len(rows) == 2300 and len({r["Id"] for r in rows}) == 2300


async def test_transient_503s_are_retried_and_rate_limits_are_raised(sf: SalesforceClient, tls_emulator) -> None:  # type: ignore[no-untyped-def]
    tls_emulator.state.faults.update({"error_503_rate": 0.5, "seed": 3})
    for _ in range(10):
        await sf.json("GET", "limits")
    tls_emulator.state.faults.update({"error_503_rate": 0.0, "limit_exceeded_for_seconds": 5})
    with pytest.raises(SalesforceApiError) as caught:
        await sf.json("GET", "limits")
    assert caught.value.kind is ErrorKind.RATE_LIMITED and caught.value.status == 403


async def test_a_timed_out_create_is_reported_uncertain_and_not_resent(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    conn = connection_for(tls_emulator, timeout_seconds=0.3)
    async with SalesforceClient(conn, backoff_initial=0.01) as client:
        await client.json("GET", "limits")
        tls_emulator.state.faults.update({"latency_ms": 600})
        result = await client.records.create("Account", {"Name": "Maybe"})
        assert not result.success and result.kind is ErrorKind.UNCERTAIN
        many = await client.records.create_many("Account", [{"Name": "M1"}, {"Name": "M2"}])
        assert all(r.kind is ErrorKind.UNCERTAIN for r in many)
    await asyncio.sleep(0.8)
    names = sorted(r["Name"] for r in tls_emulator.state.store.records("Account"))
    assert names == ["M1", "M2", "Maybe"]  # each sent exactly once


async def test_describe_is_cached_then_revalidated_with_if_modified_since(sf: SalesforceClient) -> None:
    first = await sf.describe.get("Lead")
    assert first.key_prefix == "00Q" and first.type_of("email") == "email"
    await sf.describe.get("lead")
    assert sf.describe.requests == 1
    sf.describe.ttl_seconds = 0
    again = await sf.describe.get("Lead")
    assert sf.describe.revalidated == 1 and again is first
    with pytest.raises(SalesforceApiError) as caught:
        await sf.describe.get("Nope__c")
    assert caught.value.status == 404


def test_httpx_is_the_transport() -> None:
    assert SalesforceClient.__init__.__annotations__["http"] == "httpx.AsyncClient | None"
    assert httpx.AsyncClient


async def test_describe_reads_the_picklist_values_of_each_record_type_once(sf: SalesforceClient) -> None:
    lead = await sf.describe.get("Lead")
    assert [rt["developerName"] for rt in lead.record_types] == ["Sales_Lead", "Partner_Lead", "Legacy_Lead"]
    assert sf.describe.record_type_requests == 3  # one UI API call per record type, with the describe
    assert lead.record_type_values("0128c0000000004AAA", "status") == {
        "Open - Not Contacted", "Closed - Converted", "Closed - Not Converted"}
    assert lead.record_type_values("0128c0000000004", "LeadSource") == {"Partner Referral", "Other"}
    assert lead.default_record_type() == "0128c0000000003AAA"
    await sf.describe.get("Lead")
    case = await sf.describe.get("Case")
    assert sf.describe.record_type_requests == 3  # cached; an object without record types needs none
    assert case.record_types == [] and case.default_record_type() is None


async def test_every_pooled_connection_is_kept_alive_so_a_second_burst_makes_no_tls_handshake(
        tls_emulator) -> None:  # type: ignore[no-untyped-def]
    handshakes = 0

    async def trace(event: str, info: dict[str, Any]) -> None:  # httpcore's public trace extension
        nonlocal handshakes
        handshakes += event == "connection.start_tls.complete"

    async with SalesforceClient(connection_for(tls_emulator, max_connections=6)) as client:
        await client.json("GET", "limits")  # the token fetch, on a connection of its own pool
        for _ in range(2):  # twice as many requests at once as the pool may open
            await asyncio.gather(*(client.json("GET", "limits", extensions={"trace": trace}) for _ in range(12)))
    assert 1 <= handshakes <= 6  # the burst above the limit waited for a connection; none was closed


def test_the_connections_max_connections_setting_sizes_the_pool() -> None:
    from destination.config import ConnectionConfig

    settings = {"login_url": "https://login.salesforce.com",
                "auth": {"method": "client_credentials", "client_id": "x", "client_secret": "y"}}
    assert ConnectionConfig.model_validate(settings).connection("default").max_connections == 32
    assert ConnectionConfig.model_validate({**settings, "max_connections": 8}).connection("a").max_connections == 8


async def test_a_request_cancelled_during_the_tls_handshake_closes_its_socket_at_once(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    """A batch abandoned mid-request (a revoked partition's timeout, a stop) must not leave its socket to the
    garbage collector: the far side sees it closed, and no ResourceWarning follows."""
    accepted: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    got = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append((reader, writer))  # answers nothing: the client waits in its TLS handshake
        got.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = Connection(login_url=f"https://127.0.0.1:{port}", ca_bundle=tls_emulator.ca_pem,
                      auth=AuthSettings(AuthMethod.CLIENT_CREDENTIALS, "id", "secret"), allowed_hosts=("127.0.0.1",))
    try:
        async with SalesforceClient(conn) as client:
            request = asyncio.create_task(client.json("GET", "limits"))  # its token fetch opens the connection
            await asyncio.wait_for(got.wait(), 5)
            await asyncio.sleep(0.05)  # the ClientHello is out: the handshake waits for the answer
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # the far side reads the ClientHello, then the end of the stream: closed, not left for the GC
                reader = accepted[0][0]
                assert (await asyncio.wait_for(reader.read(65536), 5))
                assert await asyncio.wait_for(reader.read(65536), 5) == b""
                gc.collect()
            assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    finally:
        for _, writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_request_cancelled_as_the_pool_hands_it_a_new_connection_leaves_no_slot_taken(
        tls_emulator) -> None:  # type: ignore[no-untyped-def]
    """httpcore 1.0.9 leaves a new connection in the pool, never to connect, when its request is cancelled between
    being given it and using it (encode/httpcore#1093): the slot stays taken, and once every slot is, every
    request fails with PoolTimeout until a restart. Here the pool has one slot; a queued request is given a new
    connection as the first one's response ends (keep-alive 0: that one expires at once) and is cancelled
    right then, as an abandoned batch's request may be."""
    context = ssl_context(connection_for(tls_emulator))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=0)
    url = f"{tls_emulator.url}/__admin/stats"
    async with httpx.AsyncClient(transport=transport(context, limits), timeout=httpx.Timeout(5, pool=1)) as http:
        pool = http._transport._pool
        first = asyncio.create_task(http.get(url))
        queued = asyncio.create_task(http.get(url))
        assign = pool._assign_requests_to_connections
        seen: list[Any] = []  # the pool's requests in the order they came: the first one's, then the queued one's

        def cancel_once_given(*args: Any) -> Any:
            closing = assign(*args)
            seen.extend(r for r in pool._requests if r not in seen)
            if len(seen) == 2 and seen[1].connection is not None and not queued.done() and \
                    asyncio.current_task() is first:  # the queued one was just given a connection, by the first
                queued.cancel()  # before it runs: it wakes cancelled, holding its new connection
            return closing

        pool._assign_requests_to_connections = cancel_once_given
        assert (await first).status_code == 200
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert queued.cancelled()
        pool._assign_requests_to_connections = assign
        assert (await http.get(url)).status_code == 200  # the one slot is free again
