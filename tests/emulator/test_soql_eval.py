"""The emulator's SOQL: escapes (§3.2), operators, relationships, ordering, errors (§3.3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from salesforce_emulator.errors import SfException
from salesforce_emulator.soql import execute, parse
from salesforce_emulator.soql.dates import date_range
from salesforce_emulator.state import EmulatorState, build_state


@pytest.fixture
def org() -> EmulatorState:
    state = build_state()
    store = state.store
    acme = store.insert("Account", {"Name": "Acme", "Website": "acme.example", "NumberOfEmployees": 50}).id
    store.insert("Account", {"Name": "Globex 50%_off", "NumberOfEmployees": 5})
    store.insert("Contact", {"LastName": "O'Brien", "Email": "ob@acme.example", "AccountId": acme,
                             "Birthdate": "1980-05-01"})
    store.insert("Contact", {"LastName": "Back\\slash", "Email": "bs@x.example"})
    store.insert("Contact", {"LastName": "Tab\there", "Email": None})
    return state


def q(state: EmulatorState, text: str, **kw: Any) -> list[dict[str, Any]]:
    return execute(parse(text), state.org, state.store, **kw)[1]


def error(state: EmulatorState, text: str) -> dict[str, Any]:
    with pytest.raises(SfException) as caught:
        execute(parse(text), state.org, state.store)
    assert caught.value.status == 400
    return caught.value.errors[0].rest()


def test_escaped_quotes_backslashes_and_control_characters_match_exactly(org: EmulatorState) -> None:
    assert [r["LastName"] for r in q(org, r"SELECT LastName FROM Contact WHERE LastName = 'O\'Brien'")] == ["O'Brien"]
    assert len(q(org, r"SELECT Id FROM Contact WHERE LastName = 'Back\\slash'")) == 1
    assert len(q(org, r"SELECT Id FROM Contact WHERE LastName = 'Tab\there'")) == 1
    assert len(q(org, r"SELECT Id FROM Contact WHERE LastName = 'Tab\u0009here'")) == 1


def test_an_unknown_escape_is_malformed(org: EmulatorState) -> None:
    assert error(org, r"SELECT Id FROM Contact WHERE LastName = 'a\qb'")["errorCode"] == "MALFORMED_QUERY"
    assert error(org, r"SELECT Id FROM Contact WHERE LastName = 'unterminated")["errorCode"] == "MALFORMED_QUERY"


def test_like_wildcards_and_escaped_wildcards(org: EmulatorState) -> None:
    assert [r["Name"] for r in q(org, "SELECT Name FROM Account WHERE Name LIKE 'ac%'")] == ["Acme"]
    assert [r["Name"] for r in q(org, r"SELECT Name FROM Account WHERE Name LIKE '%50\%\_off'")] == ["Globex 50%_off"]
    assert q(org, r"SELECT Name FROM Account WHERE Name LIKE 'Globex 50\%Xoff'") == []


def test_string_comparison_ignores_case_and_in_lists_work(org: EmulatorState) -> None:
    rows = q(org, "SELECT Email FROM Contact WHERE Email IN ('OB@ACME.EXAMPLE', 'none@x') ORDER BY Email")
    assert [r["Email"] for r in rows] == ["ob@acme.example"]
    assert len(q(org, "SELECT Id FROM Contact WHERE Email NOT IN ('ob@acme.example')")) == 2


def test_null_numbers_dates_and_boolean_logic(org: EmulatorState) -> None:
    assert len(q(org, "SELECT Id FROM Contact WHERE Email = null")) == 1
    assert len(q(org, "SELECT Id FROM Contact WHERE Email != null AND (Birthdate > 1970-01-01 OR Birthdate = null)")) == 2
    assert [r["Name"] for r in q(org, "SELECT Name FROM Account WHERE NumberOfEmployees >= 10")] == ["Acme"]
    assert len(q(org, "SELECT Id FROM Account WHERE NOT NumberOfEmployees < 10")) == 1
    assert len(q(org, "SELECT Id FROM Account WHERE CreatedDate = TODAY AND CreatedDate > LAST_N_DAYS:2")) == 0
    assert len(q(org, "SELECT Id FROM Account WHERE CreatedDate = TODAY")) == 2
    assert len(q(org, "SELECT Id FROM Account WHERE CreatedDate > 2020-01-01T00:00:00Z")) == 2


def test_parent_paths_nest_and_child_subqueries_list(org: EmulatorState) -> None:
    rows = q(org, "SELECT LastName, Account.Name, Account.Owner.Email FROM Contact WHERE Account.Name = 'Acme'")
    assert rows[0]["Account"]["Name"] == "Acme" and rows[0]["Account"]["Owner"]["Email"] == "admin@emulator.test"
    assert rows[0]["Account"]["attributes"]["type"] == "Account"
    orphans = q(org, "SELECT LastName, Account.Name FROM Contact WHERE AccountId = null ORDER BY LastName")
    assert all(r["Account"] is None for r in orphans)
    accounts = q(org, "SELECT Name, (SELECT LastName FROM Contacts) FROM Account ORDER BY Name")
    assert accounts[0]["Contacts"]["records"][0]["LastName"] == "O'Brien" and accounts[1]["Contacts"] is None


def test_order_by_limit_offset_and_nulls(org: EmulatorState) -> None:
    names = [r["Email"] for r in q(org, "SELECT Email FROM Contact ORDER BY Email DESC NULLS FIRST")]
    assert names == [None, "ob@acme.example", "bs@x.example"]
    assert [r["Email"] for r in q(org, "SELECT Email FROM Contact ORDER BY Email LIMIT 1 OFFSET 1")] == [
        "bs@x.example"]
    assert error(org, "SELECT Id FROM Contact OFFSET 2001")["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_count_and_aggregate_rows(org: EmulatorState) -> None:
    total, rows = execute(parse("SELECT COUNT() FROM Contact"), org.org, org.store)
    assert (total, rows) == (3, [])
    rows = q(org, "SELECT COUNT(Id) n, COUNT(Email) FROM Contact")
    assert rows == [{"attributes": {"type": "AggregateResult"}, "n": 3, "expr0": 2}]  # exprN counts unaliased only


def test_query_all_includes_deleted_rows(org: EmulatorState) -> None:
    victim = org.store.records("Account")[0]["Id"]
    org.store.delete("Account", victim)
    assert len(q(org, "SELECT Id FROM Account")) == 1
    rows = q(org, "SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert sorted(r["IsDeleted"] for r in rows) == [False, True]


@pytest.mark.parametrize(("text", "code", "snippet"), [
    ("SELECT Id FRM Account", "MALFORMED_QUERY", "unexpected token: 'FRM'\nposition 10"),
    ("SELECT Naem FROM Account", "INVALID_FIELD", "No such column 'Naem' on entity 'Account'"),
    ("SELECT Id FROM Contact123", "INVALID_TYPE", "sObject type 'Contact123' is not supported"),
    ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD", "can not be filtered"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_FIELD", "should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", "should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: nope"),
    ("SELECT Id FROM Account WHERE Nope__r.Name = 'x'", "INVALID_FIELD", "Didn't understand relationship"),
])
def test_query_errors_carry_salesforce_codes(org: EmulatorState, text: str, code: str, snippet: str) -> None:
    body = error(org, text)
    assert body["errorCode"] == code and snippet in body["message"]


def test_statement_and_literal_size_limits(org: EmulatorState) -> None:
    long_literal = "SELECT Id FROM Account WHERE Name = '" + "a" * 4001 + "'"
    assert error(org, long_literal)["errorCode"] == "MALFORMED_QUERY"
    huge = "SELECT Id FROM Account WHERE " + " OR ".join(["Name = 'x'"] * 9000)
    assert error(org, huge)["errorCode"] == "MALFORMED_QUERY"


def test_ids_match_in_15_or_18_character_form(org: EmulatorState) -> None:
    acme = org.store.records("Account")[0]["Id"]
    for given in (acme, acme[:15]):
        assert [r["Id"] for r in q(org, f"SELECT Id FROM Account WHERE Id = '{given}'")] == [acme]
        assert len(q(org, f"SELECT Id FROM Contact WHERE AccountId IN ('{given}')")) == 1


def test_names_are_case_insensitive_and_output_uses_api_names(org: EmulatorState) -> None:
    rows = q(org, "select lastname, account.NAME from CONTACT where ACCOUNT.name = 'acme'")
    assert list(rows[0]) == ["attributes", "LastName", "Account"]
    assert rows[0]["attributes"]["type"] == "Contact" and rows[0]["Account"]["Name"] == "Acme"


def test_not_equal_and_not_in_keep_null_values_as_salesforce_does(org: EmulatorState) -> None:
    assert len(q(org, "SELECT Id FROM Contact WHERE Email != 'ob@acme.example'")) == 2
    assert len(q(org, "SELECT Id FROM Contact WHERE Birthdate != TODAY")) == 3


def test_parent_paths_go_up_five_levels_and_no_further(org: EmulatorState) -> None:
    top = org.store.insert("Account", {"Name": "Top"}).id
    parent = top
    for level in range(4):
        parent = org.store.insert("Account", {"Name": f"L{level}", "ParentId": parent}).id
    org.store.insert("Contact", {"LastName": "Deep", "AccountId": parent})
    rows = q(org, "SELECT Account.Parent.Parent.Parent.Parent.Name FROM Contact WHERE LastName = 'Deep'")
    assert rows[0]["Account"]["Parent"]["Parent"]["Parent"]["Parent"]["Name"] == "Top"
    body = error(org, "SELECT Account.Parent.Parent.Parent.Parent.Parent.Name FROM Contact")
    assert body["errorCode"] == "MALFORMED_QUERY" and "5 levels" in body["message"]


def test_child_subqueries_nest_filter_order_and_limit(org: EmulatorState) -> None:
    acme = org.store.records("Account")[0]["Id"]
    contact = org.store.insert("Contact", {"LastName": "Zed", "AccountId": acme}).id
    for subject in ("b", "a", "c"):
        org.store.insert("Case", {"Subject": subject, "ContactId": contact})
    rows = q(org, "SELECT Name, (SELECT LastName, (SELECT Subject FROM Cases ORDER BY Subject LIMIT 2) FROM Contacts "
                  "WHERE LastName = 'Zed') FROM Account WHERE Name = 'Acme'")
    contacts = rows[0]["Contacts"]
    assert (contacts["totalSize"], contacts["done"]) == (1, True)
    cases = contacts["records"][0]["Cases"]
    assert [c["Subject"] for c in cases["records"]] == ["a", "b"] and cases["records"][0]["attributes"]["type"] == "Case"


def test_count_respects_limit_and_rejects_other_select_items(org: EmulatorState) -> None:
    assert execute(parse("SELECT COUNT() FROM Contact LIMIT 2"), org.org, org.store) == (2, [])
    assert error(org, "SELECT Name, COUNT(Id) FROM Account")["message"] == "Field must be grouped or aggregated: Name"
    assert error(org, "SELECT COUNT(), COUNT(Id) FROM Account")["errorCode"] == "MALFORMED_QUERY"


@pytest.mark.parametrize(("text", "code", "message"), [
    ("SELECT Id, Name, id FROM Account", "INVALID_FIELD", "duplicate field selected: Id"),
    ("SELECT Name, Account.Name FROM Account", "INVALID_FIELD", "duplicate field selected: Name"),
    ("SELECT Id FROM Account ORDER BY Description", "INVALID_FIELD",
     "field 'Description' can not be sorted in a query call"),
    ("SELECT Id FROM Account WHERE IsDeleted > true", "INVALID_FIELD", "invalid operator on boolean field: >"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees LIKE '5'", "INVALID_FIELD", "invalid operator on int field"),
    ("SELECT Id FROM Account WHERE Name INCLUDES ('a')", "INVALID_FIELD", "invalid operator on string field"),
    ("SELECT Id, (SELECT Id FROM Nopes) FROM Account", "INVALID_FIELD", "Didn't understand relationship 'Nopes'"),
    ("SELECT Id FROM Account WHERE CreatedDate > 2020-01-01", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Account WHERE Name = TODAY", "INVALID_FIELD", "must be of type string"),
])
def test_checks_against_the_schema(org: EmulatorState, text: str, code: str, message: str) -> None:
    body = error(org, text)
    assert body["errorCode"] == code and message in body["message"]


def test_includes_and_excludes_match_multi_select_picklist_values(tmp_path: Path) -> None:
    org_yaml = tmp_path / "org.yaml"
    org_yaml.write_text("extends: default\nobjects:\n  Account:\n    fields:\n"
                        "      Tags__c: {type: multipicklist, picklist: [a, b, c]}\n")
    state = build_state(org_yaml)
    for name, tags in (("AB", "a;b"), ("C", "c"), ("None", None)):
        assert state.store.insert("Account", {"Name": name, "Tags__c": tags}).success
    names = lambda text: sorted(r["Name"] for r in q(state, text))  # noqa: E731
    assert names("SELECT Name FROM Account WHERE Tags__c INCLUDES ('a')") == ["AB"]
    assert names("SELECT Name FROM Account WHERE Tags__c INCLUDES ('b;a', 'c')") == ["AB", "C"]
    assert names("SELECT Name FROM Account WHERE Tags__c INCLUDES ('a;c')") == []
    assert names("SELECT Name FROM Account WHERE Tags__c EXCLUDES ('a')") == ["C", "None"]
    assert names("SELECT Name FROM Account WHERE Tags__c = 'B;A'") == ["AB"]


def test_date_literal_ranges() -> None:
    today = date(2024, 3, 13)  # a Wednesday
    assert date_range("TODAY", today) == (today, date(2024, 3, 14))
    assert date_range("LAST_N_DAYS:7", today) == (date(2024, 3, 6), date(2024, 3, 14))
    assert date_range("N_DAYS_AGO:3", today) == (date(2024, 3, 10), date(2024, 3, 11))
    assert date_range("THIS_WEEK", today) == (date(2024, 3, 10), date(2024, 3, 17))
    assert date_range("LAST_MONTH", today) == (date(2024, 2, 1), date(2024, 3, 1))
    assert date_range("NEXT_N_MONTHS:10", today) == (date(2024, 4, 1), date(2025, 2, 1))
    assert date_range("LAST_N_YEARS:2", today) == (date(2022, 1, 1), date(2024, 1, 1))


def test_date_literals_filter_date_fields(org: EmulatorState) -> None:
    today = datetime.now(UTC).date()
    org.store.insert("Contact", {"LastName": "Recent", "Birthdate": (today - timedelta(3)).isoformat()})
    assert [r["LastName"] for r in q(org, "SELECT LastName FROM Contact WHERE Birthdate = LAST_N_DAYS:5")] == ["Recent"]
    assert len(q(org, "SELECT Id FROM Contact WHERE Birthdate < LAST_N_DAYS:5")) == 1
    assert len(q(org, "SELECT Id FROM Contact WHERE Birthdate = YESTERDAY")) == 0
