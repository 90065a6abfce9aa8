"""API usage: every data call counted as Salesforce counts it, reported in Sforce-Limit-Info; request-level
faults (latency, 503, a REQUEST_LIMIT_EXCEEDED window) and Salesforce's URI / header size limits."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

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


def install_limits(app: FastAPI, state: Any) -> None:
    """Install the middleware that enforces size limits, injects faults, counts calls and adds the header."""

    @app.middleware("http")
    async def limits(request: Request, call_next: Any) -> Response:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        uri_bytes = len(raw_path) + len(request.scope.get("query_string") or b"") + 1
        header_bytes = sum(len(k) + len(v) + 4 for k, v in request.scope.get("headers", []))
        if uri_bytes > MAX_URI_BYTES:
            return JSONResponse([{"message": "URI Too Long", "errorCode": "URI_TOO_LONG"}], status_code=414)
        if uri_bytes + header_bytes > MAX_URI_AND_HEADERS_BYTES:
            return JSONResponse([{"message": "Request Header Fields Too Large",
                                  "errorCode": "REQUEST_HEADER_FIELDS_TOO_LARGE"}], status_code=431)
        path = request.url.path
        if not _DATA_PATH.match(path):
            return await call_next(request)
        faults = state.faults
        usage: ApiUsage = state.usage
        if usage.total >= usage.daily_max or faults.limit_window_open():
            response = _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        elif faults.roll(faults.error_503_rate):
            response = _error(503, "SERVER_UNAVAILABLE", "server too busy")
        else:
            response = await call_next(request)
            if faults.latency_ms:  # after the work is done: a client that times out cannot know whether it was
                await asyncio.sleep(faults.latency_ms / 1000)
            if response.status_code != 401:  # a refused session never reached the API
                usage.count(endpoint_kind(path))
        response.headers["Sforce-Limit-Info"] = usage.header()
        return response

