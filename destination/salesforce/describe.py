"""Describe cache: one describe per object, kept for a TTL, then revalidated with If-Modified-Since."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import SalesforceClient


@dataclass
class ObjectDescribe:
    """An sObject describe with case-insensitive field access."""

    raw: dict[str, Any]
    fetched_at: float = 0.0
    last_modified: str | None = None
    _fields: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._fields = {f["name"].lower(): f for f in self.raw.get("fields", [])}

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    @property
    def key_prefix(self) -> str | None:
        return self.raw.get("keyPrefix")

    def field(self, name: str) -> dict[str, Any] | None:
        return self._fields.get(name.lower())

    def type_of(self, name: str) -> str | None:
        f = self.field(name)
        return f["type"] if f else None

    @property
    def fields(self) -> list[dict[str, Any]]:
        return list(self.raw.get("fields", []))


class DescribeCache:
    """Describes per object name; concurrent callers of a missing entry share one request."""

    def __init__(self, client: SalesforceClient, ttl_seconds: float = 900.0) -> None:
        self._client = client
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, ObjectDescribe] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.requests = 0
        self.revalidated = 0

    async def get(self, object_name: str) -> ObjectDescribe:
        """The describe of an object (raises SalesforceApiError NOT_FOUND for an unknown object)."""
        key = object_name.lower()
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.fetched_at < self.ttl_seconds:
            return entry
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() - entry.fetched_at < self.ttl_seconds:
                return entry
            headers = {"If-Modified-Since": entry.last_modified} if entry and entry.last_modified else None
            self.requests += 1
            response = await self._client.request("GET", f"sobjects/{object_name}/describe", headers=headers)
            if response.status_code == 304 and entry is not None:
                entry.fetched_at = time.monotonic()
                self.revalidated += 1
                return entry
            fresh = ObjectDescribe(response.json(), time.monotonic(), response.headers.get("last-modified"))
            self._entries[key] = fresh
            return fresh

    def invalidate(self, object_name: str | None = None) -> None:
        if object_name is None:
            self._entries.clear()
        else:
            self._entries.pop(object_name.lower(), None)
