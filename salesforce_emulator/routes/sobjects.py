"""Routes: sObject describe, create / retrieve / update / delete, upsert by external ID (REST §2)."""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ..errors import SfError, SfException
from ..org import ObjectDef
from .deps import CallerOrg, CurrentSession, State, Version
from .records import json_body, known_object, object_body, record_errors, record_url, render, version_text

router = APIRouter()


@router.get("/sobjects")
@router.get("/sobjects/")
async def global_describe(request: Request, view: CallerOrg) -> JSONResponse:
    version = version_text(request)
    return JSONResponse({"encoding": "UTF-8", "maxBatchSize": 200,
                         "sobjects": [o.summary(version) for o in view.objects.values()]})


@router.get("/sobjects/{obj}")
async def object_info(obj: str, request: Request, view: CallerOrg) -> JSONResponse:
    od = known_object(view, obj)
    return JSONResponse({"objectDescribe": od.summary(version_text(request)), "recentItems": []})


@router.get("/sobjects/{obj}/describe")
@router.get("/sobjects/{obj}/describe/")
async def describe(obj: str, request: Request, state: State, view: CallerOrg) -> Response:
    """Full describe as the caller sees the object; `If-Modified-Since` later than the org's load time
    answers 304."""
    od = known_object(view, obj)
    since = request.headers.get("if-modified-since")
    if since:
        try:
            if parsedate_to_datetime(since) >= state.org_loaded_at.replace(microsecond=0):
                return Response(status_code=304)
        except (TypeError, ValueError):
            pass
    body = od.describe(version_text(request), view.child_relationships(od.name))
    return JSONResponse(body, headers={"Last-Modified": format_datetime(state.org_loaded_at, usegmt=True)})


@router.post("/sobjects/{obj}")
@router.post("/sobjects/{obj}/")
async def create(obj: str, request: Request, state: State, view: CallerOrg, session: CurrentSession) -> Response:
    od = known_object(view, obj)
    body = object_body(await json_body(request))
    result = state.store.insert(od.name, body, view=view, user_id=session.user_id)
    if not result.success:
        raise record_errors(result.errors)
    assert result.id is not None
    return JSONResponse({"id": result.id, "success": True, "errors": []}, status_code=201,
                        headers={"Location": record_url(version_text(request), od, result.id)})


@router.get("/sobjects/{obj}/{record_id}")
async def retrieve(obj: str, record_id: str, request: Request, state: State, view: CallerOrg) -> JSONResponse:
    od = known_object(view, obj)
    found = state.store.get(record_id)
    if found is None or found[0].name != od.name:
        deleted = state.store.get(record_id, include_deleted=True)
        if deleted is not None and deleted[0].name == od.name:
            raise SfException(404, SfError("ENTITY_IS_DELETED", "entity is deleted"))
        raise SfException(404, SfError("NOT_FOUND", "The requested resource does not exist"))
    return JSONResponse(render(od, found[1], version_text(request), _fields_param(request)))


@router.post("/sobjects/{obj}/{record_id}")
async def post_override(obj: str, record_id: str, request: Request, state: State, view: CallerOrg,
                        session: CurrentSession) -> Response:
    """`POST ...?_HttpMethod=PATCH` for clients that cannot send PATCH; `POST /sobjects/X/Id` creates."""
    if request.query_params.get("_HttpMethod", "").upper() == "PATCH":
        return await update(obj, record_id, request, state, view, session)
    if record_id.lower() == "id":
        return await create(obj, request, state, view, session)
    raise SfException(405, SfError("METHOD_NOT_ALLOWED", "HTTP Method 'POST' not allowed. Allowed are GET,PATCH,"
                                   "DELETE,HEAD"))


@router.patch("/sobjects/{obj}/{record_id}")
async def update(obj: str, record_id: str, request: Request, state: State, view: CallerOrg,
                 session: CurrentSession) -> Response:
    od = known_object(view, obj)
    body = object_body(await json_body(request))
    result = state.store.update(od.name, record_id, body, view=view, user_id=session.user_id)
    if not result.success:
        raise record_errors(result.errors)
    return Response(status_code=204)


@router.delete("/sobjects/{obj}/{record_id}")
async def delete(obj: str, record_id: str, state: State, view: CallerOrg, session: CurrentSession) -> Response:
    od = known_object(view, obj)
    result = state.store.delete(od.name, record_id, view=view, user_id=session.user_id)
    if not result.success:
        raise record_errors(result.errors)
    return Response(status_code=204)


@router.get("/sobjects/{obj}/{field}/{value:path}")
async def retrieve_by_external_id(obj: str, field: str, value: str, request: Request, state: State,
                                  view: CallerOrg) -> JSONResponse:
    od = known_object(view, obj)
    matches = _external_matches(od, field, unquote(value), state)
    if not matches:
        raise SfException(404, SfError("NOT_FOUND", "The requested resource does not exist"))
    if len(matches) > 1:
        return JSONResponse([record_url(version_text(request), od, m) for m in matches], status_code=300)
    found = state.store.get(matches[0])
    assert found is not None
    return JSONResponse(render(od, found[1], version_text(request), _fields_param(request)))


@router.patch("/sobjects/{obj}/{field}/{value:path}")
async def upsert(obj: str, field: str, value: str, request: Request, state: State, version: Version,
                 view: CallerOrg, session: CurrentSession) -> Response:
    """201 created / 200 `created:false` (v46+; 204 before) / 300 several matches / 404 unknown field."""
    od = known_object(view, obj)
    body = object_body(await json_body(request))
    if request.query_params.get("updateOnly", "").lower() == "true" and not _external_matches(
            od, field, unquote(value), state):
        raise SfException(404, SfError("NOT_FOUND", "The requested resource does not exist"))
    result = state.store.upsert(od.name, field, unquote(value), body, view=view, user_id=session.user_id)
    if result.matches:
        return JSONResponse([record_url(version_text(request), od, m) for m in result.matches], status_code=300)
    if not result.success:
        raise record_errors(result.errors)
    if not result.created and version <= 45:
        return Response(status_code=204)
    body_out: dict[str, Any] = {"id": result.id, "success": True, "errors": [], "created": result.created}
    headers = {"Location": record_url(version_text(request), od, result.id or "")} if result.created else {}
    return JSONResponse(body_out, status_code=201 if result.created else 200, headers=headers)


def _external_matches(od: ObjectDef, field: str, value: str, state: Any) -> list[str]:
    fd = od.field(field)
    if fd is None or not (fd.external_id or fd.id_lookup):
        raise SfException(404, SfError("NOT_FOUND", "Provided external ID field does not exist or is not "
                                       f"accessible: {field}"))
    return state.store.find(od, fd.name, value)


def _fields_param(request: Request) -> list[str] | None:
    raw = request.query_params.get("fields")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw else None
