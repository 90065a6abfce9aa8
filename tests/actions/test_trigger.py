"""Trigger expressions: grammar, evaluation, and refusal of anything that is not an expression."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from destination.actions.trigger import TriggerError, matches, parse, predicate

IDENTIFY = {"type": "identify", "userId": "u1", "traits": {"email": "a@b.co", "plan": "pro-annual", "seats": 12,
                                                           "tags": ["vip", "beta"], "blank": ""}}
ORDER = {"type": "track", "event": "Order Completed", "properties": {"total": 150.5, "currency": "EUR"}}


@pytest.mark.parametrize(("expression", "body", "expected"), [
    ('type = "identify" and traits.email exists', IDENTIFY, True),
    ('type = "identify" and traits.phone exists', IDENTIFY, False),
    ("traits.blank exists", IDENTIFY, False),
    ("traits.phone not exists", IDENTIFY, True),
    ('event = "Order Completed"', ORDER, True),
    ("properties.total > 100", ORDER, True),
    ("properties.total <= 100", ORDER, False),
    ('properties.currency in ("USD", "EUR")', ORDER, True),
    ('properties.currency not in ("USD", "EUR")', ORDER, False),
    ('traits.plan contains "pro"', IDENTIFY, True),
    ('traits.tags contains "vip"', IDENTIFY, True),
    ('not (type = "track" or traits.seats < 10)', IDENTIFY, True),
    ("traits.seats = 12 and traits.seats != 13", IDENTIFY, True),
    ("TYPE = 'identify'", {"TYPE": "identify"}, True),
    ('$.traits.email = "a@b.co"', IDENTIFY, True),
    ('type = "identify" AND NOT traits.email exists OR event = "x"', IDENTIFY, False),
])
def test_expressions_evaluate_like_segment_subscriptions(expression: str, body: dict, expected: bool) -> None:  # type: ignore[type-arg]
    assert matches(parse(expression), body) is expected


@pytest.mark.parametrize("bad", ['type = = "x"', "type =", "(type = 'a'", "__import__('os')", "type == 'a'",
                                 "traits.email exists exists", ""])
def test_malformed_expressions_raise_with_a_position(bad: str) -> None:
    with pytest.raises(TriggerError):
        parse(bad)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_string_literal_compares_equal_to_itself(text: str) -> None:
    import json

    assert matches(parse(f"traits.name = {json.dumps(text)}"), {"traits": {"name": text}})


def test_an_integer_beyond_a_float_compares_as_infinite_instead_of_raising() -> None:
    huge = 10 ** 400  # valid JSON; float(huge) raises OverflowError
    assert predicate("properties.total > 100")({"properties": {"total": huge}})
    assert not predicate("properties.total < 100")({"properties": {"total": huge}})
    assert not predicate("properties.total = 5")({"properties": {"total": -huge}})
