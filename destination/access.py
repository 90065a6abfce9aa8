"""Who may call what. Two kinds of credential that are never interchangeable:

- write keys (destination/ingest/keys.py): the Segment ingest paths only; browser keys are public;
- operator tokens with scopes (`read` < `replay` < `admin`): every other endpoint — the sync log (API and
  page), preview, metrics, the OpenAPI docs. `/healthz` and `/readyz` are open.

Tokens are kept only as SHA-256 digests and compared with `hmac.compare_digest` against every known digest.
A fast hash is enough here: operator tokens are random with at least 128 bits of entropy (we generate 256),
so there is no dictionary to try and a slow password hash would only cost CPU on every request; the digest
keeps the token itself out of memory dumps and out of the settings when `sha256:` is used.

The guard is one ASGI middleware in front of the whole app, deny by default: a path that is not an ingest
path, the login form or a health check needs an operator token, so a route added later is closed until it is
listed. It also checks the `Host` header against the configured names (DNS rebinding)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from .config import OperatorTokenConfig, Scope

log = logging.getLogger("destination.access")
T = TypeVar("T")

MIN_TOKEN_CHARS = 32
SESSION_COOKIE = "destination_session"
LOGIN_COOKIE = "destination_login"
SESSION_SECONDS = 8 * 3600
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
LOGIN_PATHS = frozenset({"/login"})
_RANK = {Scope.READ: 0, Scope.REPLAY: 1, Scope.ADMIN: 2}
_SAFE_METHODS = frozenset({"GET", "HEAD"})

AsgiScope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class TokenProblem(ValueError):
    """An operator token that cannot be used (missing, too short); names the entry, never the value."""


@dataclass(frozen=True, slots=True)
class Operator:
    """Who presented a valid operator token, and what it allows."""

    name: str
    scopes: frozenset[Scope]

    def may(self, needed: Scope) -> bool:
        """Whether one of the token's scopes includes `needed` (admin ⊇ replay ⊇ read)."""
        return any(_RANK[s] >= _RANK[needed] for s in self.scopes)


def find_in_constant_time(entries: Iterable[tuple[bytes, T]], candidate: bytes) -> T | None:
    """The value of the entry whose secret equals `candidate`, comparing with every entry (no early exit), so
    the time taken says nothing about which entry, or how much of one, matched."""
    found = None
    for known, value in entries:
        if hmac.compare_digest(known, candidate):
            found = value
    return found


def digest(token: str) -> bytes:
    """The SHA-256 of a token, as stored and compared."""
    return hashlib.sha256(token.encode()).digest()


class OperatorTokens:
    """The known operator tokens as digests; lookup in constant time over all of them."""

    def __init__(self, entries: Iterable[tuple[Operator, bytes]] = ()) -> None:
        self._entries = list(entries)
        self._by_name = {op.name: op for op, _ in self._entries}

    @classmethod
    def from_config(cls, configs: Iterable[OperatorTokenConfig], env: Mapping[str, str] | None = None,
                    extra: Iterable[tuple[Operator, str]] = ()) -> OperatorTokens:
        """Tokens from settings (files, environment variables or digests) plus `extra` (name, plain token)."""
        environ = os.environ if env is None else env
        entries: list[tuple[Operator, bytes]] = []
        for config in configs:
            operator = Operator(config.name, frozenset(config.scopes))
            if config.sha256 is not None:
                entries.append((operator, bytes.fromhex(config.sha256)))
                continue
            if config.token_file is not None:
                try:
                    token = config.token_file.read_text().strip()
                except OSError as exc:
                    raise TokenProblem(f"operator token {config.name!r}: cannot read token_file "
                                       f"{config.token_file} ({exc.strerror})") from None
            else:
                token = environ.get(config.token_env or "", "").strip()
                if not token:
                    raise TokenProblem(f"operator token {config.name!r}: the variable {config.token_env} is unset")
            entries.append((operator, _checked(config.name, token)))
        entries.extend((op, _checked(op.name, token)) for op, token in extra)
        names = [op.name for op, _ in entries]
        if len(set(names)) != len(names):
            raise TokenProblem("operator token names must be unique")
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def identify(self, token: str | None) -> Operator | None:
        """The operator whose token this is, comparing against every digest (no early exit)."""
        if not token:
            return None
        return find_in_constant_time(((known, op) for op, known in self._entries), digest(token))

    def named(self, name: str) -> Operator | None:
        """The current operator of that name (a session re-reads scopes from here)."""
        return self._by_name.get(name)

    def digests(self) -> list[bytes]:
        return [d for _, d in self._entries]


