"""The SOQL lexer and parser: §3.2 string escapes, the AST they build, MALFORMED_QUERY for bad syntax."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesforce_emulator.errors import SfException
from salesforce_emulator.soql.parser import Aggregate, BoolOp, Comparison, Literal, Query, parse

# §3.2: the characters that must be written as an escape inside a quoted literal.
_ESCAPE = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def quoted(text: str) -> str:
    """`text` as a SOQL string literal, escaped by the reference's rules (not by the client's code)."""
    return "'" + "".join(_ESCAPE.get(ch, ch) for ch in text) + "'"


def where_of(text: str) -> Comparison:
    where = parse(text).where
    assert isinstance(where, Comparison)
    return where


def malformed(text: str) -> str:
    with pytest.raises(SfException) as caught:
        parse(text)
    assert caught.value.status == 400 and caught.value.errors[0].code == "MALFORMED_QUERY"
    return caught.value.errors[0].message


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_escaped_by_the_reference_rules_parses_back_to_exactly_that_text(text: str) -> None:
    value = where_of(f"SELECT Id FROM Contact WHERE LastName = {quoted(text)}").value
    assert value == Literal("string", text, value.like_raw)  # type: ignore[union-attr]


@pytest.mark.parametrize("attack", ["x' OR Name != '", "\\' OR Id != null", "a\\", "'; DELETE", "%' OR '1'='1",
                                    "') OR (Name = '"])
def test_injection_attempts_stay_one_literal(attack: str) -> None:
    where = where_of(f"SELECT Id FROM Account WHERE Name = {quoted(attack)}")
    assert where.value.value == attack  # type: ignore[union-attr]


@pytest.mark.parametrize(("escaped", "char"), [
    ("\\n", "\n"), ("\\N", "\n"), ("\\r", "\r"), ("\\R", "\r"), ("\\t", "\t"), ("\\T", "\t"), ("\\b", "\b"),
    ("\\B", "\b"), ("\\f", "\f"), ("\\F", "\f"), ('\\"', '"'), ("\\'", "'"), ("\\\\", "\\"), ("\\u00e9", "é"),
])
def test_each_reference_escape_means_its_character(escaped: str, char: str) -> None:
    assert where_of(f"SELECT Id FROM Account WHERE Name = 'a{escaped}b'").value.value == f"a{char}b"  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["\\q", "\\x41", "\\u12", "\\u00G0", "\\ ", "\\0"])
def test_any_other_backslash_is_malformed(bad: str) -> None:
    assert "Illegal character sequence" in malformed(f"SELECT Id FROM Account WHERE Name = 'a{bad}b'")


def test_like_escapes_mark_literal_wildcards_in_the_pattern() -> None:
    where = where_of(r"SELECT Id FROM Account WHERE Name LIKE 'Ter\%%\_x'")
    assert where.op == "LIKE" and where.value.value == "Ter%%_x"  # type: ignore[union-attr]
    assert where.value.like_raw == "Ter\\%%\\_x"  # type: ignore[union-attr]


def test_statement_shape_becomes_an_ast() -> None:
    query = parse("select Id, Account.Name, COUNT(Email) n, (SELECT Id FROM Contacts) from Account "
                  "where (Name = 'a' or Name like 'b%') and not Industry in ('x', 'y') "
                  "order by Name desc nulls last, Id limit 10 offset 5")
    assert isinstance(query, Query) and query.object == "Account"
    assert query.fields[:3] == ["Id", "Account.Name", Aggregate("COUNT", "Email", "n")]
    assert isinstance(query.fields[3], Query) and query.fields[3].object == "Contacts"
    assert isinstance(query.where, BoolOp) and query.where.op == "AND"
    assert query.order_by == [("Name", True, True), ("Id", False, False)]
    assert (query.limit, query.offset) == (10, 5)


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("5", "number", 5), ("-2.5", "number", -2.5), ("null", "null", None), ("TRUE", "boolean", True),
    ("2024-01-31", "date", "2024-01-31"), ("2024-01-01T00:00:00Z", "datetime", "2024-01-01T00:00:00Z"),
    ("2024-01-01T10:00:00+02:00", "datetime", "2024-01-01T10:00:00+02:00"),
    ("2024-01-01T10:00:00.123-05:30", "datetime", "2024-01-01T10:00:00.123-05:30"),
    ("TODAY", "date_literal", "TODAY"), ("last_n_days:7", "date_literal", "LAST_N_DAYS:7"),
])
def test_literals_of_every_kind(text: str, kind: str, value: object) -> None:
    assert where_of(f"SELECT Id FROM Account WHERE X = {text}").value == Literal(kind, value)


def test_not_equal_spelled_either_way_is_the_same_operator() -> None:
    assert where_of("SELECT Id FROM Account WHERE Name <> 'a'").op == "!="
    assert where_of("SELECT Id FROM Account WHERE Name != 'a'").op == "!="


@pytest.mark.parametrize(("text", "token", "position"), [
    ("SELECT Id FRM Account", "FRM", 10),
    ("SELECT Id FROM Account WHERE", "<EOF>", 28),
    ("SELECT Id FROM Account LIMIT 'x'", "x", 29),
    ("SELECT , FROM Account", ",", 7),
    ("SELECT Id FROM Account WHERE Name = 'a' extra", "extra", 40),
])
def test_syntax_errors_name_the_unexpected_token_and_its_position(text: str, token: str, position: int) -> None:
    assert malformed(text) == f"unexpected token: '{token}'\nposition {position}"


def test_size_limits_are_malformed() -> None:
    assert "4000" in malformed("SELECT Id FROM Account WHERE Name = '" + "a" * 4001 + "'")
    where_of("SELECT Id FROM Account WHERE Name = '" + "a" * 4000 + "'")
    assert "100000" in malformed("SELECT Id FROM Account WHERE " + " OR ".join(["Name = 'x'"] * 9000))


def test_offset_over_2000_is_out_of_range() -> None:
    with pytest.raises(SfException) as caught:
        parse("SELECT Id FROM Account OFFSET 2001")
    assert caught.value.errors[0].code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert parse("SELECT Id FROM Account OFFSET 2000").offset == 2000


def test_like_wildcard_escapes_are_malformed_outside_a_like_pattern() -> None:
    assert "'\\%'" in malformed(r"SELECT Id FROM Account WHERE Name = '50\%'")
    assert "'\\_'" in malformed(r"SELECT Id FROM Account WHERE Name IN ('a', 'b\_c')")
    assert where_of(r"SELECT Id FROM Account WHERE Name LIKE '50\%'").value.value == "50%"  # type: ignore[union-attr]


def test_child_subqueries_nest_at_most_five_levels_deep() -> None:
    inner = "SELECT Id FROM E"
    for name in ("D", "C", "B"):
        inner = f"SELECT Id, ({inner}) FROM {name}"
    query = parse(f"SELECT Id, ({inner}) FROM A")
    assert query.fields[1].fields[1].fields[1].fields[1].object == "E"
    assert malformed(f"SELECT Id, (SELECT Id, ({inner}) FROM Z) FROM A").startswith("unexpected token: '('")


def test_limits_beyond_32_bits_are_out_of_range() -> None:
    assert malformed("SELECT Id FROM Account LIMIT 2147483648") == "numeric value out of range: 2147483648"
    assert parse("SELECT Id FROM Account LIMIT 2147483647").limit == 2147483647


def test_names_remember_where_they_start_for_error_diagrams() -> None:
    text = "SELECT Id, Account.Name\nFROM Contact WHERE Email = 'x' ORDER BY LastName"
    query = parse(text)
    assert query.source == text
    assert [f.pos for f in query.fields] == [7, 11] and query.object.pos == 29
    assert query.where.field.pos == 43 and query.order_by[0][0].pos == 64
