"""The OpenAPI page (/docs) with Swagger UI's script and stylesheet served by the destination itself, from
files installed with the package (fastapi-offline ships them), not from a CDN: the page renders offline, in
an air-gapped cluster and under a Content-Security-Policy that allows only the destination's own origin."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"


def assets_dir() -> Path:
    """Swagger UI's files as installed (swagger-ui-bundle.js, swagger-ui.css, favicon.png)."""
    return Path(str(files("fastapi_offline") / "static"))


def serve_docs(app: FastAPI, docs_url: str = "/docs") -> None:
    """Add `docs_url` and its assets to an app created with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")  # behind a proxy that strips a path prefix
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API",
                                   swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png")
