"""Who may call what: every operator endpoint (enumerated from the app, so a new route cannot slip through)
refuses anonymous and write-key callers; scopes are enforced; operator tokens are not write keys; the Host
header is checked; the page's login sets a signed Secure/HttpOnly/SameSite=Strict cookie and its forms need
the CSRF field; `--ingest-only` and the separate operator listener serve only their side."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from settings_support import OPERATOR, OPERATOR_TOKEN, settings_file

from destination.access import LOGIN_PATHS, OPEN_PATHS
from destination.config import OperatorTokenConfig, Scope, load_settings
from destination.events import Event
from destination.service import Service, build

WRITE_KEY = "web-app-demo-key"  # the shipped web-app source's key
READ_TOKEN = "read-only-token-0123456789abcdefghijklmnopq"
REPLAY_TOKEN = "replay-token-0123456789abcdefghijklmnopqrstu"
IDENTIFY = {"type": "identify", "userId": "u1", "traits": {"email": "pii@x.example", "last_name": "P"}}


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
async def service(tls_emulator: Any, tmp_path: Path) -> AsyncIterator[Service]:
    settings = load_settings(settings_file(tmp_path, tls_emulator, "http: {allowed_hosts: [dest.example.com]}\n"))
    settings.operator_tokens += [OperatorTokenConfig(name="reader", sha256=_sha(READ_TOKEN), scopes=[Scope.READ]),
                                 OperatorTokenConfig(name="replayer", sha256=_sha(REPLAY_TOKEN),
                                                     scopes=[Scope.REPLAY])]
    async with AsyncExitStack() as stack:
        service = await build(settings, stack)
        assert service.pipeline is not None
        await service.pipeline.submit(Event("web-app", {**IDENTIFY, "messageId": "m1"}))
        await service.pipeline.drain()
        yield service


def _client(app: FastAPI, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=f"http://{host}", headers=headers)


def _flat(routes: list[Any]) -> list[Any]:
    """Every route, with included routers opened (FastAPI ≥ 0.16x keeps them as one entry each; no prefixes
    are used by the app)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(_flat(inner.routes) if inner is not None else [route])
    return out


