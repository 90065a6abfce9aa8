"""Routes: the replication resources, sObject Get Updated and Get Deleted (REST API, v29.0+).

`GET /sobjects/{o}/updated/?start=&end=` answers the Ids whose SystemModstamp falls in [start, end);
`GET /sobjects/{o}/deleted/?start=&end=` the recycle-bin records deleted in it, with their deletedDate.
As Salesforce documents them: the seconds of start and end are ignored, start must precede end
(INVALID_REPLICATION_DATE otherwise), start may be no more than 30 days (deleted: 15 days) before the
call, and `latestDateCovered` (≤ end) is where the next window should start.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..coercion import datetime_wire, parse_datetime
from ..errors import SfError, SfException
from .deps import CallerOrg, State
from .records import known_object

router = APIRouter()

UPDATED_DAYS = 30
DELETED_DAYS = 15


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _moment(request: Request, name: str) -> datetime:
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        raise SfException(400, SfError("MISSING_ARGUMENT", f"{name} not specified"))
    moment = parse_datetime(raw.replace(" ", "+"))  # an unencoded '+' arrives as a space
    if moment is None:
        raise SfException(400, SfError("INVALID_REPLICATION_DATE", f"{name}: invalid date/time {raw}"))
    return _minute(moment.astimezone(UTC))


def _window(request: Request, days: int) -> tuple[datetime, datetime, datetime]:
    """(start, end, latestDateCovered) of a request, or the error Salesforce gives for it."""
    start, end = _moment(request, "start"), _moment(request, "end")
    now = datetime.now(UTC)
    if start >= end:
        raise SfException(400, SfError("INVALID_REPLICATION_DATE", "startDate must chronologically precede "
                                       "endDate"))
    if start < _minute(now) - timedelta(days=days):
        raise SfException(400, SfError("INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days "
                                       "ago"))
    # Changes in the current minute may still be committing: coverage ends at the start of this minute.
    return start, end, min(end, _minute(now))


def _in(record: dict[str, Any], start: datetime, end: datetime) -> bool:
    stamp = parse_datetime(record["SystemModstamp"])
    return stamp is not None and start <= stamp < end


@router.get("/sobjects/{obj}/updated")
@router.get("/sobjects/{obj}/updated/")
async def updated(obj: str, request: Request, state: State, view: CallerOrg) -> JSONResponse:
    od = known_object(view, obj)
    start, end, covered = _window(request, UPDATED_DAYS)
    rows = sorted((r for r in state.store.records(od.name) if _in(r, start, end)),
                  key=lambda r: (r["SystemModstamp"], r["Id"]))
    return JSONResponse({"ids": [r["Id"] for r in rows], "latestDateCovered": datetime_wire(covered)})


@router.get("/sobjects/{obj}/deleted")
@router.get("/sobjects/{obj}/deleted/")
async def deleted(obj: str, request: Request, state: State, view: CallerOrg) -> JSONResponse:
    od = known_object(view, obj)
    start, end, covered = _window(request, DELETED_DAYS)
    gone = [r for r in state.store.records(od.name, include_deleted=True) if r["IsDeleted"]]
    rows = sorted((r for r in gone if _in(r, start, end)), key=lambda r: (r["SystemModstamp"], r["Id"]))
    earliest = min((r["SystemModstamp"] for r in gone), default=datetime_wire(covered))
    return JSONResponse({"deletedRecords": [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in rows],
                         "earliestDateAvailable": earliest, "latestDateCovered": datetime_wire(covered)})
