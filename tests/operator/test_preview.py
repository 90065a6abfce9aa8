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
    assert used <= {"query", "sobjects/describe", "ui-api"}  # read-only: no write endpoint was called
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
            r = await http.post("/v1/preview", json={"source": "web-app", "outcomes": True, "events": [
                {"type": "identify", "userId": "u", "traits": {"email": "a@x.example"}},
                {"type": "identify", "userId": "v", "traits": {"email": "a b@x.example"}}]})
    assert r.status_code == 200 and r.json()["would"]["create"] == 1
    assert [(o["verdict"], o["code"]) for o in r.json()["outcomes"]] == [("create", None), ("fail", "INVALID_EMAIL_ADDRESS")]
    assert tls_emulator.state.store.records("Lead") == []


CSV = "company,site,employees\nAcme,https://www.acme.example,120\nGlobex,globex.example,many\nInitech,initech.example,9\n"


def test_preview_takes_csv_rows_with_a_column_map_like_backfill(tls_emulator: Any, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    tls_emulator.state.store.insert("Account", {"Name": "ACME Corp", "Website": "acme.example",
                                                "NumberOfEmployees": 100})
    data = tmp_path / "accounts.csv"
    data.write_text(CSV)
    code = main(["--config", str(settings_file(tmp_path, tls_emulator)), "preview", str(data), "--object", "Account",
                 "--map", "Name=company", "--map", "Website=site", "--map", "NumberOfEmployees=employees",
                 "--match", "Website:domain", "--json", "--outcomes"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["would"] == {"create": 1, "update": 1, "delete": 0, "skip": 0, "fail": 1}
    assert [(o["verdict"], o["code"]) for o in report["outcomes"]] == [
        ("update", None), ("fail", "JSON_PARSER_ERROR"), ("create", None)]
    assert report["overwrites"]["Account.Name"] == {"replaced": 1, "with_blank": 0, "with_default": 0}
    assert "1 records would have a non-blank value replaced in Account.Name" in report["warnings"]
    assert len(tls_emulator.state.store.records("Account")) == 1


def test_preview_of_a_csv_without_a_column_map_says_what_is_missing(tls_emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "accounts.csv"
    data.write_text(CSV)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(settings_file(tmp_path, tls_emulator)), "preview", str(data)])
    assert "--object" in str(exit_.value.code)


def test_preview_counts_records_whose_non_blank_values_would_be_replaced(tls_emulator: Any, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    store = tls_emulator.state.store
    for i in range(3):
        store.insert("Lead", {"LastName": f"L{i}", "Company": "Acme", "Email": f"l{i}@x.example", "Title": "CTO",
                              "Website": "acme.example"})
    actions = tmp_path / "actions"
    actions.mkdir()
    (actions / "crm.yaml").write_text("""source: crm
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: update
    match: {any: {Email: $.traits.email}}
    fields:
      Title: {path: $.traits.title, default: "n/a", policy: always}
      Website: {path: $.traits.site, policy: always}
""")
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps({"source": "crm", "type": "identify", "messageId": f"e{i}",
                                            "traits": body}) for i, body in enumerate([
        {"email": "l0@x.example"},                                        # Title ← the default
        {"email": "l1@x.example", "title": "CEO", "site": ""},            # Title ← CEO, Website ← blank
        {"email": "l2@x.example", "title": "CTO", "site": "acme.example"}])) + "\n")  # nothing changes
    code = main(["--config", str(settings_file(tmp_path, tls_emulator)), "--actions", str(actions), "preview",
                 str(events)])
    assert code == 0
    out = capsys.readouterr().out
    assert "would update 2" in out and "would skip 1" in out
    assert "warning: 2 records would have a non-blank value replaced in Lead.Title (1 with a default)" in out
    assert "warning: 1 records would have a non-blank value replaced in Lead.Website (1 with a blank)" in out


def test_an_id_with_a_wrong_checksum_never_reaches_a_query_and_fails_the_write_it_leads(tls_emulator: Any, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    deal, other = (tls_emulator.state.store.insert("Opportunity", {"Name": "D", "StageName": "Prospecting",
                                                                   "CloseDate": "2026-12-31"}).id for _ in "ab")
    actions = tmp_path / "actions"
    actions.mkdir()
    (actions / "crm.yaml").write_text("""source: crm
actions:
  - name: deals
    when: type = "track"
    object: Opportunity
    operation: update
    match: {any: {Id: $.properties.deal}}
    fields: {StageName: $.properties.stage}
""")
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps({"source": "crm", "type": "track", "event": "Moved", "messageId": f"e{i}",
                                            "properties": {"deal": d, "stage": "Qualification"}})
                                for i, d in enumerate([deal[:15] + "zzz", deal, other])) + "\n")
    code = main(["--config", str(settings_file(tmp_path, tls_emulator)), "--actions", str(actions), "preview",
                 str(events), "--json", "--outcomes"])
    assert code == 0
    outcomes = json.loads(capsys.readouterr().out)["outcomes"]
    # a run writes both events of `deal` as one write to the first one's Id, which the org refuses
    assert [(o["verdict"], o["code"]) for o in outcomes] == [("fail", "MALFORMED_ID"), ("fail", "MALFORMED_ID"),
                                                             ("update", None)]


async def test_a_later_batch_sees_the_record_an_earlier_batch_would_create(tls_emulator: Any) -> None:
    from sf_support import connection_for

    from destination.actions.loader import load_text
    from destination.config import BatchingConfig
    from destination.deliver import Delivery
    from destination.events import Event
    from destination.preview import preview
    from destination.salesforce.client import SalesforceClient

    source = load_text("""source: app
actions:
  - name: leads
    when: type = "identify"
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields: {Email: $.traits.email, LastName: $.traits.name, Company: Co}
""", "app.yaml")
    emails = ["new@x.example", "b@x.example", "new@x.example", "c@x.example", "new@x.example"]
    names = ["First", "B", "Second", "C", "Second"]
    events = [Event("app", {"type": "identify", "messageId": f"e{i}", "traits": {"email": email, "name": name}})
              for i, (email, name) in enumerate(zip(emails, names, strict=True))]
    async with SalesforceClient(connection_for(tls_emulator)) as client:
        delivery = Delivery({"default": client})
        together = await preview({"app": source}, delivery, events, batching=BatchingConfig(rest_size=200))
        apart = await preview({"app": source}, delivery, events, batching=BatchingConfig(rest_size=1, window_ms=0))
    # one batch: the three events of new@ coalesce into one create, which the first of them makes (the others
    # update the record in the same call, as a run records them); batches of one record and no coalescing
    # window (another record closes each): a create, an update, then nothing left to change
    new = [p for p in together.predictions if p.event in ("e0", "e2", "e4")]
    assert [(p.verdict, p.code) for p in new] == [("create", None), ("update", None), ("update", None)]
    new = [p for p in apart.predictions if p.event in ("e0", "e2", "e4")]
    assert [(p.verdict, p.code) for p in new] == [("create", None), ("update", None), ("skip", "NOTHING_TO_CHANGE")]
    assert tls_emulator.state.store.records("Lead") == []
