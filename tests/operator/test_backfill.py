"""Backfill: CSV dataset sync by domain (update / create / both), NDJSON events, resume from a checkpoint."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from settings_support import settings_file

from destination.cli import main
from destination.config import load_settings
from destination.outcomes import Status
from destination.synclog import open_sync_log

CSV = "company,site,employees\nAcme,https://www.acme.example,120\nGlobex,globex.example,40\nInitech,initech.example,9\n"


async def _counts(config: Path) -> dict[Status, int]:
    async with open_sync_log(load_settings(config).sync_log_url) as log:
        return await log.counts()


async def test_csv_rows_update_matched_accounts_by_domain_and_create_the_rest(tls_emulator: Any,
                                                                             tmp_path: Path) -> None:
    store = tls_emulator.state.store
    acme = store.insert("Account", {"Name": "ACME Corp", "Website": "acme.example"}).id
    data = tmp_path / "accounts.csv"
    data.write_text(CSV)
    config = settings_file(tmp_path, tls_emulator)
    args = ["--config", str(config), "backfill", str(data), "--object", "Account", "--map", "Name=company",
            "--map", "Website=site", "--map", "NumberOfEmployees=employees", "--match", "Website:domain"]
    assert await asyncio.to_thread(main, [*args, "--mode", "update"]) == 0
    assert store.get(acme)[1]["NumberOfEmployees"] == 120 and len(store.records("Account")) == 1
    assert (await _counts(config))[Status.FAILED] == 2  # update mode: Globex and Initech are NOT_FOUND
    Path(f"{data}.progress").unlink()
    assert await asyncio.to_thread(main, [*args, "--mode", "both"]) == 0
    assert sorted(r["Name"] for r in store.records("Account")) == ["Acme", "Globex", "Initech"]


async def test_a_backfill_resumes_after_its_checkpoint(tls_emulator: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "events.ndjson"
    data.write_text("\n".join(json.dumps({"type": "identify", "userId": f"u{i}",
                                          "traits": {"email": f"b{i}@x.example", "last_name": f"B{i}"}})
                              for i in range(10)) + "\n")
    Path(f"{data}.progress").write_text("6")  # an earlier run got through 6 events
    config = settings_file(tmp_path, tls_emulator)
    assert await asyncio.to_thread(main, ["--config", str(config), "backfill", str(data), "--source", "web-app",
                                          "--chunk", "2"]) == 0
    emails = sorted(r["Email"] for r in tls_emulator.state.store.records("Lead"))
    assert emails == [f"b{i}@x.example" for i in range(6, 10)]
    assert Path(f"{data}.progress").read_text() == "10"
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["--config", str(config), "backfill", str(data), "--source", "web-app",
                                          "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"command": "backfill", "file": str(data), "sent": 0,
                                                   "skipped_as_done": 10, "position": 10}
    assert len(tls_emulator.state.store.records("Lead")) == 4  # nothing left to do


async def test_backfilled_events_without_message_id_are_identified_by_file_name_and_line(
        tls_emulator: Any, tmp_path: Path) -> None:
    # two files of one stem: identities by stem alone ("cases-1") made the second file's creates look done
    lines = [json.dumps({"type": "track", "event": "Support Requested", "userId": f"u{i}",
                         "properties": {"subject": f"Help {i}"}}) for i in range(3)]
    config = settings_file(tmp_path, tls_emulator)
    for name in ("cases.ndjson", "cases.json"):
        data = tmp_path / name
        data.write_text("\n".join(lines) + "\n")
        assert await asyncio.to_thread(main, ["--config", str(config), "backfill", str(data), "--source",
                                              "web-app"]) == 0
    assert len(tls_emulator.state.store.records("Case")) == 6
    Path(f"{tmp_path / 'cases.json'}.progress").unlink()  # a re-run: the same events again
    assert await asyncio.to_thread(main, ["--config", str(config), "backfill", str(tmp_path / "cases.json"),
                                          "--source", "web-app"]) == 0
    assert len(tls_emulator.state.store.records("Case")) == 6, "a re-run creates nothing again"
    async with open_sync_log(load_settings(config).sync_log_url) as log:
        ids = {r.message_id for r in await log.rows(limit=50)}
    assert ids == {f"backfill:{name}:{line}" for name in ("cases.ndjson", "cases.json") for line in (1, 2, 3)}
