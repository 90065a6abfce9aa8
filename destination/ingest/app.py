"""The Segment-compatible HTTP API: /v1/{identify,track,group,page,screen,alias,batch} and the browser
short paths /v1/{i,t,g,p,s,a,b}. The 200 goes out only after the events are durable in the event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from ..config import IngestConfig
from ..eventlog.base import EventLog, LogUnavailable
from ..metrics import Metrics
from .body import BadEncoding, BodyTooLarge, read_limited
from .dedup import RecentMessages
from .keys import WriteKeys, key_from
from .limits import KeyRateLimit
from .segment import SHORT_PATHS, TYPES, Accepted, BadRequest, accepted_events, decode

OVERLOAD_BACKLOG = 5_000
_EVENT_SCHEMA = {"type": "object", "properties": {
    "writeKey": {"type": "string"}, "userId": {"type": "string"}, "anonymousId": {"type": "string"},
    "groupId": {"type": "string"}, "event": {"type": "string"}, "messageId": {"type": "string"},
    "timestamp": {"type": "string", "format": "date-time"}, "sentAt": {"type": "string", "format": "date-time"},
    "traits": {"type": "object"}, "properties": {"type": "object"}, "context": {"type": "object"},
    "integrations": {"type": "object"},
    "batch": {"type": "array", "items": {"type": "object"}}}}
_OPENAPI = {"requestBody": {"required": True, "content": {"application/json": {"schema": _EVENT_SCHEMA},
                                                          "text/plain": {"schema": {"type": "string"}}}},
            "responses": {"200": {"description": "durable in the event log"},
                          "400": {"description": "refused: {code, message} (the message names the field)"},
                          "401": {"description": "missing or unknown write key"},
                          "408": {"description": "the body was not received in time"},
                          "413": {"description": "the body is too large, as sent or decompressed"},
                          "429": {"description": "overloaded, or the write key's rate exceeded; Retry-After"}}}


class _Accepted(Response):
    """The 200 `{"success": true}`, headers built once (JSONResponse would encode and build them per request)."""

    media_type = "application/json"
    _BODY = b'{"success":true}'
    _HEADERS = [(b"content-length", str(len(_BODY)).encode()), (b"content-type", b"application/json")]

    def __init__(self) -> None:
        self.status_code = 200
        self.background = None
        self.body = self._BODY
        self.raw_headers = list(self._HEADERS)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


class Ingest:
    """Accepts events for the sources whose write keys it knows and appends them to the log."""

    def __init__(self, keys: WriteKeys, log: EventLog, recent: RecentMessages | None = None,
                 limits: IngestConfig | None = None, metrics: Metrics | None = None) -> None:
        self.keys = keys
        self.log = log
        self.metrics = metrics or Metrics()
        self.limits = limits = limits or IngestConfig()
        self.recent = recent or RecentMessages(limits.dedup_window_seconds, limits.dedup_max_entries)
        self.rate = KeyRateLimit(limits.rate_per_key, limits.burst_per_key)
        self._appending: set[asyncio.Future[None]] = set()  # appends in flight; each resolves once stored or forgotten
        self.router = APIRouter()
        self.kinds: dict[str, str] = {}  # path → event kind, for IngestFastPath
        for kind in (*TYPES, "batch"):
            self.router.add_api_route(f"/v1/{kind}", self._endpoint(kind), methods=["POST"], name=kind,
                                      openapi_extra=_OPENAPI)
            self.kinds[f"/v1/{kind}"] = kind
        for short, kind in SHORT_PATHS.items():
            self.router.add_api_route(f"/v1/{short}", self._endpoint(kind), methods=["POST"], name=f"short-{short}",
                                      include_in_schema=False)
            self.kinds[f"/v1/{short}"] = kind

    def _endpoint(self, kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return await self.handle(kind, request.headers, request.stream())

        endpoint.__name__ = f"ingest_{kind}"
        endpoint.__doc__ = f"Segment `{kind}` call: 200 once durable in the event log."
        return endpoint

    async def handle(self, kind: str, headers: Mapping[str, str], body: AsyncIterator[bytes]) -> Response:
        """The answer to one call: `headers` by lower-case name, `body` the request body's chunks."""
        backlog = getattr(self.log, "backlog", 0)
        if backlog > OVERLOAD_BACKLOG:
            return _error(429, "overloaded", "the event log is behind; retry shortly", {"Retry-After": "1"})
        # a key sent as HTTP Basic is known before the body (and then the body's writeKey is ignored): an
        # unknown or over-rate key is refused unread
        auth = headers.get("authorization", "")
        early = self._admit(key_from(headers, {})) if auth[:6].lower() == "basic " and auth[6:].strip() \
            else None
        if isinstance(early, Response):
            return early
        try:
            async with asyncio.timeout(self.limits.body_timeout_seconds):
                raw = await read_limited(body, headers.get("content-encoding"), self.limits.max_body_bytes,
                                         headers.get("content-length"))
        except BodyTooLarge as exc:
            return _error(413, "payload_too_large", str(exc), {"Connection": "close"})
        except BadEncoding as exc:
            return _error(400, "invalid_encoding", str(exc))
        except TimeoutError:
            return _error(408, "request_timeout", "the body was not received in time", {"Connection": "close"})
        try:
            data = decode(raw)
            source = early if early is not None else self._admit(key_from(headers, data))
            if isinstance(source, Response):
                return source
            events = accepted_events(kind, data, datetime.now(UTC))
        except BadRequest as exc:
            return _error(400, exc.code, str(exc))
        firsts = self.recent.first_times(source, [b["messageId"] for b in events.bodies])
        if all(firsts):
            return await self._append(source, events) if events.bodies else _Accepted()
        fresh = events.only(firsts)
        if not self._appending:
            return await self._append(source, fresh) if fresh.bodies else _Accepted()
        repeats = events.only([not first for first in firsts])
        return await self._append(source, fresh, after=set(self._appending), repeats=repeats)

    def _admit(self, key: str | None) -> str | Response:
        """The source of a write key within its rate; otherwise the 401 or 429 to answer."""
        source = self.keys.source_for(key)
        if source is None or key is None:
            return _error(401, "invalid_write_key", "missing or unknown write key")
        wait = self.rate.wait_seconds(key)
        if wait:
            return _error(429, "rate_limited", "too many requests for this write key",
                          {"Retry-After": KeyRateLimit.retry_after(wait)})
        return source

    async def _append(self, source: str, fresh: Accepted, *, after: set[asyncio.Future[None]] | None = None,
                      repeats: Accepted | None = None) -> Response:
        """Append the fresh events; 200 once durable, 503 (and forgotten, so the retry is taken) otherwise.
        `repeats` are messageIds already seen whose first append may still be in flight (`after`: a client
        timed out and retried): they wait for those appends and take back what they failed to store (forgotten
        by then), so a repeat never gets its 200 before its event is durable."""
        appended = asyncio.get_running_loop().create_future()
        self._appending.add(appended)  # before any wait: a later repeat of `fresh` waits for this append
        try:
            if after and repeats:
                await asyncio.wait(after)
                again = self.recent.first_times(source, [b["messageId"] for b in repeats.bodies])
                fresh = fresh.plus(repeats.only(again))
            if fresh.bodies:
                try:
                    await self.log.append_encoded(source, fresh.encoded, fresh.keys)
                except LogUnavailable:
                    for b in fresh.bodies:
                        self.recent.forget(source, b["messageId"])
                    return _error(503, "log_unavailable", "the event could not be stored; retry", {"Retry-After": "1"})
                self.metrics.accepted(source, len(fresh.bodies))  # counted once durable (a repeat is not counted again)
            return _Accepted()
        finally:
            self._appending.discard(appended)
            appended.set_result(None)


class IngestFastPath:
    """ASGI middleware in front of the app's router: a POST to an ingest path goes straight to `Ingest.handle`.
    FastAPI's route matching, request object and per-request exit stacks cost about as much CPU as reading
    and storing a 100-event batch; the routes stay in the app for everything else (other methods, a trailing
    slash, the OpenAPI document), and answer the same (they call the same `handle`)."""

    def __init__(self, app: Any, ingest: Ingest) -> None:
        self.app = app
        self.ingest = ingest

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            kind = self.ingest.kinds.get(scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in _READ_HEADERS:
                headers.setdefault(_READ_HEADERS[name], value.decode("latin-1"))  # the first, as Starlette's
        response = await self.ingest.handle(kind, headers, _body(receive))
        await response(scope, receive, send)


_READ_HEADERS = {name.encode(): name for name in ("authorization", "content-encoding", "content-length")}


async def _body(receive: Any) -> AsyncIterator[bytes]:
    """The request body's chunks, as Starlette's Request.stream() reads them (a disconnect: ClientDisconnect)."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
