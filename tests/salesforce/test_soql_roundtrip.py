"""The client's SOQL escaping against the emulator's parser: any string round-trips exactly; nothing injects."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from destination.salesforce import soql
from salesforce_emulator.soql.parser import Comparison, parse


def _literal_of(text: str) -> str:
    query = soql.Select("Contact", ("Id",), soql.eq("LastName", text)).render()
    where = parse(query).where
    assert isinstance(where, Comparison)  # one comparison: nothing after the literal became SOQL
    return where.value.value  # type: ignore[union-attr]


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_any_string_round_trips_through_the_emulator_parser(text: str) -> None:
    assert _literal_of(text) == text


@given(st.lists(st.text(max_size=40), min_size=1, max_size=20))
def test_in_lists_parse_back_to_the_same_values(values: list[str]) -> None:
    query = soql.Select("Contact", ("Id",), soql.in_("Email", values)).render()
    where = parse(query).where
    assert isinstance(where, Comparison) and [v.value for v in where.value] == values  # type: ignore[union-attr]


def test_injection_attempts_stay_one_literal() -> None:
    for attack in ("x' OR Name != '", "\\' OR Id != null --", "a\\", "'; DELETE", "%' OR '1'='1"):
        assert _literal_of(attack) == attack


@given(st.text(max_size=60))
def test_like_patterns_match_only_the_literal_text(text: str) -> None:
    query = soql.Select("Contact", ("Id",), soql.Cond("LastName", "LIKE", text)).render()
    where = parse(query).where
    import re

    from salesforce_emulator.soql.evaluate import like_regex

    assert re.fullmatch(like_regex(where.value.like_raw), text, re.DOTALL | re.IGNORECASE)  # type: ignore[union-attr]