def _checked(name: str, token: str) -> bytes:
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenProblem(f"operator token {name!r} is shorter than {MIN_TOKEN_CHARS} characters: "
                           "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return digest(token)


def ensure_local_token(path: Path) -> str | None:
    """Create a random operator token in `path` (mode 0600) when it does not exist; the new token, to be
    shown once, or None when the file was already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def read_token_file(path: Path) -> str:
    """The token in a file written by `ensure_local_token`."""
    return path.read_text().strip()


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: the operator and the session's nonce (the CSRF token is derived from it)."""

    operator: Operator
    nonce: str


class Sessions:
    """Signed session cookies (not the token: a stolen cookie expires and dies with a restart) and CSRF
    tokens derived from the session. The key is random per process unless given."""

    def __init__(self, tokens: OperatorTokens, key: bytes | None = None, lifetime: int = SESSION_SECONDS) -> None:
        self.tokens = tokens
        self._key = key or secrets.token_bytes(32)
        self.lifetime = lifetime

    def _sign(self, data: bytes) -> str:
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())

    def issue(self, operator: Operator) -> str:
        """A cookie value naming the operator, with an expiry and a nonce, signed."""
        payload = _b64(json.dumps({"n": operator.name, "e": int(time.time()) + self.lifetime,
                                   "i": secrets.token_urlsafe(16)}, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(b'session:' + payload.encode())}"

    def verify(self, value: str | None) -> Session | None:
        """The session of a cookie value, or None when unsigned, tampered with, expired or for a removed token."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(self._sign(b"session:" + payload.encode()), signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            name, expiry, nonce = str(data["n"]), int(data["e"]), str(data["i"])
        except (ValueError, KeyError, TypeError):
            return None
        operator = self.tokens.named(name)
        if operator is None or expiry < time.time():
            return None
        return Session(operator, nonce)

    def csrf(self, nonce: str, purpose: str = "form") -> str:
        """The CSRF token of a session (or of a login nonce) for hidden form fields."""
        return self._sign(f"csrf:{purpose}:{nonce}".encode())

    def csrf_ok(self, nonce: str | None, given: str | None, purpose: str = "form") -> bool:
        return bool(nonce and given) and hmac.compare_digest(self.csrf(nonce or "", purpose), given or "")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def allowed_host_names(configured: Iterable[str], bind_host: str) -> frozenset[str]:
    """Host names the `Host` header may carry: localhost, the loopback addresses, the bind address
    (unless a wildcard) and the configured names, lower-cased."""
    names = {"localhost", "127.0.0.1", "::1", *(h.lower().strip() for h in configured)}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(bind_host.lower())
    return frozenset(names)


def host_name(value: str) -> str:
    """The host of a Host header without the port (`[::1]:8080` → `::1`)."""
    value = value.lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True)
class Policy:
    """What a listener serves. `ingest_paths` and `ingest_prefixes` are open to write-key callers;
    `operator` False means the listener has no operator endpoints at all (404, as if they did not exist)."""

    ingest_paths: frozenset[str]
    ingest_prefixes: tuple[str, ...]
    operator: bool = True
    ingest: bool = True
    #: scope needed per (method, path prefix); first match wins. Safe methods need `read`; other methods
    #: need `admin` unless listed, so a state-changing route added later is closed to lesser tokens.
    scopes: tuple[tuple[str, str, Scope], ...] = (
        ("POST", "/v1/preview", Scope.READ),
        ("POST", "/logout", Scope.READ),
        ("POST", "/sync-log/", Scope.REPLAY),
        ("POST", "/v1/sync-log/", Scope.REPLAY),
    )
    #: where a browser session may make a state-changing request: forms whose handlers check the CSRF field
    form_prefixes: tuple[str, ...] = ("/sync-log/", "/logout")

    def is_ingest(self, path: str) -> bool:
        """An ingest path (a trailing slash too: the router redirects it to the path without)."""
        return (path in self.ingest_paths or path.startswith(self.ingest_prefixes)
                or (path.endswith("/") and path[:-1] in self.ingest_paths))

    def needed(self, method: str, path: str) -> Scope:
        if method in _SAFE_METHODS:
            return Scope.READ
        for m, prefix, scope in self.scopes:
            if method == m and (path == prefix or (prefix.endswith("/") and path.startswith(prefix))):
                return scope
        return Scope.ADMIN


class AccessGuard:
    """ASGI middleware: the Host check, then write-key paths through, then an operator token for the rest."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, policy: Policy, sessions: Sessions,
                 hosts: frozenset[str]) -> None:
        self.app = app
        self.policy = policy
        self.sessions = sessions
        self.tokens = sessions.tokens
        self.hosts = hosts
        self.any_host = "*" in hosts

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not self.any_host and host_name(_host(scope)) not in self.hosts:
            await _reply(send, 400, "invalid_host", "the Host header names no host this service is configured for")
            return
        if self.policy.ingest and self.policy.is_ingest(path):
            await self.app(scope, receive, send)
            return
        if not self.policy.operator:
            await _reply(send, 404, "not_found", "this listener serves the ingest API only")
            return
        headers = _headers(scope)
        if path in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        operator, session = self._credential(headers, method)
        if session is not None and method not in _SAFE_METHODS and not path.startswith(self.policy.form_prefixes):
            operator = None  # the API takes a Bearer token for anything that changes state, never a cookie
        if operator is None:
            await _unauthorized(send, path, headers)
            return
        needed = self.policy.needed(method, path)
        if not operator.may(needed):
            await _reply(send, 403, "forbidden", f"this operator token lacks the `{needed.value}` scope")
            return
        state = scope.setdefault("state", {})
        state["operator"] = operator
        state["session"] = session
        await self.app(scope, receive, send)

    def _credential(self, headers: Mapping[str, str], method: str) -> tuple[Operator | None, Session | None]:
        """A Bearer token, or a session cookie (for a state-changing request the page's handler then checks
        the CSRF field; `session` tells it to)."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return self.tokens.identify(value.strip()), None
        if scheme:
            return None, None  # Basic (a write key) or anything else: never an operator credential
        session = self.sessions.verify(cookie(headers, SESSION_COOKIE))
        return (session.operator, session) if session else (None, None)


def _host(scope: AsgiScope) -> str:
    """The Host header (the ingest path needs only this one: no dict of every header per request)."""
    for key, value in scope["headers"]:
        if key == b"host":
            return value.decode("latin-1")
    return ""


def _headers(scope: AsgiScope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def cookie(headers: Mapping[str, str], name: str) -> str | None:
    """One cookie's value from the Cookie header."""
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


async def _reply(send: Send, status: int, code: str, message: str,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send: Send, path: str, headers: Mapping[str, str]) -> None:
    """401; a browser asking for a page gets a link to the login form."""
    if "text/html" in headers.get("accept", "") and not path.startswith("/v1/"):
        body = ('<!doctype html><meta charset="utf-8"><title>Sign in</title><p>This page needs an operator '
                f'token: <a href="/login?next={quote(path, safe="/")}">sign in</a>.</p>').encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await _reply(send, 401, "unauthorized", "an operator token is needed: Authorization: Bearer <token>",
                 [(b"www-authenticate", b'Bearer realm="destination"')])
