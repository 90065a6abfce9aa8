"""The sync-log page in headless Chromium (Debian's chromium driven by Playwright): counts, filters,
record links and the detail view; a screenshot is kept in test-artifacts/."""

from __future__ import annotations

import asyncio
import shutil
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from running_emulator import free_port
from settings_support import OPERATOR_TOKEN, REPO, settings_file

from destination.config import load_settings
from destination.events import Event
from destination.service import build

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)")
async def test_the_sync_log_page_filters_links_and_shows_details(tls_emulator: Any, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    config = settings_file(tmp_path, tls_emulator)
    async with AsyncExitStack() as stack:
        service = await build(load_settings(config), stack)
        assert service.pipeline is not None
        for i in range(3):
            await service.pipeline.submit(Event("web-app", {"type": "identify", "messageId": f"ok{i}", "userId": "u",
                                                            "traits": {"email": f"ok{i}@x.example"}}))
        await service.pipeline.submit(Event("web-app", {"type": "track", "event": "Order Completed",
                                                        "messageId": "bad1", "userId": "u",
                                                        "properties": {"order_id": "o1", "total": "lots"}}))
        await service.pipeline.drain()
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(service.app(), host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = await browser.new_page()
                await page.goto(f"http://localhost:{port}/sync-log")
                assert "sign in" in (await page.content()).lower()  # no token, no rows
                await page.goto(f"http://localhost:{port}/login")
                await page.fill('input[name="token"]', OPERATOR_TOKEN)
                await page.click('#login button[type="submit"]')
                await page.wait_for_url("**/sync-log")
                assert await page.text_content('[data-count="succeeded"]') == "3"
                assert await page.text_content('[data-count="failed"]') == "1"
                assert await page.locator("#rows tbody tr").count() == 4
                link = await page.get_attribute("a.record", "href")
                assert link is not None and link.startswith(tls_emulator.url) and "/lightning/r/Lead/00Q" in link
                artifacts = REPO / "test-artifacts"
                artifacts.mkdir(exist_ok=True)
                await page.screenshot(path=str(artifacts / "sync-log.png"), full_page=True)
                await page.select_option('select[name="status"]', "failed")
                await page.click('form.filters button[type="submit"]')
                await page.wait_for_url("**status=failed**")
                assert await page.locator("#rows tbody tr").count() == 1
                assert "MAPPING_ERROR" in (await page.text_content("#rows tbody") or "")
                await page.click("a.detail")
                await page.wait_for_selector("#event")
                assert '"messageId": "bad1"' in (await page.text_content("#event") or "")
                assert "to_number" in (await page.text_content("#outcome") or "")
                await browser.close()
        finally:
            server.should_exit = True
            await task
    assert (REPO / "test-artifacts" / "sync-log.png").stat().st_size > 10_000
