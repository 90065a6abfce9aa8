"""Routes: SOQL over REST — /query, /queryAll and their nextRecordsUrl pages (§3)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import SfError, SfException
from ..query import batch_size
from ..soql import execute, parse
from .deps import CallerOrg, State
from .records import version_text

router = APIRouter()


def _run(request: Request, state: State, view: CallerOrg, *, include_deleted: bool) -> JSONResponse:
    text = request.query_params.get("q")
    if text is None:
        raise SfException(400, SfError("MALFORMED_QUERY", "A query string has to be specified"))
    version = version_text(request)
    query = parse(text)
    # Names resolve against the caller's view: an object or field they cannot see does not exist for them.
    total, rows = execute(query, view, state.store, include_deleted=include_deleted, version=version)
    if query.count_only:
        return JSONResponse({"totalSize": total, "done": True, "records": []})
    path = "queryAll" if include_deleted else "query"
    body = state.cursors.page(rows, batch_size(request.headers.get("sforce-query-options")), version, path)
    return JSONResponse(body)


@router.get("/query")
@router.get("/query/")
async def query(request: Request, state: State, view: CallerOrg) -> JSONResponse:
    return _run(request, state, view, include_deleted=False)


@router.get("/queryAll")
@router.get("/queryAll/")
async def query_all(request: Request, state: State, view: CallerOrg) -> JSONResponse:
    return _run(request, state, view, include_deleted=True)


@router.get("/query/{locator}")
@router.get("/queryAll/{locator}")
async def next_page(locator: str, request: Request, state: State) -> JSONResponse:
    path = "queryAll" if "/queryAll/" in request.url.path else "query"
    body = state.cursors.next(locator, version_text(request), path)
    if body is None:
        raise SfException(400, SfError("INVALID_QUERY_LOCATOR", "invalid query locator"))
    return JSONResponse(body)
