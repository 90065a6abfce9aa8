"""/docs renders from the destination's own origin: the Swagger UI page references only local URLs (no CDN),
and each answers 200 with JavaScript, CSS or an image."""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
from settings_support import OPERATOR, settings_file

from destination.config import load_settings
from destination.service import build


async def test_docs_page_loads_swagger_ui_only_from_the_destination_itself(tls_emulator: Any,
                                                                          tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        service = await build(load_settings(settings_file(tmp_path, tls_emulator)), stack, consume=False)
        transport = httpx.ASGITransport(app=service.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=OPERATOR) as client:
            page = await client.get("/docs")
            assert page.status_code == 200
            urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*['"]([^"']+)['"]""", page.text)
            referenced = {a or b for a, b in urls}
            assert referenced, page.text
            outside = {u for u in referenced if not u.startswith("/")}
            assert not outside, f"/docs loads from elsewhere: {outside}"
            kinds = {}
            for url in referenced:
                r = await client.get(url)
                assert r.status_code == 200, url
                kinds[url] = r.headers["content-type"]
            assert any("javascript" in k for k in kinds.values()) and any("css" in k for k in kinds.values())
            js = await client.get("/docs/assets/swagger-ui-bundle.js")
            assert len(js.content) > 500_000 and b"SwaggerUIBundle" in js.content
            assert (await client.get("/openapi.json")).json()["info"]["title"] == "Salesforce event destination"
            assert (await client.get("/redoc")).status_code == 404  # its page would load ReDoc from a CDN


async def test_every_path_parameter_in_the_openapi_document_is_declared(tls_emulator: Any, tmp_path: Path) -> None:
    """A `{name}` in a path with no parameter of that name makes the document invalid: schemathesis (and any
    client generator) refuses the operation (the Outbound Message listener's `{secret}` was undeclared)."""
    async with AsyncExitStack() as stack:
        service = await build(load_settings(settings_file(tmp_path, tls_emulator)), stack, consume=False)
        transport = httpx.ASGITransport(app=service.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=OPERATOR) as client:
            paths = (await client.get("/openapi.json")).json()["paths"]
    undeclared = {}
    for path, operations in paths.items():
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            missing = set(re.findall(r"\{([^}]+)\}", path)) - declared
            if missing:
                undeclared[f"{method.upper()} {path}"] = missing
    assert "/v1/salesforce/outbound/{secret}" in paths and not undeclared, undeclared
