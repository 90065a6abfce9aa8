"""`destination check`: one failing config per error kind, located by file, line, column and YAML path;
the shipped actions pass against the emulator's default org."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from settings_support import settings_file

from destination.actions.loader import ConfigError, load_dir, load_text
from destination.cli import main
from destination.commands.check import check
from destination.config import load_settings

REPO = Path(__file__).resolve().parents[2]
BASE = """source: app
actions:
  - name: a
    when: type = "identify"
    object: {object}
    operation: {operation}
{rest}"""


def _settings_for(emulator: Any, tmp_path: Path) -> Path:
    return settings_file(tmp_path, emulator)


async def _problems(emulator: Any, tmp_path: Path, text: str) -> list[Any]:
    folder = tmp_path / "actions"
    folder.mkdir(exist_ok=True)
    (folder / "app.yaml").write_text(text)
    return await check(load_settings(_settings_for(emulator, tmp_path)), folder)


def _action(object: str = "Lead", operation: str = "upsert", rest: str = "") -> str:
    return BASE.format(object=object, operation=operation, rest=rest)


MATCH = "    match: {any: {Email: $.traits.email}}\n"
LEAD_OK = "      LastName: $.traits.last_name\n      Company: $.traits.company\n"


@pytest.mark.parametrize(("text", "path", "snippet"), [
    (_action("Leed", rest=MATCH + "    fields: {LastName: x}\n"), "actions[0].object", "does not exist"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      Nope__c: $.x\n"), "actions[0].fields.Nope__c",
     "has no field Nope__c"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      IsConverted: true\n"), "actions[0].fields.IsConverted",
     "not createable"),
    (_action(operation="update", rest=MATCH + "    fields: {Name: $.x}\n"), "actions[0].fields.Name",
     "not updateable"),
    (_action(rest="    match: {any: {Description: $.x}}\n    fields:\n" + LEAD_OK), "actions[0].match",
     "not filterable"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      NumberOfEmployees: many\n"),
     "actions[0].fields.NumberOfEmployees", "not a number"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      Status: Sleeping\n"), "actions[0].fields.Status",
     "restricted picklist"),
    (_action(operation="create", rest="    fields: {LastName: $.x}\n"), "actions[0].fields", "needs Company"),
    (_action("Contact", rest=MATCH + "    fields: {LastName: $.x}\n    lookups:\n      AccountId:\n"
             "        object: Lead\n        match: {any: {Email: $.y}}\n"), "actions[0].lookups.AccountId.object",
     "refers to"),
    (_action("Account", rest="    match: {any: {Name: $.x}}\n    fields: {Name: $.x}\n    record_type: 0120000000000AAAAA\n"),
     "actions[0].record_type", "not one of Account's"),
    (_action("Opportunity", "create", "    fields: {Name: x, StageName: Prospecting, CloseDate: Tomorrow}\n"),
     "actions[0].fields.CloseDate", "'Tomorrow' is not a date"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      NumberOfEmployees: 1000000000\n"),
     "actions[0].fields.NumberOfEmployees", "beyond what NumberOfEmployees"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      NumberOfEmployees: {path: $.n, default: many}\n"),
     "actions[0].fields.NumberOfEmployees", "default 'many' is not a number"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "    fields_from: {path: $.properties, rename: {plan: Plan__c}}\n"),
     "actions[0].fields_from.rename.plan", "Plan__c is not a field of Lead"),
])
async def test_each_describe_error_kind_is_reported_at_its_yaml_path(tls_emulator: Any, tmp_path: Path, text: str,
                                                                     path: str, snippet: str) -> None:
    problems = [p for p in await _problems(tls_emulator, tmp_path, text) if p.severity == "error"]
    assert any(p.path == path and snippet in p.message and p.line for p in problems), problems


SYNC_BACK = "sync_back:\n  kafka_topic: t\n  objects:\n    - object: {obj}\n      id_field: {key}\n" \
            "      fields: {{Title: title, {field}: x}}\n"


@pytest.mark.parametrize(("obj", "key", "field", "path", "snippet"), [
    ("Contact", "Email", "Nope__c", "sync_back.objects[0].fields.Nope__c", "Contact has no field Nope__c"),
    ("Contact", "Missing__c", "Phone", "sync_back.objects[0].id_field", "Contact has no field Missing__c"),
    ("Nothing__c", "Id", "Phone", "sync_back.objects[0].object", "object Nothing__c does not exist"),
])
async def test_sync_back_objects_and_fields_are_checked_against_describe(tls_emulator: Any, tmp_path: Path, obj: str,
                                                                         key: str, field: str, path: str,
                                                                         snippet: str) -> None:
    text = _action(rest=MATCH + "    fields:\n" + LEAD_OK) + SYNC_BACK.format(obj=obj, key=key, field=field)
    problems = [p for p in await _problems(tls_emulator, tmp_path, text) if p.severity == "error"]
    assert [p.path for p in problems if p.path.startswith("sync_back")] == [path], problems
    assert snippet in problems[-1].message and problems[-1].line


@pytest.mark.parametrize(("text", "line", "column", "path", "snippet"), [
    ("source: app\nactions:\n  - name: a\n    when: type = = 'x'\n    object: Lead\n    operation: create\n",
     4, 11, "actions[0].when", "cannot parse trigger"),
    ("source: app\nactions:\n  - name: a\n    when: type = 'x'\n    object: Lead\n    operation: merge\n",
     6, 16, "actions[0].operation", "'create', 'update', 'upsert' or 'delete'"),
    ("source: app\nactions:\n  - name: a\n    when: type = 'x'\n    object: Lead\n    operation: update\n",
     3, 5, "actions[0]", "needs `match`"),
    ("source: app\nactions:\n  - name: a\n    when: type = 'x'\n    object: Lead\n    operation: create\n"
     "    fields: {Phone: {path: $.p, policy: sometimes}}\n", 7, 41, "actions[0].fields.Phone.policy", "always"),
    ("source: app\nactions:\n  - name: a\n    when: x exists\n    object: Lead\n    operation: create\n    colour: red\n",
     7, 13, "actions[0].colour", "Extra inputs are not permitted"),
    ("source: app\nactions: [\n", 3, 1, "", "not valid YAML"),
])
def test_structural_errors_name_file_line_column_and_path(text: str, line: int, column: int, path: str,
                                                          snippet: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "app.yaml")
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.column, problem.path) == ("app.yaml", line, column, path)
    assert snippet in problem.message


async def test_risky_choices_are_warnings(tls_emulator: Any, tmp_path: Path) -> None:
    text = _action("Contact", "delete", "    match: {any: {Email: $.x}}\n    on_many_matches: all\n    mode: bulk\n")
    problems = await _problems(tls_emulator, tmp_path, text)
    assert {p.severity for p in problems} == {"warning"}
    assert {p.path for p in problems} == {"actions[0].on_many_matches", "actions[0].mode", "actions[0].match"}


async def test_an_idempotency_field_must_be_a_createable_filterable_text_field(tls_emulator: Any,
                                                                              tmp_path: Path) -> None:
    def about_it(problems: list[Any]) -> list[tuple[str, str]]:  # (the action maps no fields: its own warning)
        return [(p.path, p.severity) for p in problems if p.path.endswith("idempotency_field")]

    bad = await _problems(tls_emulator, tmp_path, _action("Case", "create", "    idempotency_field: IsClosed\n"))
    assert about_it(bad) == [("actions[0].idempotency_field", "error")]
    plain = await _problems(tls_emulator, tmp_path, _action("Case", "create", "    idempotency_field: Subject\n"))
    assert about_it(plain) == [("actions[0].idempotency_field", "warning")]
    good = await _problems(tls_emulator, tmp_path, _action("Case", "create", "    idempotency_field: External_Id__c\n"))
    assert about_it(good) == []
    with pytest.raises(ConfigError, match="idempotency_field is for creates"):
        load_text(_action("Lead", "update", "    match: {any: {Email: $.x}}\n    idempotency_field: External_Id__c\n"),
                  "app.yaml")


@pytest.mark.parametrize(("text", "path", "snippet"), [
    (_action("Survey_Response__c", "create", ""), "actions[0].fields", "creates an empty Survey_Response__c"),
    (_action("Survey_Response__c", "create", "    fields:\n      Email__c: $.x\n"), "actions[0].idempotency_field",
     "ends failed UNRESOLVED_CREATE"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      Title: {path: $.t, default: n/a, policy: always}\n"),
     "actions[0].fields.Title", "replaces the value Title holds"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "      Description: '{{ traits.a }} / {{ traits.b }}'\n"),
     "actions[0].fields.Description", "written with gaps"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK + "    fields_from: {path: $.properties, allow: [Rating, Colour]}\n"),
     "actions[0].fields_from.allow", "Colour, which is not a field of Lead"),
    (_action(rest=MATCH + "    fields:\n" + LEAD_OK +
             "      Title: {path: $.t, transform: {replace: {pattern: '(a+)+$', replacement: ''}}}\n"),
     "actions[0].fields.Title", "exponential time"),
])
async def test_overwrite_risks_and_empty_creates_are_warnings(tls_emulator: Any, tmp_path: Path, text: str, path: str,
                                                             snippet: str) -> None:
    problems = await _problems(tls_emulator, tmp_path, text)
    assert [p for p in problems if p.severity == "error"] == []
    assert any(p.path == path and snippet in p.message and p.severity == "warning" for p in problems), problems


async def test_the_shipped_actions_pass_check_against_the_emulator(tls_emulator: Any, tmp_path: Path) -> None:
    folder = tmp_path / "actions"
    shutil.copytree(REPO / "actions", folder)
    problems = await check(load_settings(_settings_for(tls_emulator, tmp_path)), folder)
    assert [p for p in problems if p.severity == "error"] == []
    assert [p for p in problems if "replaces" in p.message or "gaps" in p.message] == []  # no overwrite risk
    assert [p for p in problems if "UNRESOLVED_CREATE" in p.message] == []  # every create can be reconciled
    assert {s for s in load_dir(folder)} == {"web-app", "product", "shop"}


def test_the_command_exits_non_zero_on_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "actions"
    folder.mkdir()
    (folder / "bad.yaml").write_text("source: app\nactions:\n  - name: a\n")
    assert main(["--config", str(tmp_path / "none.yaml"), "--actions", str(folder), "check", "--offline"]) == 1
    assert "bad.yaml:3:5" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "none.yaml"), "--actions", str(REPO / "actions"), "check"]) == 0


PARTNER_LEAD, LEGACY_LEAD = "0128c0000000004AAA", "0128c0000000005AAA"


@pytest.mark.parametrize(("rest", "path", "snippet"), [
    (MATCH + f"    record_type: {PARTNER_LEAD}\n    fields:\n" + LEAD_OK + "      Status: Working - Contacted\n",
     "actions[0].fields.Status", "'Working - Contacted' of Status is not offered by record type Partner_Lead"),
    (MATCH + "    fields:\n" + LEAD_OK + f"      RecordTypeId: {PARTNER_LEAD}\n"
     "      LeadSource: {path: $.traits.source, default: Web}\n",
     "actions[0].fields.LeadSource", "default 'Web' of LeadSource is not offered by record type Partner_Lead"),
])
async def test_a_static_picklist_value_the_actions_record_type_lacks_is_a_warning(
        tls_emulator: Any, tmp_path: Path, rest: str, path: str, snippet: str) -> None:
    problems = await _problems(tls_emulator, tmp_path, _action(rest=rest))
    assert [p.severity for p in problems if p.path == path and snippet in p.message] == ["warning"], problems
    assert not [p for p in problems if p.severity == "error"], problems


async def test_a_record_type_the_user_may_not_use_is_an_error(tls_emulator: Any, tmp_path: Path) -> None:
    problems = await _problems(tls_emulator, tmp_path, _action(rest=MATCH + f"    record_type: {LEGACY_LEAD}\n"
                                                                "    fields:\n" + LEAD_OK))
    errors = [p for p in problems if p.severity == "error"]
    assert [p.path for p in errors] == ["actions[0].record_type"], problems
    assert "INVALID_CROSS_REFERENCE_KEY" in errors[0].message
    fine = await _problems(tls_emulator, tmp_path, _action(rest=MATCH + f"    record_type: {PARTNER_LEAD}\n"
                                                           "    fields:\n" + LEAD_OK + "      Status: Closed - Converted\n"))
    assert not [p for p in fine if "record type" in p.message], fine
