"""Routes of the sync-log page: the filtered table with counts, and one outcome in detail."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import QueryParams

from ..access import Sessions
from ..actions.model import ActionFile
from ..actions.values import ValueProblem, field_value
from ..outcomes import Status
from ..synclog.base import SyncLog, SyncLogRow
from ..synclog.filters import filter_from, page_from
from .auth import csrf_field, csrf_ok

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())


def mapped_fields(sources: Mapping[str, ActionFile], row: SyncLogRow) -> dict[str, Any]:
    """The field values the row's action maps from its event (recomputed: mapping is pure)."""
    source = sources.get(row.source)
    action = next((a for a in source.actions if a.name == row.action), None) if source else None
    if action is None:
        return {}
    out: dict[str, Any] = {}
    for name, spec in action.field_specs().items():
        try:
            value = field_value(spec, row.event)
        except ValueProblem as exc:
            value = f"<failed: {exc}>"
        out[name] = None if repr(value) == "MISSING" else value
    return out


def router(sync_log: SyncLog, sources: Mapping[str, ActionFile], instance_url: Callable[[], str],
           sessions: Sessions, replay: Callable[[SyncLogRow, str], Awaitable[None]] | None = None) -> APIRouter:
    """Pages for one sync log; `instance_url()` gives the org's URL for record links; `replay` re-drives a
    row's event for the named operator (None: this process does not deliver, so the page offers no replay)."""
    pages = APIRouter()

    def record_url(row: SyncLogRow) -> str:
        return f"{instance_url()}/lightning/r/{row.object or 'sObject'}/{row.record_id}/view"

    @pages.get("/sync-log", response_class=HTMLResponse)
    async def sync_log_page(request: Request) -> HTMLResponse:
        q = request.query_params
        filters = filter_from(q)  # BadFilter: the app answers 422
        limit, offset = page_from(q, default=200)
        rows = await sync_log.rows(filters, limit=limit, offset=offset)
        counts = await sync_log.counts(filters)
        older = f"?{QueryParams({**q, 'offset': str(offset + limit)})}" if len(rows) == limit else None
        html = _ENV.get_template("sync_log.html").render(rows=rows, filters=filters, record_url=record_url,
                                                         counts={s.value: counts.get(s, 0) for s in Status},
                                                         older=older, csrf=csrf_field(sessions, request))
        return HTMLResponse(html)

    @pages.get("/sync-log/{row_id}", response_class=HTMLResponse)
    async def detail(request: Request, row_id: int = PathParam(ge=1, le=2**63 - 1),  # SQLite's INTEGER
                     replayed: bool = False) -> HTMLResponse:
        row = await sync_log.row(row_id)
        if row is None:
            return HTMLResponse("<p>No such outcome.</p>", status_code=404)
        html = _ENV.get_template("detail.html").render(
            row=row, record_url=record_url, event=json.dumps(row.event, indent=2, sort_keys=True),
            mapped=json.dumps(mapped_fields(sources, row), indent=2, default=str),
            csrf=csrf_field(sessions, request), can_replay=replay is not None and row.status is Status.FAILED,
            replayed=replayed)
        return HTMLResponse(html)

    @pages.post("/sync-log/{row_id}/replay")
    async def replay_row(request: Request, row_id: int = PathParam(ge=1, le=2**63 - 1), csrf: str = Form("")
                         ) -> Response:
        """Re-drive one failed outcome's event (scope `replay`, and the form's CSRF field)."""
        if not csrf_ok(sessions, request, csrf):
            return HTMLResponse("<p>Refused: the form's CSRF token is missing or wrong.</p>", status_code=403)
        row = await sync_log.row(row_id)
        if row is None or replay is None:
            return HTMLResponse("<p>Nothing to replay here.</p>", status_code=404)
        await replay(row, request.state.operator.name)
        return RedirectResponse(f"/sync-log/{row_id}?replayed=true", status_code=303)

    return pages
