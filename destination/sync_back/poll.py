"""Read changes from Salesforce: records whose SystemModstamp is at or after a moment (SOQL, ordered by
SystemModstamp then Id, paged through nextRecordsUrl), and deleted records (the sObject Get Deleted
resource, whose window is whole minutes and at most 15 days back)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from ..actions.sync_back_model import SyncObject
from ..salesforce.client import SalesforceClient, form_encode
from ..salesforce.soql import literal, name

PAGE = 2000  # records per query page (Salesforce's largest)
DELETED_DAYS = 15  # the delete log is kept this long: an older start is INVALID_REPLICATION_DATE


def select_fields(spec: SyncObject) -> list[str]:
    """What a change query reads: system fields, the id field and the synced fields (each once)."""
    out: list[str] = []
    for field in ["Id", "SystemModstamp", "LastModifiedById", spec.id_field, *spec.rules()]:
        if field.lower() not in {f.lower() for f in out}:
            out.append(name(field))
    return out


def changes_query(spec: SyncObject, since: datetime | None) -> str:
    """The SOQL for records changed at or after `since` (every record when None), oldest change first."""
    where = f" WHERE SystemModstamp >= {literal(since, 'datetime')}" if since is not None else ""
    return (f"SELECT {', '.join(select_fields(spec))} FROM {name(spec.object)}{where} "
            "ORDER BY SystemModstamp ASC, Id ASC")


async def changed_records(client: SalesforceClient, spec: SyncObject,
                          since: datetime | None) -> AsyncIterator[dict[str, Any]]:
    """Records changed at or after `since`, page by page, without their `attributes`."""
    async for record in client.query_iter(changes_query(spec, since), batch_size=PAGE):
        yield {k: v for k, v in record.items() if k != "attributes"}


def deleted_window(since: datetime, now: datetime) -> tuple[datetime, datetime]:
    """A Get Deleted window from `since` to now: whole minutes (the API ignores seconds), start before end,
    start no more than 15 days back."""
    start = max(since, now - timedelta(days=DELETED_DAYS) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    end = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return start, max(end, start + timedelta(minutes=1))


async def deleted_records(client: SalesforceClient, obj: str, since: datetime,
                          now: datetime) -> tuple[list[tuple[str, str]], str | None]:
    """(Id, deletedDate) of records deleted since `since`, oldest first, and the latestDateCovered."""
    start, end = deleted_window(since, now)
    path = (f"sobjects/{name(obj)}/deleted/?start={form_encode(start.isoformat())}"
            f"&end={form_encode(end.isoformat())}")
    body = await client.json("GET", path)
    found = sorted(((str(d["id"]), str(d["deletedDate"])) for d in body.get("deletedRecords", [])),
                   key=lambda pair: (pair[1], pair[0]))
    return found, body.get("latestDateCovered")
