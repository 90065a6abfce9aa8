"""Responses the emulator cannot produce (respx): a busy token endpoint, HTML edge errors, 429, network drops.
Every other behaviour is tested against the running emulator."""

from __future__ import annotations

import httpx
import pytest
import respx

from destination.salesforce.client import SalesforceClient
from destination.salesforce.connection import AuthMethod, AuthSettings, Connection
from destination.salesforce.errors import ErrorKind, SalesforceApiError, SalesforceError, classify

LOGIN = "https://acme.my.salesforce.com"
TOKEN = {"access_token": "00D!x", "instance_url": LOGIN, "token_type": "Bearer", "issued_at": "1"}


def _client() -> SalesforceClient:
    conn = Connection(LOGIN, AuthSettings(AuthMethod.CLIENT_CREDENTIALS, "id", "secret"), max_attempts=3)
    return SalesforceClient(conn, backoff_initial=0.001, backoff_max=0.01)


@respx.mock
async def test_token_request_already_being_processed_is_retried() -> None:
    busy = httpx.Response(400, json={"error": "invalid_grant",
                                     "error_description": "token request is already being processed"})
    respx.post(f"{LOGIN}/services/oauth2/token").mock(side_effect=[busy, httpx.Response(200, json=TOKEN)])
    respx.get(f"{LOGIN}/services/data/v62.0/limits").mock(return_value=httpx.Response(200, json={}))
    async with _client() as sf:
        assert await sf.json("GET", "limits") == {}
        assert sf.tokens.fetches == 2


@respx.mock
@pytest.mark.parametrize("failure", [
    httpx.Response(502, text="<html>Bad Gateway</html>"),
    httpx.Response(429, text="Too Many Requests"),
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
])
async def test_transient_failures_are_retried_then_succeed(failure: object) -> None:
    respx.post(f"{LOGIN}/services/oauth2/token").mock(return_value=httpx.Response(200, json=TOKEN))
    route = respx.get(f"{LOGIN}/services/data/v62.0/limits").mock(
        side_effect=[failure, httpx.Response(200, json={"ok": 1}, headers={"Sforce-Limit-Info": "api-usage=7/15000"})])
    async with _client() as sf:
        assert await sf.json("GET", "limits") == {"ok": 1}
        assert route.call_count == 2 and (sf.usage.used, sf.usage.max) == (7, 15000)


@respx.mock
async def test_retries_are_bounded() -> None:
    respx.post(f"{LOGIN}/services/oauth2/token").mock(return_value=httpx.Response(200, json=TOKEN))
    route = respx.get(f"{LOGIN}/services/data/v62.0/limits").mock(return_value=httpx.Response(503, text="down"))
    async with _client() as sf:
        with pytest.raises(SalesforceApiError) as caught:
            await sf.json("GET", "limits")
    assert route.call_count == 3 and caught.value.kind is ErrorKind.PERMANENT  # exhausted: not retried above
    assert caught.value.error.code == "RETRY_EXHAUSTED" and "last error HTTP_503: down" in caught.value.error.message


@respx.mock
async def test_a_post_send_network_failure_on_create_is_uncertain_and_sent_once() -> None:
    respx.post(f"{LOGIN}/services/oauth2/token").mock(return_value=httpx.Response(200, json=TOKEN))
    route = respx.post(f"{LOGIN}/services/data/v62.0/sobjects/Account").mock(side_effect=httpx.ReadTimeout("lost"))
    async with _client() as sf:
        result = await sf.records.create("Account", {"Name": "A"})
    assert route.call_count == 1 and result.kind is ErrorKind.UNCERTAIN


def test_the_taxonomy_classifies_every_error_class() -> None:
    assert classify("UNABLE_TO_LOCK_ROW") is ErrorKind.TRANSIENT
    assert classify("SERVER_UNAVAILABLE", 503) is ErrorKind.TRANSIENT
    assert classify("", 500) is ErrorKind.TRANSIENT and classify("", 429) is ErrorKind.TRANSIENT
    assert classify("REQUEST_LIMIT_EXCEEDED", 403) is ErrorKind.RATE_LIMITED
    assert classify("INVALID_SESSION_ID", 401) is ErrorKind.AUTH
    assert classify("REQUIRED_FIELD_MISSING", 400) is ErrorKind.PERMANENT
    assert classify("DUPLICATE_VALUE") is ErrorKind.PERMANENT


def test_bulk_error_cells_parse_into_code_message_and_fields() -> None:
    error = SalesforceError.from_bulk("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --")
    assert (error.code, error.message, error.fields) == ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]",
                                                         ("Name",))
    bare = SalesforceError.from_bulk("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--")
    assert (bare.code, bare.message, bare.fields) == ("UNABLE_TO_LOCK_ROW",
                                                      "unable to obtain exclusive access to this record", ())
    dup = SalesforceError.from_item({"errorCode": "DUPLICATES_DETECTED", "message": "Use one of these records?",
                                     "duplicateResult": {"matchResults": [{"matchRecords": [{"record": {"Id": "003X"}}]}]}})
    assert dup.duplicate_ids() == ["003X"]


@respx.mock
async def test_a_token_endpoint_that_stays_busy_is_given_up_on_within_the_retry_policy() -> None:
    busy = httpx.Response(400, json={"error": "invalid_grant",
                                     "error_description": "token request is already being processed"})
    route = respx.post(f"{LOGIN}/services/oauth2/token").mock(return_value=busy)
    async with _client() as sf:
        with pytest.raises(SalesforceApiError) as caught:
            await sf.json("GET", "limits")
    assert route.call_count == 3 and caught.value.error.code == "invalid_grant"  # the policy's max_attempts


@respx.mock
async def test_a_gateway_error_after_sending_a_create_is_uncertain_and_not_resent() -> None:
    respx.post(f"{LOGIN}/services/oauth2/token").mock(return_value=httpx.Response(200, json=TOKEN))
    route = respx.post(f"{LOGIN}/services/data/v62.0/composite/sobjects").mock(
        return_value=httpx.Response(504, text="<html>Gateway Timeout</html>"))
    async with _client() as sf:
        [result] = await sf.records.create_many("Case", [{"Subject": "s"}])
    assert route.call_count == 1 and result.kind is ErrorKind.UNCERTAIN
