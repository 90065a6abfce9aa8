"""The SOQL builder: escaping per reference §3.2, typed literals, validated names, IN chunking."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from destination.salesforce import soql


def test_quote_escapes_backslash_quotes_and_control_characters() -> None:
    assert soql.quote("O'Brien") == r"'O\'Brien'"
    assert soql.quote('a"b\\c') == "'a\\\"b\\\\c'"
    assert soql.quote("line1\nline2\r\t\b\f") == r"'line1\nline2\r\t\b\f'"
    assert soql.quote("\x00") == r"'\u0000'"


def test_like_escapes_wildcards_only_in_like_context() -> None:
    assert soql.quote("50%_off", like=True) == r"'50\%\_off'"
    assert soql.quote("50%_off") == "'50%_off'"


def test_literals_are_typed_from_describe() -> None:
    assert soql.literal("42", "double") == "42"
    assert soql.literal(1.5) == "1.5"
    assert soql.literal("true", "boolean") == "true"
    assert soql.literal(None, "string") == "null"
    assert soql.literal("2024-01-02", "date") == "2024-01-02"
    assert soql.literal(date(2024, 1, 2)) == "2024-01-02"
    assert soql.literal(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    assert soql.literal("2024-01-02T05:04:05+02:00", "datetime") == "2024-01-02T03:04:05Z"
    assert soql.literal(42, "string") == "'42'"
    for bad, kind in (("abc", "double"), ("maybe", "boolean"), ("soon", "date"), ("1e999999", "int")):
        with pytest.raises(soql.SoqlValueError):
            soql.literal(bad, kind)


@pytest.mark.parametrize("bad", ["Name FROM Account", "Name--", "Id,Name", "1Name", "", "Name'", "a.b.", "A B"])
def test_names_that_could_carry_soql_are_refused(bad: str) -> None:
    with pytest.raises(soql.SoqlValueError):
        soql.name(bad)


def test_select_renders_conditions_with_and_or_grouping() -> None:
    query = soql.Select("Contact", ("Id", "Email", "Account.Name"), soql.any_of(
        soql.eq("Email", "a@b.c"), soql.all_of(soql.eq("LastName", "O'Neil"), soql.in_("Id", ["003A", "003B"]))),
        order_by=("LastModifiedDate DESC",), limit=10)
    assert query.render() == ("SELECT Id, Email, Account.Name FROM Contact WHERE (Email = 'a@b.c' OR "
                              "(LastName = 'O\\'Neil' AND Id IN ('003A', '003B'))) ORDER BY LastModifiedDate DESC "
                              "LIMIT 10")


def test_in_lists_are_chunked_under_the_url_limit() -> None:
    values = [f"user{i}@example.com" for i in range(2000)]
    chunks = list(soql.chunk_in(soql.Select("Lead", ("Id", "Email")), "Email", values, max_url_bytes=8000))
    assert len(chunks) > 1
    assert [v for _, chunk in chunks for v in chunk] == values
    assert all(len(quote_plus(q.render())) <= 8000 for q, _ in chunks)


@given(st.text(max_size=200))
def test_any_string_escapes_to_a_single_literal_without_bare_quotes(text: str) -> None:
    quoted = soql.quote(text)
    body = quoted[1:-1]
    i = 0
    while i < len(body):  # every quote or backslash in the body is part of an escape pair
        if body[i] == "\\":
            assert i + 1 < len(body)
            i += 2 if body[i + 1] != "u" else 6
            continue
        assert body[i] not in "'\n\r"
        i += 1


def _escape_per_character(text: str, like: bool) -> str:
    """The escaping rules of reference §3.2, one character at a time (the fast path must agree)."""
    table = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
    if like:
        table.update({"%": "\\%", "_": "\\_"})
    return "".join(table.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
                   for ch in text)


@given(st.text(max_size=200), st.booleans())
def test_escaping_agrees_with_the_per_character_rules(text: str, like: bool) -> None:
    assert soql.escape(text, like=like) == _escape_per_character(text, like)


@given(st.text(max_size=200))
def test_url_length_is_the_length_of_the_form_encoded_text(text: str) -> None:
    assert soql.url_length(text) == len(quote_plus(text))


@given(st.text(max_size=200))
def test_form_encoding_of_a_query_decodes_back_to_the_same_text(text: str) -> None:
    from urllib.parse import parse_qs

    from destination.salesforce.client import form_encode

    encoded = form_encode(text)
    assert all(c.isascii() and (c.isalnum() or c in "-._~'(),@!*:/$;%+") for c in encoded)
    assert parse_qs("q=" + encoded, keep_blank_values=True, strict_parsing=True)["q"] == [text]


_BASE = "https://na1.my.salesforce.com/services/data/v60.0/query?q="


@given(st.text(max_size=400))
def test_a_query_url_parsed_without_httpx_checks_equals_httpx_own_parse(text: str) -> None:
    import httpx

    from destination.salesforce.client import form_encode, parsed_url

    url = _BASE + form_encode(text)
    parsed = parsed_url(url)
    expected = httpx.URL(url)
    assert httpx.URL(parsed) == expected
    assert httpx.URL(parsed).raw_path == expected.raw_path and httpx.URL(parsed).host == expected.host


# what a plain query may hold (escapes among them), then with some of what it may not (a space, '#', '"', a bare
# '%', a control character)
_PLAIN = [*"Aa9-._~'(),@!*:/$;+=&?Ff0", "%41", "%7e", "%2C"]
_QUERY = st.one_of(st.lists(st.sampled_from(_PLAIN), min_size=250, max_size=600).map("".join),
                   st.lists(st.sampled_from([*_PLAIN, "%", " ", "#", '"', "<", "\x7f", "\n", "é"]), min_size=250,
                            max_size=600).map("".join))


@given(_QUERY)
def test_any_query_string_is_parsed_as_httpx_would_or_left_to_httpx(query: str) -> None:
    import httpx

    from destination.salesforce.client import parsed_url

    url = _BASE + query
    parsed = parsed_url(url)
    if isinstance(parsed, str):
        assert parsed == url
    else:
        assert parsed == httpx.URL(url) and parsed.raw_path == httpx.URL(url).raw_path


def test_a_200_value_in_list_skips_httpx_per_character_checks() -> None:
    import httpx

    from destination.salesforce.client import form_encode, parsed_url

    values = ",".join(soql.quote(f"person{i}+tag@example.com") for i in range(200))
    url = _BASE + form_encode(f"SELECT Id FROM Lead WHERE Email IN ({values})")
    parsed = parsed_url(url)
    assert isinstance(parsed, httpx.URL) and parsed == httpx.URL(url)
    assert parsed_url(_BASE + "short") == _BASE + "short"
