"""OAuth: the four flows, one cached token per connection, and one shared refresh (no stampede)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from ..retry import RetryPolicy
from .connection import AuthMethod, AuthSettings, Connection
from .errors import AuthenticationError, SalesforceApiError, SalesforceError
from .hosts import check_url

_BUSY = "token request is already being processed"


@dataclass(frozen=True)
class Token:
    """An access token and the instance every API call must then go to."""

    access_token: str
    instance_url: str
    issued_at: float
    refresh_token: str | None = None
    identity: str | None = None  # the identity URL (…/id/<org Id>/<user Id>) of the user the token acts as

    @property
    def user_id(self) -> str | None:
        """The Id of the user this token acts as (the integration user), from its identity URL."""
        last = (self.identity or "").rstrip("/").rpartition("/")[2]
        return last if last.startswith("005") else None


def _audience(settings: AuthSettings, login_url: str) -> str:
    if settings.audience:
        return settings.audience
    return "https://test.salesforce.com" if "test.salesforce.com" in login_url or ".sandbox." in login_url \
        else "https://login.salesforce.com"


def jwt_assertion(settings: AuthSettings, login_url: str, now: float | None = None) -> str:
    """An RS256-signed assertion: iss = consumer key, sub = username, aud = login/test, exp = now + 3 min."""
    key = settings.private_key
    if key is None and settings.private_key_file is not None:
        key = settings.private_key_file.read_text()
    if not key or not settings.username:
        raise ValueError("jwt_bearer needs username and private_key_file (or private_key)")
    issued = int(now if now is not None else time.time())
    claims = {"iss": settings.client_id, "sub": settings.username, "aud": _audience(settings, login_url),
              "exp": issued + 180}
    return jwt.encode(claims, key, algorithm="RS256")


def token_request(settings: AuthSettings, login_url: str) -> tuple[dict[str, str], httpx.BasicAuth | None]:
    """The form body (and Basic auth, when used) of the token request for this flow."""
    method = settings.method
    if method is AuthMethod.CLIENT_CREDENTIALS:
        return {"grant_type": "client_credentials"}, httpx.BasicAuth(settings.client_id, settings.client_secret or "")
    if method is AuthMethod.REFRESH_TOKEN:
        form = {"grant_type": "refresh_token", "refresh_token": settings.refresh_token or "",
                "client_id": settings.client_id}
        if settings.client_secret:
            form["client_secret"] = settings.client_secret
        return form, None
    if method is AuthMethod.PASSWORD:
        return {"grant_type": "password", "client_id": settings.client_id,
                "client_secret": settings.client_secret or "", "username": settings.username or "",
                "password": settings.password or ""}, None
    if method is AuthMethod.JWT_BEARER:
        return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": jwt_assertion(settings, login_url)}, None
    raise ValueError(f"unknown auth method {method!r}")


class TokenManager:
    """Holds the current token; concurrent callers that find it expired share a single refresh."""

    def __init__(self, connection: Connection, http: httpx.AsyncClient, policy: RetryPolicy | None = None) -> None:
        self._connection = connection
        self._http = http
        self._policy = policy or RetryPolicy(max_attempts=5, backoff_initial_seconds=0.2)
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # token requests made (tests and metrics read it)
        # the last token request's result, for readiness (never a request of its own per probe): when the last
        # one failed, `failure` says why (Salesforce's error code and description, never a credential)
        self.fetched_at: float | None = None
        self.failed_at: float | None = None
        self.failure = ""

    @property
    def current(self) -> Token | None:
        """The cached token, if one was fetched (never fetches)."""
        return self._token

    async def token(self) -> Token:
        """The cached token, fetching one first when there is none."""
        if self._token is not None:
            return self._token
        async with self._lock:
            if self._token is None:
                self._token = await self._fetch()
            return self._token

    async def refresh(self, stale: Token | None) -> Token:
        """Replace `stale` (the token a 401 came back for); callers holding an older token reuse the new one."""
        async with self._lock:
            if self._token is not None and self._token is not stale:
                return self._token
            self._token = await self._fetch()
            return self._token

    @property
    def problem(self) -> str | None:
        """Why this connection holds no usable token (None: it holds one, and no later request failed)."""
        if self.failed_at is not None and (self.fetched_at is None or self.failed_at > self.fetched_at):
            return self.failure
        if self._token is None:
            return "no access token requested yet"
        return None

    async def recheck(self) -> None:
        """Request a token when none is held or the last request failed (a refused or unreachable login
        endpoint); the result is kept as state (`problem`), never raised. Called now and then, not per probe."""
        if self.problem is None:
            return
        try:
            await self.refresh(self._token)
        except (SalesforceApiError, ValueError):  # kept in failed_at / failure by _fetch
            pass

    async def _fetch(self) -> Token:
        try:
            token = await self._request()
        except SalesforceApiError as exc:
            self.failed_at = time.time()
            self.failure = "; ".join(f"{e.code}: {e.message}"[:200] for e in exc.errors) or type(exc).__name__
            raise
        except ValueError as exc:  # an unusable auth setting (jwt_bearer without its key); says which, not the value
            self.failed_at = time.time()
            self.failure = f"auth settings: {exc}"[:200]
            raise
        self.fetched_at = token.issued_at
        return token

    async def _request(self) -> Token:
        conn = self._connection
        url = check_url(conn.login_url.rstrip("/") + "/services/oauth2/token", conn.allowed_hosts)
        attempts = self._policy.start()
        while True:
            form, basic = token_request(conn.auth, conn.login_url)
            try:
                response = await self._http.post(url, data=form, auth=basic or httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as exc:
                raise SalesforceApiError([SalesforceError("NETWORK_ERROR", f"token request failed: {exc!r}",
                                                          status=503)]) from exc
            self.fetches += 1
            body = _json(response)
            if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
                instance = check_url(str(body.get("instance_url") or conn.login_url), conn.allowed_hosts)
                identity = body.get("id") if isinstance(body.get("id"), str) else None
                return Token(body["access_token"], instance.rstrip("/"), time.time(), body.get("refresh_token"),
                             identity)
            error = SalesforceError.from_item(body if isinstance(body, dict) else {"error": "invalid_response"},
                                              response.status_code)
            # "already being processed": another refresh of the same user is in flight; back off under the policy.
            if error.message == _BUSY and await attempts.retry(error):
                continue
            if response.status_code >= 500:
                raise SalesforceApiError([error], response.status_code)
            raise AuthenticationError([error], response.status_code)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
