"""`destination check` as the connection's own user, its exit codes and `--json`, and the write-key rules
that stop both `check` and start-up.

The restricted user is the default org's `restricted@emulator.test` (client `restricted-client`): Lead
create/read/edit with AnnualRevenue read-only and Rating invisible, Contact read/edit, Account read.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from running_emulator import free_port
from settings_support import settings_file

from destination.actions.loader import ConfigError, load_dir
from destination.cli import main
from destination.commands.check import check
from destination.config import load_settings
from destination.service import build

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, emulator: Any, *, client: str = "restricted-client",
              secret: str = "restricted-secret", login_url: str | None = None) -> Path:
    config = tmp_path / "destination.yaml"
    config.write_text(f"""connections:
  default:
    login_url: {login_url or emulator.url}
    auth: {{method: client_credentials, client_id: {client}, client_secret: {secret}}}
    ca_bundle: {emulator.ca_pem}
    allowed_hosts: [127.0.0.1]
actions_dir: {REPO / 'actions'}
sync_log_url: sqlite:///{tmp_path / 'sync.db'}
event_log: {{path: {tmp_path / 'events.db'}}}
""")
    return config


def _folder(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "actions"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def _source(name: str, actions: str, keys: str = "[]") -> str:
    return f"source: {name}\nwrite_keys: {keys}\nactions:\n{actions}"


def _action(obj: str, operation: str, fields: str = "", match: str = "    match: {any: {Email: $.traits.email}}\n") -> str:
    text = f"  - name: a\n    when: type = \"identify\"\n    object: {obj}\n    operation: {operation}\n"
    if operation != "create":
        text += match
    return text + (f"    fields:\n{fields}" if fields else "")


LEAD = "      LastName: $.traits.last_name\n      Company: $.traits.company\n"


async def _problems(emulator: Any, tmp_path: Path, actions: str) -> list[Any]:
    folder = _folder(tmp_path, app=_source("app", actions))
    return await check(load_settings(_settings(tmp_path, emulator)), folder)


def _find(problems: list[Any], path: str) -> list[Any]:
    return [p for p in problems if p.path == path]


async def test_a_field_the_user_can_only_read_is_an_error_for_every_write(tls_emulator: Any, tmp_path: Path) -> None:
    problems = await _problems(tls_emulator, tmp_path, _action("Lead", "upsert", LEAD + "      AnnualRevenue: $.x\n"))
    [problem] = _find(problems, "actions[0].fields.AnnualRevenue")
    assert problem.severity == "error" and problem.line
    assert "not createable or updateable for the connection's user" in problem.message
    # the admin's describe has it writable: the check answers for the connection's user
    (tmp_path / "admin").mkdir()
    admin = await check(load_settings(settings_file(tmp_path / "admin", tls_emulator)), tmp_path / "actions")
    assert _find(admin, "actions[0].fields.AnnualRevenue") == []


async def test_a_field_the_user_cannot_see_is_reported_as_missing_for_them(tls_emulator: Any, tmp_path: Path) -> None:
    problems = await _problems(tls_emulator, tmp_path, _action("Lead", "update", "      Rating: $.x\n"))
    [problem] = _find(problems, "actions[0].fields.Rating")
    assert problem.severity == "error" and "cannot see it" in problem.message


async def test_an_upsert_the_user_can_only_half_do_is_a_warning(tls_emulator: Any, tmp_path: Path) -> None:
    problems = await _problems(tls_emulator, tmp_path, _action("Contact", "upsert", "      LastName: $.x\n"))
    [object_problem] = _find(problems, "actions[0].operation")
    assert object_problem.severity == "warning"
    assert "may not create Contact records" in object_problem.message
    [field_problem] = _find(problems, "actions[0].fields.LastName")
    assert field_problem.severity == "warning" and "the creates of this upsert" in field_problem.message


@pytest.mark.parametrize(("obj", "operation", "fields", "verb"), [
    ("Contact", "create", "      LastName: $.x\n", "create"),
    ("Account", "update", "      Name: $.x\n", "update"),
    ("Lead", "delete", "", "delete"),
])
async def test_a_missing_object_permission_is_an_error(tls_emulator: Any, tmp_path: Path, obj: str, operation: str,
                                                       fields: str, verb: str) -> None:
    problems = await _problems(tls_emulator, tmp_path, _action(obj, operation, fields))
    [problem] = _find(problems, "actions[0].operation")
    assert problem.severity == "error" and f"may not {verb} {obj} records" in problem.message


async def test_an_object_the_user_cannot_see_does_not_exist_for_them(tls_emulator: Any, tmp_path: Path) -> None:
    problems = await _problems(tls_emulator, tmp_path, _action("Opportunity", "create", "      Name: $.x\n"))
    [problem] = _find(problems, "actions[0].object")
    assert "does not exist in the org (or the connection's user cannot see it)" in problem.message


# ----- exit codes and --json ---------------------------------------------------------------------------

def _run(config: Path, folder: Path, *extra: str) -> int:
    return main(["--config", str(config), "--actions", str(folder), "check", *extra])


def test_wrong_credentials_exit_3_and_name_the_oauth_error_not_the_secret(tls_emulator: Any, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = _settings(tmp_path, tls_emulator, secret="wrong-secret-value")
    assert _run(config, REPO / "actions") == 3
    out = capsys.readouterr()
    assert "invalid_client" in out.err and "wrong-secret-value" not in out.err + out.out
    assert _run(config, REPO / "actions", "--offline") == 0


def test_an_unreachable_org_exits_4(tls_emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _settings(tmp_path, tls_emulator, login_url=f"https://127.0.0.1:{free_port()}")
    assert _run(config, REPO / "actions") == 4
    assert "cannot reach Salesforce" in capsys.readouterr().err


def test_json_output_is_one_stable_object(tls_emulator: Any, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, app=_source("app", _action("Lead", "upsert", LEAD + "      AnnualRevenue: $.x\n"
                                                          ) + "    on_many_matches: all\n"))
    assert _run(_settings(tmp_path, tls_emulator), folder, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"ok", "exit_code", "errors", "warnings"}
    assert report["ok"] is False and report["exit_code"] == 1
    error = next(e for e in report["errors"] if e["key"] == "actions[0].fields.AnnualRevenue")
    assert set(error) == {"file", "line", "column", "key", "message"}
    assert error["file"].endswith("app.yaml") and error["line"] == 12
    assert any(w["key"] == "actions[0].on_many_matches" for w in report["warnings"])
    (tmp_path / "admin").mkdir()
    assert _run(settings_file(tmp_path / "admin", tls_emulator), REPO / "actions", "--json") == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert _run(_settings(tmp_path, tls_emulator), REPO / "actions", "--json") == 1  # as the restricted user
    assert any("for the connection's user" in e["message"] for e in json.loads(capsys.readouterr().out)["errors"])


# ----- write keys --------------------------------------------------------------------------------------

ACTION = _action("Lead", "create", LEAD)


def test_a_write_key_shared_by_two_sources_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, a=_source("a", ACTION, "[key-one]"), b=_source("b", ACTION, "[key-two, key-one]"))
    with pytest.raises(ConfigError) as caught:
        load_dir(folder)
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.line, problem.path) == ("b.yaml", 2, "write_keys[1]")
    assert "shares this write key with source 'a'" in problem.message and "key-one" not in problem.message
    assert _run(tmp_path / "none.yaml", folder, "--offline") == 1
    assert "key-one" not in capsys.readouterr().err


def test_an_unset_variable_in_a_write_key_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERMS_TEST_UNSET_KEY", raising=False)
    folder = _folder(tmp_path, a=_source("a", ACTION, '["${PERMS_TEST_UNSET_KEY}", "${PERMS_TEST_DEFAULTED:-x}"]'))
    with pytest.raises(ConfigError) as caught:
        load_dir(folder)
    [problem] = caught.value.problems
    assert problem.path == "write_keys[0]" and problem.line == 2
    assert "PERMS_TEST_UNSET_KEY is not set" in problem.message
    assert _run(tmp_path / "none.yaml", folder, "--offline") == 1
    monkeypatch.setenv("PERMS_TEST_UNSET_KEY", "k")
    assert set(load_dir(folder)) == {"a"}


async def test_start_up_stops_on_a_shared_write_key(tmp_path: Path) -> None:
    folder = _folder(tmp_path, a=_source("a", ACTION, "[same]"), b=_source("b", ACTION, "[same]"))
    settings = load_settings(tmp_path / "none.yaml")
    async with AsyncExitStack() as stack:
        with pytest.raises(ConfigError, match="shares this write key"):
            await build(settings, stack, actions_dir=folder, consume=False)
