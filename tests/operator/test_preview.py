"""Preview: exact totals and field changes from the same planner, and no writes (emulator stats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from settings_support import OPERATOR, settings_file

from destination.cli import main


def _events(tmp_path: Path) -> Path:
    lines = [
        {"source": "web-app", "type": "identify", "userId": "u1", "messageId": "p1",
         "traits": {"email": "known@x.example", "last_name": "Known", "title": "CTO"}},
        {"source": "web-app", "type": "identify", "userId": "u2", "messageId": "p2",
         "traits": {"email": "new@x.example", "last_name": "New"}},
        {"source": "web-app", "type": "identify", "userId": "u3", "messageId": "p3",
         "traits": {"email": "same@x.example", "last_name": "Same", "company": "Co"}},
        {"source": "web-app", "type": "page", "userId": "u4", "messageId": "p4"},
        {"source": "web-app", "type": "track", "userId": "u5", "messageId": "p5", "event": "Order Completed",
         "properties": {"order_id": "o1", "total": "lots"}},
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_preview_reports_exact_totals_and_changes_without_writing(tls_emulator: Any, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    store = tls_emulator.state.store
    store.insert("Lead", {"LastName": "Known", "Company": "[not provided]", "Email": "known@x.example",
                          "Title": "Engineer", "LeadSource": "Web", "Website": "x.example"})
    store.insert("Lead", {"LastName": "Same", "Company": "Co", "Email": "same@x.example", "LeadSource": "Web",
                          "Website": "x.example", "Description": "Plan: "})
    before = dict(tls_emulator.state.usage.by_endpoint)
    records_before = {name: len(store.records(name)) for name in ("Lead", "Opportunity")}
    code = main(["--config", str(settings_file(tmp_path, tls_emulator)), "preview", str(_events(tmp_path)),
                 "--json", "--samples", "10"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 5
    assert report["would"] == {"create": 1, "update": 1, "delete": 0, "skip": 2, "fail": 1}
    assert report["reasons"]["fail: MAPPING_ERROR"] == 1 and report["reasons"]["skip: NOTHING_TO_CHANGE"] == 1
    update = next(s for s in report["samples"] if s["verdict"] == "update")
    assert update["changes"]["Title"] == {"from": "Engineer", "to": "CTO"}
    after = tls_emulator.state.usage.by_endpoint
    used = {k for k in after if after[k] != before.get(k, 0)}
    assert used <= {"query", "sobjects/describe"}  # read-only: no write endpoint was called
    assert {name: len(store.records(name)) for name in ("Lead", "Opportunity")} == records_before


async def test_preview_over_http_returns_the_same_report(tls_emulator: Any, tmp_path: Path) -> None:
    from contextlib import AsyncExitStack

    import httpx

    from destination.config import load_settings
    from destination.service import build

    async with AsyncExitStack() as stack:
        service = await build(load_settings(settings_file(tmp_path, tls_emulator)), stack)
        transport = httpx.ASGITransport(app=service.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=OPERATOR) as http:
            r = await http.post("/v1/preview", json={"source": "web-app", "events": [
                {"type": "identify", "userId": "u", "traits": {"email": "a@x.example"}}]})
    assert r.status_code == 200 and r.json()["would"]["create"] == 1
    assert tls_emulator.state.store.records("Lead") == []
