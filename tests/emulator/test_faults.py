"""Fault settings: validation, the seeded random source, the limit window, and where settings come from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from salesforce_emulator import __main__ as emulator_main
from salesforce_emulator.faults import Faults
from salesforce_emulator.state import build_state


def test_unknown_keys_and_bad_values_are_refused_and_nothing_is_changed() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="unknown fault setting: chaos") as refused:
        faults.update({"chaos": 1, "error_503_rate": 1.5, "latency_ms": 10})
    assert "error_503_rate: a rate between 0 and 1, not 1.5" in str(refused.value)
    for bad in ({"lock_error_rate": "0.1"}, {"seed": True}, {"token_lifetime_seconds": 0}, {"latency_ms": -1}):
        with pytest.raises(ValueError):
            faults.update(bad)
    assert faults.as_dict() == Faults().as_dict()


def test_the_same_seed_gives_the_same_injections() -> None:
    def draws(seed: int) -> list[bool]:
        faults = Faults.from_config({"lock_error_rate": 0.3, "seed": seed})
        return [faults.lock_error() for _ in range(200)]

    assert draws(1) == draws(1) != draws(2)
    assert 20 < sum(draws(1)) < 100
    assert not any(Faults().roll(0.0) for _ in range(100)) and all(Faults().roll(1.0) for _ in range(100))


def test_a_limit_window_opens_from_now_and_zero_closes_it() -> None:
    faults = Faults()
    assert not faults.limit_window_open()
    faults.update({"limit_exceeded_for_seconds": 60})
    assert faults.limit_window_open() and faults.as_dict()["limit_window_open"]
    faults.update({"limit_exceeded_for_seconds": 0})
    assert not faults.limit_window_open()


def test_token_lifetime_fault_overrides_the_org_setting_for_new_tokens() -> None:
    state = build_state()
    assert state.tokens.lifetime() == state.org.token_lifetime_seconds
    state.faults.update({"token_lifetime_seconds": 5})
    session = state.tokens.issue("admin@emulator.test", "emulator-client")
    assert session.expires_at - session.issued_at == 5


def test_org_yaml_faults_are_applied_and_explicit_settings_win(tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text("extends: default\nfaults: {lock_error_rate: 0.2, latency_ms: 3}\n")
    state = build_state(org, faults={"latency_ms": 9})
    assert state.faults.lock_error_rate == 0.2 and state.faults.latency_ms == 9


@pytest.mark.parametrize("name", ["faults.json", "faults.yaml"])
def test_command_line_reads_faults_from_json_or_yaml_and_serves_plain_http_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    settings = {"error_503_rate": 0.05, "seed": 3}
    path = tmp_path / name
    path.write_text(json.dumps(settings) if name.endswith(".json") else "error_503_rate: 0.05\nseed: 3\n")
    served: dict[str, Any] = {}
    monkeypatch.setattr(emulator_main.uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    emulator_main.main(["--port", "9999", "--faults", str(path)])
    assert served["app"].state.emulator.faults.error_503_rate == 0.05
    assert served["port"] == 9999 and "ssl_certfile" not in served


@pytest.mark.parametrize(("content", "message"), [
    ("- latency_ms\n", "expected a mapping of fault settings"),
    ("error_503_rate: 3\n", "error_503_rate: a rate between 0 and 1, not 3"),
])
def test_command_line_refuses_a_bad_faults_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                content: str, message: str) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(content)
    with pytest.raises(SystemExit) as exited:
        emulator_main.main(["--faults", str(path)])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def _leads(n: int, marker_at: int | None = None) -> list[dict[str, Any]]:
    return [{"attributes": {"type": "Lead"}, "LastName": "poison" if i == marker_at else f"L{i}", "Company": "C"}
            for i in range(n)]


def test_a_collections_call_above_the_trigger_limit_fails_whole_and_writes_nothing(emulator: Any, rest: Any) -> None:
    emulator.state.faults.update({"trigger_error_above": 3})
    over = rest.post("/composite/sobjects", json={"allOrNone": False, "records": _leads(4)}).json()
    assert [(i["success"], i["errors"][0]["statusCode"]) for i in over] == \
        [(False, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY")] * 4
    assert "System.LimitException: Apex CPU time limit exceeded" in over[0]["errors"][0]["message"]
    assert emulator.state.store.records("Lead") == []
    under = rest.post("/composite/sobjects", json={"allOrNone": False, "records": _leads(3)}).json()
    assert all(i["success"] for i in under) and len(emulator.state.store.records("Lead")) == 3


def test_one_marked_record_fails_its_whole_call_over_rest_and_its_bulk_chunk(emulator: Any, rest: Any) -> None:
    from bulk_api import BulkApi

    emulator.state.faults.update({"trigger_error_marker": "poison"})
    body = rest.post("/composite/sobjects", json={"allOrNone": False, "records": _leads(5, marker_at=2)}).json()
    assert not any(i["success"] for i in body)
    assert {i["errors"][0]["message"] for i in body} == {"LeadTrigger: System.LimitException: Too many SOQL queries: 101"}
    rows = "\r\n".join(["LastName,Company"] + [f"{'poison' if i == 250 else f'B{i}'},C" for i in range(300)]) + "\r\n"
    with BulkApi.connect(emulator) as bulk:
        job_id, info = bulk.run(rows, object="Lead", operation="insert", lineEnding="CRLF")
        failed = bulk.result(job_id, "failedResults")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (300, 100)  # rows 200-299: one chunk
    assert "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY:LeadTrigger: System.LimitException: Too many SOQL queries: 101" in failed
    assert len(emulator.state.store.records("Lead")) == 200


def test_trigger_fault_settings_are_checked_and_reported() -> None:
    faults = Faults()
    for bad in ({"trigger_error_above": -1}, {"trigger_error_above": 2.5}, {"trigger_error_marker": ""}):
        with pytest.raises(ValueError):
            faults.update(bad)
    faults.update({"trigger_error_above": 50, "trigger_error_marker": "x"})
    assert faults.as_dict()["trigger_error_above"] == 50 and faults.as_dict()["trigger_error_marker"] == "x"
    faults.update({"trigger_error_above": None, "trigger_error_marker": None})
    assert faults.trigger_error("Lead", [["x"]] * 100) is None


def test_a_lost_response_applies_the_write_and_answers_an_empty_502(emulator: Any) -> None:
    headers = {"Authorization": f"Bearer {emulator.token()}"}
    emulator.state.faults.update({"lost_response_rate": 1.0})
    r = httpx.post(f"{emulator.url}/services/data/v62.0/sobjects/Case", json={"Subject": "lost"}, headers=headers)
    emulator.state.faults.update({"lost_response_rate": 0.0})
    assert r.status_code == 502 and r.content == b""
    assert [c["Subject"] for c in emulator.state.store.records("Case")] == ["lost"]  # it was created all the same
    assert emulator.state.usage.total >= 1  # and counted as an API call
