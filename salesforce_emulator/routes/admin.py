"""Routes under /__admin (no auth): records, reset, faults, stats, usage, lead conversion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import SfError, SfException
from .deps import State
from .records import json_body, known_object

router = APIRouter()


@router.get("/records/{obj}")
async def records(obj: str, state: State, include_deleted: bool = False) -> JSONResponse:
    """Every record of an object as the store holds it (wire format); ?include_deleted=true adds deleted ones."""
    od = known_object(state.org, obj)
    return JSONResponse(state.store.records(od.name, include_deleted=include_deleted))


PERSON = "person@emulator.test"


def _acting_user(state: Any, username: str | None) -> str:
    """The Id of the user an admin write is made as: `?user=` or the org's person, else its last user."""
    users = state.org.users
    wanted = username or PERSON
    user = next((u for u in users if u.username == wanted), None)
    if user is None and username is None and users:
        user = users[-1]
    if user is None:
        raise SfException(400, SfError("INVALID_FIELD", f"no such user: {wanted}"))
    return str(user.id)


def _write_answer(result: Any, status: int) -> JSONResponse:
    if not result.success:
        raise SfException(400, *(result.errors or [SfError("DUPLICATE_VALUE", "several matches")]))
    return JSONResponse({"id": result.id, "success": True, "errors": []}, status_code=status)


@router.post("/records/{obj}")
async def create_as_user(obj: str, request: Request, state: State, user: str | None = None) -> JSONResponse:
    """Create a record as a person would in the UI (CreatedById / LastModifiedById = that user, `?user=`
    a username; default person@emulator.test). Not counted as an API call."""
    od = known_object(state.org, obj)
    body = await _object_body(request)
    return _write_answer(state.store.insert(od.name, body, user_id=_acting_user(state, user)), 201)


@router.patch("/records/{obj}/{record_id}")
async def update_as_user(obj: str, record_id: str, request: Request, state: State,
                         user: str | None = None) -> JSONResponse:
    """Change a record as a person would (LastModifiedById, LastModifiedDate and SystemModstamp follow)."""
    od = known_object(state.org, obj)
    body = await _object_body(request)
    return _write_answer(state.store.update(od.name, record_id, body, user_id=_acting_user(state, user)), 200)


@router.delete("/records/{obj}/{record_id}")
async def delete_as_user(obj: str, record_id: str, state: State, user: str | None = None) -> JSONResponse:
    """Delete a record as a person would (to the recycle bin, where getDeleted finds it)."""
    od = known_object(state.org, obj)
    return _write_answer(state.store.delete(od.name, record_id, user_id=_acting_user(state, user)), 200)


@router.post("/reset")
async def reset(state: State) -> JSONResponse:
    """Empty the org, the Bulk jobs, the query cursors and the usage counters (tokens stay valid)."""
    state.store.reset()
    state.bulk.reset()
    reset_cursors = getattr(state.cursors, "reset", None)
    if callable(reset_cursors):
        reset_cursors()
    state.usage.reset()
    return JSONResponse({"reset": True})


@router.get("/faults")
async def get_faults(state: State) -> JSONResponse:
    """The fault settings in force, the daily API maximum, and whether a limit window is open."""
    return JSONResponse(state.faults.as_dict() | {"api_daily_max": state.usage.daily_max})


def _count(body: dict[str, Any], key: str, *, minimum: int) -> int | None:
    """An integer setting from an admin body (None when absent); 400 when it is not an integer >= minimum."""
    if key not in body:
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SfException(400, SfError("INVALID_FIELD", f"{key}: an integer >= {minimum}, not {value!r}"))
    return value


async def _object_body(request: Request) -> dict[str, Any]:
    body: Any = await json_body(request)
    if not isinstance(body, dict):
        raise SfException(400, SfError("JSON_PARSER_ERROR", "expected a JSON object"))
    return dict(body)


@router.post("/faults")
async def set_faults(request: Request, state: State) -> JSONResponse:
    """Change faults at run time: latency_ms, error_503_rate, lock_error_rate, token_lifetime_seconds, seed,
    trigger_error_above, trigger_error_marker,
    limit_exceeded_for_seconds, api_daily_max. All or nothing: a bad key or value changes none (400)."""
    body = await _object_body(request)
    daily_max = _count(body, "api_daily_max", minimum=1)
    body.pop("api_daily_max", None)
    try:
        state.faults.update(body)
    except ValueError as exc:
        raise SfException(400, SfError("INVALID_FIELD", str(exc))) from None
    if daily_max is not None:
        state.usage.daily_max = daily_max
    return JSONResponse(state.faults.as_dict() | {"api_daily_max": state.usage.daily_max})


@router.get("/stats")
async def stats(state: State) -> JSONResponse:
    """API calls by endpoint and in total, as Salesforce counts them; records per object; Bulk jobs."""
    counts = {name: len(state.store.records(name)) for name in state.org.objects}
    return JSONResponse({"api_calls": state.usage.snapshot(), "records": counts, "bulk_jobs": len(state.bulk.jobs)})


@router.post("/usage")
async def set_usage(request: Request, state: State) -> JSONResponse:
    """Set the calls used today, {"total": N} (to test the daily limit without making them)."""
    total = _count(await _object_body(request), "total", minimum=0)
    if total is None:
        raise SfException(400, SfError("REQUIRED_FIELD_MISSING", "total is required", ("total",)))
    state.usage.total = total
    return JSONResponse(state.usage.snapshot())


@router.post("/convert-lead/{lead_id}")
async def convert_lead(lead_id: str, state: State) -> JSONResponse:
    """Convert a Lead (Account + Contact), as a user would in Salesforce."""
    result = state.store.convert_lead(lead_id)
    if not result.success:
        raise SfException(400, *result.errors)
    found = state.store.get(lead_id)
    assert found is not None
    lead = found[1]
    return JSONResponse({"leadId": lead["Id"], "accountId": lead["ConvertedAccountId"],
                         "contactId": lead["ConvertedContactId"]})
