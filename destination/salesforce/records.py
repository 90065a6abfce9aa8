"""Record writes over REST: single sObject calls, native upsert, and sObject Collections in chunks of 200.

Every record gets a RecordResult. Only request-level failures that the caller must act on (rate limit,
auth, transient errors after retries) are raised; a whole-request permanent error fails its records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import ErrorKind, SalesforceApiError, SalesforceError
from .results import RecordResult

if TYPE_CHECKING:
    from .client import SalesforceClient

COLLECTION_LIMIT = 200


def _raise_unless_per_record(exc: SalesforceApiError) -> list[SalesforceError]:
    """Permanent and uncertain errors become per-record results; anything else is the caller's to handle."""
    if exc.kind in (ErrorKind.PERMANENT, ErrorKind.UNCERTAIN):
        return exc.errors or [exc.error]
    raise exc


class RecordsApi:
    """sObject and sObject Collections calls for one client."""

    def __init__(self, client: SalesforceClient) -> None:
        self._client = client

    # ----- single records ------------------------------------------------------------------------------

    async def create(self, obj: str, values: dict[str, Any]) -> RecordResult:
        """POST /sobjects/{obj}; a timeout after sending is UNCERTAIN_WRITE, never re-sent."""
        try:
            body = await self._client.json("POST", f"sobjects/{obj}", json=values, idempotent=False)
        except SalesforceApiError as exc:
            return RecordResult.failed(*_raise_unless_per_record(exc))
        return RecordResult.ok(body["id"], created=True)

    async def get(self, obj: str, record_id: str, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The record, or None when it does not exist (or is deleted)."""
        params = {"fields": ",".join(fields)} if fields else None
        try:
            return await self._client.json("GET", f"sobjects/{obj}/{record_id}", params=params)
        except SalesforceApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def update(self, obj: str, record_id: str, values: dict[str, Any]) -> RecordResult:
        try:
            await self._client.request("PATCH", f"sobjects/{obj}/{record_id}", json=values)
        except SalesforceApiError as exc:
            return RecordResult.failed(*_raise_unless_per_record(exc), record_id=record_id)
        return RecordResult.ok(record_id)

    async def delete(self, obj: str, record_id: str) -> RecordResult:
        try:
            await self._client.request("DELETE", f"sobjects/{obj}/{record_id}")
        except SalesforceApiError as exc:
            return RecordResult.failed(*_raise_unless_per_record(exc), record_id=record_id)
        return RecordResult.ok(record_id)

    async def upsert(self, obj: str, ext_field: str, ext_value: str, values: dict[str, Any]) -> RecordResult:
        """PATCH /sobjects/{obj}/{field}/{value}: created / updated / several matches (MULTIPLE_MATCHES)."""
        body_values = {k: v for k, v in values.items() if k.lower() != ext_field.lower()}
        path = f"sobjects/{obj}/{ext_field}/{quote(str(ext_value), safe='')}"
        try:
            response = await self._client.request("PATCH", path, json=body_values)
        except SalesforceApiError as exc:
            return RecordResult.failed(*_raise_unless_per_record(exc))
        if response.status_code == 300:
            urls = response.json()
            ids = [u.rsplit("/", 1)[-1] for u in urls]
            return RecordResult.failed(SalesforceError("MULTIPLE_MATCHES", f"{ext_field} = {ext_value} matches "
                                                       f"{len(ids)} records", (ext_field,), 300, {"ids": ids}))
        if response.status_code == 204:
            return RecordResult.ok(None, created=False)
        body = response.json()
        return RecordResult.ok(body.get("id"), created=bool(body.get("created", response.status_code == 201)))

    # ----- collections -----------------------------------------------------------------------------------

    async def create_many(self, obj: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        """Create records, 200 per call, allOrNone=false; a timeout makes that chunk UNCERTAIN_WRITE."""
        return await self._chunked(records, lambda chunk: ("POST", "composite/sobjects", {
            "allOrNone": False, "records": _typed(obj, chunk)}), idempotent=False)

    async def update_many(self, obj: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        """Update records (each with its Id), 200 per call."""
        return await self._chunked(records, lambda chunk: ("PATCH", "composite/sobjects", {
            "allOrNone": False, "records": _typed(obj, chunk)}), idempotent=True)

    async def upsert_many(self, obj: str, ext_field: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        """Upsert records by an external-ID field, 200 per call. A lost answer is UNCERTAIN_WRITE, not resent
        here: the writer sends it again and must tell whether the lost send created the record."""
        return await self._chunked(records, lambda chunk: ("PATCH", f"composite/sobjects/{obj}/{ext_field}", {
            "allOrNone": False, "records": _typed(obj, chunk)}), idempotent=False)

    async def delete_many(self, ids: Sequence[str]) -> list[RecordResult]:
        """Delete records by Id, 200 per call."""
        results: list[RecordResult] = []
        for start in range(0, len(ids), COLLECTION_LIMIT):
            chunk = list(ids[start:start + COLLECTION_LIMIT])
            try:
                body = await self._client.json("DELETE", "composite/sobjects",
                                               params={"ids": ",".join(chunk), "allOrNone": "false"})
            except SalesforceApiError as exc:
                errors = _raise_unless_per_record(exc)
                results.extend(RecordResult.failed(*errors, record_id=i) for i in chunk)
                continue
            results.extend(_items(body, len(chunk)))
        return results

    async def _chunked(self, records: Sequence[dict[str, Any]], build: Any, *, idempotent: bool) -> list[RecordResult]:
        results: list[RecordResult] = []
        for start in range(0, len(records), COLLECTION_LIMIT):
            chunk = list(records[start:start + COLLECTION_LIMIT])
            method, path, payload = build(chunk)
            try:
                body = await self._client.json(method, path, json=payload, idempotent=idempotent)
            except SalesforceApiError as exc:
                errors = _raise_unless_per_record(exc)
                results.extend(RecordResult.failed(*errors) for _ in chunk)
                continue
            results.extend(_items(body, len(chunk)))
        return results


def _typed(obj: str, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as a collection carries them: each with attributes naming its type (one attributes
    value shared by all: it is only serialised)."""
    attributes = {"type": obj}
    return [{"attributes": attributes, **record} if "attributes" not in record else
            {"attributes": attributes, **{k: v for k, v in record.items() if k != "attributes"}} for record in records]


def _items(body: Any, expected: int) -> list[RecordResult]:
    """Collections items in request order; a short answer is a bug on the far side, reported per record."""
    items = [RecordResult.from_collection_item(i) for i in (body or [])]
    missing = SalesforceError("MISSING_RESULT", "Salesforce returned no result for this record")
    return items + [RecordResult.failed(missing) for _ in range(expected - len(items))]
