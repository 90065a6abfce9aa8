"""The async Salesforce client: one httpx pool per connection, token handling, retries, usage tracking.

Knows nothing about events. Request-level failures come back as SalesforceApiError with a kind from the
error taxonomy; per-record results are values (see records.py and bulk.py).
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from ..retry import Decision, RetryPolicy, decide
from .auth import Token, TokenManager
from .bulk import BulkIngest
from .connection import Connection
from .describe import DescribeCache
from .errors import SalesforceApiError, SalesforceError, uncertain
from .hosts import check_url
from .records import RecordsApi
from .transport import transport
from .usage import ApiUsage

_FORM_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~'(),@!*:/$; ]+")
# A query string httpx would leave as it is: RFC 3986 query characters only (what form_encode emits, and the
# `=`, `&`, `?` between parameters), each `%` starting an escape.
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9\-._~'(),@!*:/$;+=&?%]*")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LONG_QUERY = 256
_MAX_URL = 65_536  # httpx's limit; a longer URL goes to httpx for its error
# Errors raised before the request could have reached Salesforce: always safe to resend.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Gateway answers to a request that was sent: Salesforce may have applied it behind the proxy.
_MAYBE_APPLIED = (500, 502, 504)


def ssl_context(connection: Connection) -> ssl.SSLContext:
    """Verification always on; a connection may add one CA bundle (the emulator's ca.pem)."""
    context = ssl.create_default_context()
    if connection.ca_bundle is not None:
        context.load_verify_locations(cafile=str(connection.ca_bundle))
    return context


def pool_limits(connection: Connection) -> httpx.Limits:
    """As many kept-alive connections as the pool may open: a burst above a smaller keep-alive count would
    close its extra connections after each request and pay a TLS handshake for every next burst."""
    return httpx.Limits(max_connections=connection.max_connections,
                        max_keepalive_connections=connection.max_connections)


def http_client(connection: Connection) -> httpx.AsyncClient:
    """The connection's HTTPS client: its CA, timeouts and pool (see transport.py)."""
    context = ssl_context(connection)
    return httpx.AsyncClient(verify=context, transport=transport(context, pool_limits(connection)),
                             timeout=httpx.Timeout(connection.timeout_seconds, connect=10.0))


class SalesforceClient:
    """One org. Use as `async with SalesforceClient(conn) as sf:`."""

    def __init__(self, connection: Connection, *, http: httpx.AsyncClient | None = None,
                 backoff_initial: float = 0.2, backoff_max: float = 10.0, policy: RetryPolicy | None = None) -> None:
        self.connection = connection
        # One policy for every retry this client (and the writer and Bulk jobs above it) makes.
        self.policy = policy or RetryPolicy(max_attempts=connection.max_attempts, backoff_initial_seconds=backoff_initial,
                                            backoff_max_seconds=backoff_max)
        self.http = http or http_client(connection)
        self.tokens = TokenManager(connection, self.http, self.policy)
        self.usage = ApiUsage()
        self.describe = DescribeCache(self)
        self.records = RecordsApi(self)
        self.bulk = BulkIngest(self)

    async def __aenter__(self) -> SalesforceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def base_path(self) -> str:
        return f"/services/data/v{self.connection.api_version}"

    def _url(self, token: Token, path: str) -> str:
        if path.startswith("http"):
            url = path
        elif path.startswith("/services/"):
            url = token.instance_url + path
        else:
            url = token.instance_url + self.base_path + "/" + path.lstrip("/")
        return check_url(url, self.connection.allowed_hosts)

    async def request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """Send with retries for transient and auth failures under the retry policy (a token refresh on 401),
        and usage tracking. `idempotent=False` turns a post-send network or gateway failure into
        UNCERTAIN_WRITE (never resent here). When the policy is exhausted the error is RETRY_EXHAUSTED,
        naming the last failure; rate limits are raised for the caller to pause on."""
        if "json" in kwargs:  # encoded once here (orjson), not again on each retry or token refresh
            kwargs["content"] = encode_json(kwargs.pop("json"))
            kwargs["headers"] = {"Content-Type": "application/json", **(kwargs.get("headers") or {})}
        attempts = self.policy.start()
        while True:
            try:
                return await self._send_once(method, path, idempotent=idempotent, **kwargs)
            except SalesforceApiError as exc:
                if decide(exc.kind) not in (Decision.RETRY, Decision.REFRESH):
                    raise
                if not await attempts.retry(exc.error):
                    raise SalesforceApiError([attempts.exhausted(f"{method} {path.split('?')[0]}")]) from exc

    async def _send_once(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        token = await self.tokens.token()
        response = await self._transport(method, self._url(token, path), token, idempotent=idempotent, **kwargs)
        if response.status_code == 401:
            token = await self.tokens.refresh(token)
            response = await self._transport(method, self._url(token, path), token, idempotent=idempotent,
                                             **kwargs)
        if response.status_code >= 400:
            errors = parse_errors(response)
            if not idempotent and response.status_code in _MAYBE_APPLIED and errors[0].code.startswith("HTTP_"):
                raise SalesforceApiError([uncertain(f"{method} {path} answered HTTP {response.status_code} from "
                                                    f"the edge: it may have been applied")])
            raise SalesforceApiError(errors, response.status_code)
        return response

    async def _transport(self, method: str, url: str, token: Token, *, idempotent: bool,
                         headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {token.access_token}", "Accept": "application/json",
                       **self.connection.extra_headers, **(headers or {})}
        try:
            response = await self.http.request(method, parsed_url(url), headers=all_headers, **kwargs)
        except _NOT_SENT as exc:
            raise SalesforceApiError([SalesforceError("NETWORK_ERROR", repr(exc), status=503)]) from exc
        except httpx.TransportError as exc:
            if not idempotent:
                raise SalesforceApiError([uncertain(f"{method} {url} may have been applied: {exc!r}")]) from exc
            raise SalesforceApiError([SalesforceError("NETWORK_ERROR", repr(exc), status=503)]) from exc
        self.usage.calls += 1
        self.usage.observe(response.headers.get("sforce-limit-info"))
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Request and decode the JSON body (None for 204)."""
        response = await self.request(method, path, **kwargs)
        return orjson.loads(response.content) if response.content else None

    async def query(self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None) -> list[dict[str, Any]]:
        """Every record of a query, following nextRecordsUrl."""
        return [r async for r in self.query_iter(soql, include_deleted=include_deleted, batch_size=batch_size)]

    async def query_iter(self, soql: str, *, include_deleted: bool = False,
                         batch_size: int | None = None) -> AsyncIterator[dict[str, Any]]:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        body = await self.json("GET", ("queryAll" if include_deleted else "query") + "?q=" + form_encode(soql),
                               headers=headers)
        while True:
            for record in body.get("records", []):
                yield record
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return
            body = await self.json("GET", next_url, headers=headers)

    async def limits(self) -> dict[str, Any]:
        """GET /limits: the org's allocations and what remains."""
        return await self.json("GET", "limits")


def form_encode(text: str) -> str:
    """A query-string value: what is not plain (letters, digits, -._~'(),@!*:/$;) as %XX, spaces as '+'.
    SOQL's quotes, commas and parentheses stay as they are, so the URL carries few escapes for httpx
    to re-check (a 200-value IN list is ~8 kB)."""
    return _FORM_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text).replace(" ", "+")


def parsed_url(url: str) -> httpx.URL | str:
    """`url` as an httpx.URL, its long plain query not checked again character by character: httpx checks every
    character of a URL in Python, ~0.5 ms for the ~8 kB of a 200-value SOQL IN list, once per request. Any
    other URL is returned as it is, for httpx to parse."""
    head, separator, query = url.partition("?")
    if (not separator or len(query) < _LONG_QUERY or len(url) > _MAX_URL or not _PLAIN_QUERY.fullmatch(query)
            or _BARE_PERCENT.search(query)):
        return url
    parsed = httpx.URL(head)
    reference: Any = getattr(parsed, "_uri_reference", None)
    if not hasattr(reference, "_replace"):  # an httpx that keeps its parts otherwise: let it parse
        return url
    parsed._uri_reference = reference._replace(query=query)  # what its own parse of `query` gives
    return parsed


def encode_json(value: Any) -> bytes:
    """A request body as JSON; stdlib json for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def parse_errors(response: httpx.Response) -> list[SalesforceError]:
    """The error array of a failed response (REST array, a bare object, OAuth JSON, or HTML from the edge)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        return [SalesforceError(f"HTTP_{status}", response.text[:500], status=status)]
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    errors = [SalesforceError.from_item(i, status) for i in items if isinstance(i, dict)]
    return errors or [SalesforceError(f"HTTP_{status}", str(body)[:500], status=status)]
