"""API usage: every data call counted as Salesforce counts it, reported in Sforce-Limit-Info; request-level
faults (latency, 503, a REQUEST_LIMIT_EXCEEDED window) and Salesforce's URI / header size limits."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import SfError, SfException

MAX_URI_BYTES = 16_384
MAX_URI_AND_HEADERS_BYTES = 16_384
_DATA_PATH = re.compile(r"^/services/data/v\d+\.\d+(/.*)?$")


class ApiUsage:
    """Calls made today, by endpoint and in total, against a daily maximum."""

    def __init__(self, daily_max: int) -> None:
        self.daily_max = daily_max
        self.total = 0
        self.by_endpoint: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, endpoint: str) -> int:
        """Record one call; returns the new total."""
        with self._lock:
            self.total += 1
            self.by_endpoint[endpoint] += 1
            return self.total

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_endpoint.clear()

    def header(self) -> str:
        return f"api-usage={self.total}/{self.daily_max}"

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"total": self.total, "daily_max": self.daily_max, "by_endpoint": dict(self.by_endpoint)}


def endpoint_kind(path: str) -> str:
    """The endpoint family a data path belongs to, for the stats (e.g. `composite/sobjects`, `query`)."""
    rest = path.split("/", 4)[4] if path.count("/") >= 4 else ""
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return "resources"
    if parts[0] == "composite":
        return "composite/sobjects" if len(parts) > 1 and parts[1] == "sobjects" else "composite"
    if parts[0] == "jobs":
        return "jobs/" + (parts[1] if len(parts) > 1 else "")
    if parts[0] == "sobjects" and len(parts) >= 3 and parts[2] == "describe":
        return "sobjects/describe"
    if parts[0] in ("query", "queryAll"):
        return parts[0]
    return parts[0]


def _error(status: int, code: str, message: str) -> Response:
    return SfException(status, SfError(code, message)).response()


def _size_error(scope: Scope) -> Response | None:
    """414 / 431 when the request is over Salesforce's 16,384-byte limits (§2.2), else None."""
    query = scope.get("query_string") or b""
    uri_bytes = len(scope.get("raw_path") or scope["path"].encode()) + (len(query) + 1 if query else 0)
    header_bytes = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", []))  # "k: v\r\n"
    if uri_bytes > MAX_URI_BYTES:
        return JSONResponse([{"message": "URI Too Long", "errorCode": "URI_TOO_LONG"}], status_code=414)
    if uri_bytes + header_bytes > MAX_URI_AND_HEADERS_BYTES:
        return JSONResponse([{"message": "Request Header Fields Too Large",
                              "errorCode": "REQUEST_HEADER_FIELDS_TOO_LARGE"}], status_code=431)
    return None


class LimitsMiddleware:
    """Size limits on every request; on data calls: faults, the daily maximum, counting, Sforce-Limit-Info.

    A call is counted when the API handled it, whatever its status, except 401: a request whose session
    is refused never reached the API. Calls refused by the limit or by an injected 503 are not counted.
    Pure ASGI (not BaseHTTPMiddleware) so streamed responses pass through untouched and cheaply."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = _size_error(scope)
        if refused is None and not _DATA_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        faults = self.state.faults
        usage: ApiUsage = self.state.usage
        if refused is None and (usage.total >= usage.daily_max or faults.limit_window_open()):
            refused = _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        elif refused is None and faults.roll(faults.error_503_rate):
            refused = _error(503, "SERVER_UNAVAILABLE", "server too busy")
        if refused is not None:
            if _DATA_PATH.match(scope["path"]):
                refused.headers["Sforce-Limit-Info"] = usage.header()
            await refused(scope, receive, send)
            return
        endpoint = endpoint_kind(scope["path"])
        lost = faults.roll(faults.lost_response_rate)  # decided up front; the work below still happens

        async def send_counted(message: Message) -> None:
            if lost:  # the API did the work (counted); the caller gets an empty 502 instead of its answer
                if message["type"] == "http.response.start":
                    usage.count(endpoint)
                    await send({"type": "http.response.start", "status": 502,
                                "headers": [(b"content-type", b"text/html"), (b"content-length", b"0")]})
                elif not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            if message["type"] == "http.response.start":
                if faults.latency_ms:  # after the work is done: a client that times out cannot know whether it was
                    await asyncio.sleep(faults.latency_ms / 1000)
                if message["status"] != 401:
                    usage.count(endpoint)
                MutableHeaders(scope=message).append("Sforce-Limit-Info", usage.header())
            await send(message)

        await self.app(scope, receive, send_counted)


def install_limits(app: FastAPI, state: Any) -> None:
    """Install the middleware that enforces size limits, injects faults, counts calls and adds the header."""
    app.add_middleware(LimitsMiddleware, state=state)