def _operator_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) of every route that is not ingest, health or the login form."""
    out = []
    for route in _flat(app.routes):
        path = getattr(route, "path", "")
        methods = getattr(route, "methods", None) or {"GET"}
        if path in OPEN_PATHS or path in LOGIN_PATHS or path.startswith("/v1/salesforce/outbound/"):
            continue
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None and endpoint.__name__.startswith("ingest_"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        out.extend((m, concrete) for m in sorted(methods) if m != "HEAD")
    return out


async def test_every_operator_endpoint_refuses_anonymous_and_write_key_callers(service: Service) -> None:
    app = service.app()
    routes = _operator_routes(app)
    paths = {p for _, p in routes}
    assert {"/v1/sync-log", "/v1/preview", "/metrics", "/docs", "/openapi.json", "/sync-log", "/sync-log/1",
            "/sync-log/1/replay", "/v1/sync-log/1/replay", "/logout"} <= paths, paths
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    callers: list[dict[str, str]] = [{}, {"Authorization": f"Basic {basic}"}, {"Authorization": f"Bearer {WRITE_KEY}"},
                                     {"Authorization": f"Bearer {OPERATOR_TOKEN}x"}]
    async with _client(app) as http:
        for method, path in routes:
            for headers in callers:
                body = {"writeKey": WRITE_KEY, "source": "web-app", "events": [IDENTIFY]}
                r = await http.request(method, path, headers=headers, json=body if method != "GET" else None,
                                       params={"key": WRITE_KEY, "writeKey": WRITE_KEY})
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text[:200])
                assert "pii@x.example" not in r.text
            r = await http.request(method, path, headers=OPERATOR, json={} if method != "GET" else None)
            assert r.status_code not in (401, 403), (method, path, r.status_code)


async def test_sync_log_preview_metrics_and_docs_need_an_operator_token(service: Service) -> None:
    async with _client(service.app()) as http:
        for path in ("/v1/sync-log", "/metrics", "/docs", "/openapi.json", "/sync-log"):
            assert (await http.get(path)).status_code == 401, path
        page = await http.get("/sync-log/1", headers={"Accept": "text/html"})
        assert page.status_code == 401 and 'href="/login?next=/sync-log/1"' in page.text
        preview = {"source": "web-app", "events": [IDENTIFY]}
        assert (await http.post("/v1/preview", json=preview)).status_code == 401
        rows = (await http.get("/v1/sync-log", headers=OPERATOR)).json()["rows"]
        assert rows and rows[0]["email"] == "pii@x.example"
        # preview shows a record's current values: a reader may, nobody else
        r = await http.post("/v1/preview", json=preview, headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert r.status_code == 200 and r.json()["would"]["update"] + r.json()["would"]["skip"] == 1


async def test_scopes_are_enforced(service: Service) -> None:
    reader = {"Authorization": f"Bearer {READ_TOKEN}"}
    replayer = {"Authorization": f"Bearer {REPLAY_TOKEN}"}
    async with _client(service.app()) as http:
        row = (await http.get("/v1/sync-log", headers=reader)).json()["rows"][0]["id"]
        assert (await http.get("/metrics", headers=reader)).status_code == 200
        assert (await http.post(f"/v1/sync-log/{row}/replay", headers=reader)).status_code == 403
        assert (await http.post(f"/v1/sync-log/{row}/replay", headers=replayer)).status_code == 202
        assert (await http.get("/v1/sync-log", headers=replayer)).status_code == 200  # replay includes read
        # a state-changing route nobody listed needs `admin`
        from destination.access import Policy

        policy = Policy(frozenset(), ())
        assert policy.needed("DELETE", "/v1/anything") is Scope.ADMIN
        assert policy.needed("POST", "/v1/preview") is Scope.READ


async def test_an_operator_token_is_never_a_write_key(service: Service) -> None:
    basic = base64.b64encode(f"{OPERATOR_TOKEN}:".encode()).decode()
    async with _client(service.app()) as http:
        r = await http.post("/v1/identify", json=IDENTIFY, headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 401
        r = await http.post("/v1/identify", json={**IDENTIFY, "writeKey": OPERATOR_TOKEN}, headers=OPERATOR)
        assert r.status_code == 401
        r = await http.post("/v1/identify", json={**IDENTIFY, "writeKey": WRITE_KEY})
        assert r.status_code == 200


async def test_a_host_header_not_configured_is_refused(service: Service) -> None:
    app = service.app()
    for host in ("evil.example", "127.0.0.1.evil.example", "dest.example.com.evil"):
        async with _client(app, OPERATOR, host=host) as http:
            assert (await http.get("/v1/sync-log")).status_code == 400
            assert (await http.get("/sync-log")).status_code == 400
            assert (await http.post("/v1/identify", json={**IDENTIFY, "writeKey": WRITE_KEY})).status_code == 400
            assert (await http.get("/healthz")).status_code == 200  # probes send the pod's address
    for host in ("localhost:8080", "127.0.0.1", "dest.example.com", "DEST.example.com:443", "[::1]:8080"):
        async with _client(app, OPERATOR, host=host) as http:
            assert (await http.get("/v1/sync-log")).status_code == 200, host
    service.settings.http.allowed_hosts = ["*"]  # behind a proxy that checks the name itself
    async with _client(service.app(), OPERATOR, host="anything.example") as http:
        assert (await http.get("/v1/sync-log")).status_code == 200


def _set_cookies(r: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def _cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


async def _login(http: httpx.AsyncClient, token: str) -> tuple[httpx.Response, str]:
    form = await http.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf and form.status_code == 200
    login_cookie = _cookie_value(_set_cookies(form)["destination_login"])
    r = await http.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/sync-log"},
                        headers={"Cookie": f"destination_login={login_cookie}"})
    return r, login_cookie


async def test_the_login_sets_a_signed_secure_httponly_strict_cookie(service: Service) -> None:
    async with _client(service.app()) as http:
        r, _ = await _login(http, OPERATOR_TOKEN)
        assert r.status_code == 303 and r.headers["location"] == "/sync-log"
        cookie = _set_cookies(r)["destination_session"]
        flags = {f.strip().lower() for f in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags, flags
        value = _cookie_value(cookie)
        assert OPERATOR_TOKEN not in value and _sha(OPERATOR_TOKEN) not in value
        assert (await http.get("/sync-log", headers={"Cookie": f"destination_session={value}"})).status_code == 200
        tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
        assert (await http.get("/sync-log", headers={"Cookie": f"destination_session={tampered}"})).status_code == 401
        bad, _ = await _login(http, "not-a-token")
        assert bad.status_code == 401 and "destination_session" not in _set_cookies(bad)
        # the login form needs its own CSRF field (another site cannot sign a browser in)
        forged = await http.post("/login", data={"token": OPERATOR_TOKEN, "csrf": "x"})
        assert forged.status_code == 403 and "destination_session" not in _set_cookies(forged)


async def test_state_changing_forms_refuse_a_missing_or_wrong_csrf_field(service: Service) -> None:
    async with _client(service.app()) as http:
        r, _ = await _login(http, OPERATOR_TOKEN)
        session = {"Cookie": f"destination_session={_cookie_value(_set_cookies(r)['destination_session'])}"}
        row = (await http.get("/v1/sync-log", headers=OPERATOR)).json()["rows"][0]["id"]
        detail = await http.get(f"/sync-log/{row}", headers=session)
        assert detail.status_code == 200
        assert await _replay_form(http, row, session, None) == 403
        assert await _replay_form(http, row, session, "forged") == 403
        # the session cookie alone never works for the JSON API's state-changing calls
        assert (await http.post(f"/v1/sync-log/{row}/replay", headers=session)).status_code == 401
        assert (await http.post("/v1/preview", json={"source": "web-app", "events": []},
                                headers=session)).status_code == 401
        page = (await http.get("/sync-log", headers=session)).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        assert (await http.post("/logout", data={}, headers=session)).status_code == 403
        out = await http.post("/logout", data={"csrf": csrf.group(1)}, headers=session)
        assert out.status_code == 303 and 'destination_session=""' in out.headers.get("set-cookie", "")


async def _replay_form(http: httpx.AsyncClient, row: int, session: dict[str, str], csrf: str | None) -> int:
    data = {"csrf": csrf} if csrf is not None else {}
    return (await http.post(f"/sync-log/{row}/replay", data=data, headers=session)).status_code


async def test_the_page_replays_a_failed_event_with_the_form_csrf_field(service: Service,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    assert service.pipeline is not None
    await service.pipeline.submit(Event("web-app", {"type": "track", "event": "Order Completed", "userId": "u",
                                                    "messageId": "bad1", "properties": {"order_id": "o1",
                                                                                        "total": "lots"}}))
    await service.pipeline.drain()
    async with _client(service.app()) as http:
        r, _ = await _login(http, OPERATOR_TOKEN)
        session = {"Cookie": f"destination_session={_cookie_value(_set_cookies(r)['destination_session'])}"}
        rows = (await http.get("/v1/sync-log", params={"status": "failed"}, headers=OPERATOR)).json()["rows"]
        detail = (await http.get(f"/sync-log/{rows[0]['id']}", headers=session)).text
        csrf = re.search(r'id="replay">\s*<input type="hidden" name="csrf" value="([^"]+)"', detail)
        assert csrf is not None
        r = await http.post(f"/sync-log/{rows[0]['id']}/replay", data={"csrf": csrf.group(1)}, headers=session)
        assert r.status_code == 303
    await service.pipeline.drain()
    again = (await service.sync_log.rows(limit=10))
    assert next(row for row in again if row.message_id == "bad1").attempts == 2
    assert "operator tests replays sync-log row" in caplog.text and OPERATOR_TOKEN not in caplog.text


async def test_ingest_only_serves_ingest_paths_and_404s_operator_paths(service: Service) -> None:
    app = service.app(operator=False)
    everything = _operator_routes(service.app())
    async with _client(app, OPERATOR) as http:
        for method, path in everything:
            assert (await http.request(method, path)).status_code == 404, path
        assert (await http.post("/v1/identify", json={**IDENTIFY, "writeKey": WRITE_KEY})).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/login")).status_code == 404


async def test_the_operator_listener_serves_no_ingest_paths(service: Service) -> None:
    service.settings.http.operator_listen = "10.1.2.3:8090"
    async with _client(service.app(ingest=False), OPERATOR, host="10.1.2.3:8090") as http:
        assert (await http.get("/v1/sync-log")).status_code == 200  # its own address is an allowed Host
    async with _client(service.app(ingest=False), OPERATOR) as http:
        assert (await http.post("/v1/identify", json={**IDENTIFY, "writeKey": WRITE_KEY})).status_code == 404
        assert (await http.get("/v1/sync-log")).status_code == 200
    async with _client(service.app(ingest=False)) as http:
        assert (await http.post("/v1/identify", json={**IDENTIFY, "writeKey": WRITE_KEY})).status_code == 401


async def test_paths_that_look_like_ingest_paths_do_not_reach_operator_endpoints(service: Service) -> None:
    app = service.app()

    async def call(path: str) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        await app(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], body

    for path in ("/v1/salesforce/outbound/../../v1/sync-log", "/v1/salesforce/outbound/x/../../../metrics",
                 "/v1/identify/../sync-log", "/v1/batch/", "//v1/sync-log", "/v1/sync-log/", "/healthz/../metrics"):
        status, body = await call(path)
        assert status in (307, 401, 404, 405), (path, status)
        assert b"pii@x.example" not in body and b"destination_events_consumed_total" not in body, path
