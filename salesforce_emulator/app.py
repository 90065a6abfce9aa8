"""The emulator's FastAPI application: Salesforce's URL space, one router per resource family."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import versions
from .errors import SfError, SfException
from .limits import install_limits
from .routes import admin, bulk, collections, oauth, query, replication, sobjects, ui_api
from .routes import limits as limits_routes
from .routes.deps import api_version, require_session
from .state import EmulatorState


def create_app(state: EmulatorState) -> FastAPI:
    """Build the app around a state; nothing is module-global, so tests can run several emulators."""
    app = FastAPI(title="Salesforce emulator", docs_url="/__admin/docs", openapi_url="/__admin/openapi.json")
    app.state.emulator = state

    @app.exception_handler(SfException)
    async def _sf_error(_: Request, exc: SfException) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return SfException(405, SfError("METHOD_NOT_ALLOWED", "HTTP Method not allowed")).response()
        if exc.status_code == 404:
            return SfException(404, SfError("NOT_FOUND", "The requested resource does not exist")).response()
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return SfException(400, SfError("JSON_PARSER_ERROR", str(exc.errors()[:1]))).response()

    @app.get("/services/data", include_in_schema=False)
    @app.get("/services/data/")
    async def list_versions() -> JSONResponse:
        return JSONResponse(versions.all_versions())

    data = [Depends(api_version), Depends(require_session)]
    prefix = "/services/data/{version}"
    app.include_router(oauth.router)
    # replication first: /sobjects/{o}/updated/ must not be taken for a record Id "updated"
    for module in (replication, sobjects, query, collections, bulk, limits_routes, ui_api):
        app.include_router(module.router, prefix=prefix, dependencies=data)
    app.include_router(admin.router, prefix="/__admin")
    install_limits(app, state)
    return app
