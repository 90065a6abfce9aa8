"""Describe cache: one describe per object, kept for a TTL, then revalidated with If-Modified-Since.

An object with record types of its own also has its picklist values per record type read with the describe
(UI API `ui-api/object-info/{object}/picklist-values/{recordTypeId}`, one call per record type), since describe's `picklistValues` are the Master list and a record type may offer fewer."""

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
    # record type Id (15 characters) → field name (lower case) → the values that record type offers
    picklists_by_record_type: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict, repr=False)

    # fields a native upsert can name (lower case): external IDs, and unique idLookup fields
    external_ids: frozenset[str] = field(init=False, default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        self._fields = {f["name"].lower(): f for f in self.raw.get("fields", [])}
        self.external_ids = frozenset(name for name, f in self._fields.items()
                                      if f.get("externalId") or (f.get("idLookup") and f.get("unique")))

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

    @property
    def record_types(self) -> list[dict[str, Any]]:
        """The object's own record types (recordTypeInfos without Master); empty for an object without."""
        return [rt for rt in self.raw.get("recordTypeInfos") or () if not rt.get("master")]

    def record_type(self, record_type_id: str) -> dict[str, Any] | None:
        """The recordTypeInfo with this Id (15 or 18 characters), available to the user or not."""
        return next((rt for rt in self.record_types if str(rt.get("recordTypeId", ""))[:15] == record_type_id[:15]),
                    None)

    def usable_record_types(self) -> list[dict[str, Any]]:
        """Record types the user may save records with: active and available to them."""
        return [rt for rt in self.record_types if rt.get("active", True) and rt.get("available")]

    def default_record_type(self) -> str | None:
        """The Id of the record type a create without RecordTypeId gets (the user's default mapping)."""
        usable = self.usable_record_types()
        chosen = next((rt for rt in usable if rt.get("defaultRecordTypeMapping")), usable[0] if usable else None)
        return chosen["recordTypeId"] if chosen else None

    def record_type_values(self, record_type_id: str, field_name: str) -> frozenset[str] | None:
        """The values a record type offers for a picklist field; None when not known (not read, or no such
        record type), in which case the field's own values are all there is to check against."""
        return self.picklists_by_record_type.get(record_type_id[:15], {}).get(field_name.lower())


class DescribeCache:
    """Describes per object name; concurrent callers of a missing entry share one request."""

    def __init__(self, client: SalesforceClient, ttl_seconds: float = 900.0) -> None:
        self._client = client
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, ObjectDescribe] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.requests = 0
        self.revalidated = 0
        self.record_type_requests = 0

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
            await self._read_record_type_values(fresh)
            self._entries[key] = fresh
            return fresh

    async def _read_record_type_values(self, describe: ObjectDescribe) -> None:
        """Each record type's picklist values, one UI API call per record type (none for an object without
        record types). Also those the user may not create with: a record they update may have one."""
        for rt in describe.record_types:
            rt_id = str(rt["recordTypeId"])
            self.record_type_requests += 1
            response = await self._client.request(
                "GET", f"ui-api/object-info/{describe.name}/picklist-values/{rt_id}")
            by_field = response.json().get("picklistFieldValues") or {}
            describe.picklists_by_record_type[rt_id[:15]] = {
                name.lower(): frozenset(str(v["value"]) for v in body.get("values") or ())
                for name, body in by_field.items()}

    def invalidate(self, object_name: str | None = None) -> None:
        if object_name is None:
            self._entries.clear()
        else:
            self._entries.pop(object_name.lower(), None)
