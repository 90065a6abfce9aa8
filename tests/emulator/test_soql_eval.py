"""The emulator's SOQL: escapes (§3.2), operators, relationships, ordering, errors (§3.3)."""

from __future__ import annotations

from typing import Any

import pytest

from salesforce_emulator.errors import SfException
from salesforce_emulator.soql import execute, parse
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
