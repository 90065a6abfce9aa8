"""The sync-log API and page are paginated with a maximum page size, and a query parameter that cannot be
used is a 422 naming it, never a 500 (the reproduced: `limit=-1` rendered the whole table; garbage `since`,
`until` or `status` were unhandled exceptions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from settings_support import OPERATOR, OPERATOR_SHA256

from destination.config import Settings
from destination.events import Event
from destination.outcomes import Outcome
from destination.service import build
from destination.synclog.filters import MAX_PAGE_SIZE

REPO = Path(__file__).resolve().parents[2]
ROWS = 25


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(actions_dir=REPO / "actions", sync_log_url=f"sqlite:///{tmp_path / 'sync.db'}",
                        event_log={"path": tmp_path / "events.db"},  # type: ignore[arg-type]
                        operator_tokens=[{"name": "tests", "sha256": OPERATOR_SHA256, "scopes": ["admin"]}])
    async with AsyncExitStack() as stack:
        service = await build(settings, stack, consume=False)
        await service.sync_log.record([Outcome.skipped(Event("web-app", {"type": "identify", "userId": "u",
                                                                         "messageId": f"m{i}"}), "test")
                                       for i in range(ROWS)])
        transport = httpx.ASGITransport(app=service.app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=OPERATOR) as client:
            yield client


BAD = [("since", "garbage"), ("until", "2026-13-45"), ("since", "9999-12-31T23:59:59-01:00"),
       ("until", "0001-01-01T00:00:00+01:00"), ("status", "bogus"), ("limit", "-1"), ("limit", "0"),
       ("limit", str(MAX_PAGE_SIZE + 1)), ("limit", "ten"), ("offset", "-1"), ("offset", "1e9"),
       ("search", "a\x00b"), ("source", "s" * 1001)]  # PostgreSQL refuses NUL in text: was a 500 there


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
async def test_an_unusable_query_parameter_is_a_422_naming_it(http: httpx.AsyncClient, name: str, value: str) -> None:
    api = await http.get("/v1/sync-log", params={name: value})
    assert api.status_code == 422, api.text
    assert name in api.text
    page = await http.get("/sync-log", params={name: value})
    assert page.status_code == 422 and name in page.text, page.text


async def test_the_api_pages_through_every_row_with_next_offset(http: httpx.AsyncClient) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        body = (await http.get("/v1/sync-log", params={"limit": 10, "offset": offset})).json()
        assert len(body["rows"]) <= 10 and body["counts"]["skipped"] == ROWS
        seen += [r["message_id"] for r in body["rows"]]
        offset = body["next_offset"]
    assert sorted(seen) == sorted(f"m{i}" for i in range(ROWS))


async def test_the_page_shows_one_page_and_links_the_older_one(http: httpx.AsyncClient) -> None:
    page = await http.get("/sync-log", params={"limit": 10, "status": "skipped"})
    assert page.status_code == 200 and page.text.count('class="detail"') == 10
    assert 'href="?limit=10&amp;status=skipped&amp;offset=10"' in page.text
    last = await http.get("/sync-log", params={"limit": 10, "offset": 20})
    assert last.text.count('class="detail"') == ROWS - 20 and 'id="older"' not in last.text
    default = await http.get("/sync-log")
    assert default.text.count('class="detail"') == ROWS


async def test_every_endpoint_refuses_a_body_over_the_limit_while_reading_it(http: httpx.AsyncClient) -> None:
    big = b'{"source": "web-app", "events": [' + b'{"type": "identify"},' * 40_000 + b"{}]}"
    declared = await http.post("/v1/preview", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["code"] == "payload_too_large"

    async def streamed() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    chunked = await http.post("/v1/preview", content=streamed(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
