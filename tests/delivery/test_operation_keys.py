"""An operation's record key and intent key (computed once per op, with a fast path for one matcher) say what
the plain definition says: field lower-cased, text values stripped and lower-cased, other values as text,
pairs sorted; the intent key is that key as JSON text, the form the sync log keeps."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from destination.events import Event
from destination.kinds import Operation
from destination.operations import FieldValue, Matcher, MatchTree, RecordOp

_VALUES = st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())
_MATCHERS = st.lists(st.builds(Matcher, st.sampled_from(["Email", "email", "LastName", "Company", "N"]), _VALUES),
                     min_size=1, max_size=4)


def _plain_key(matchers: list[Matcher]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((m.field.lower(), str(m.value.strip().lower() if isinstance(m.value, str) else m.value))
                        for m in matchers))


def _op(tree: MatchTree | None, operation: Operation = Operation.UPSERT) -> RecordOp:
    return RecordOp(Event("web", {"messageId": "m1"}), "leads", "Lead", operation, tree)


@given(_MATCHERS, st.booleans())
def test_the_record_key_is_the_sorted_normalised_matcher_pairs_however_the_tree_nests(
        matchers: list[Matcher], nested: bool) -> None:
    items: tuple[Any, ...] = tuple(matchers)
    if nested and len(matchers) > 1:
        items = (matchers[0], MatchTree("all", tuple(matchers[1:])))
    op = _op(MatchTree("any", items))
    assert op.record_key() == _plain_key(matchers)
    assert op.record_key() is op.record_key()  # computed once
    assert op.intent_key() == json.dumps(_plain_key(matchers))


def test_a_create_or_an_op_without_matchers_has_no_record_key_and_only_an_upsert_has_an_intent_key() -> None:
    tree = MatchTree("any", (Matcher("Email", "A@x.com"),))
    assert _op(tree, Operation.CREATE).record_key() is None
    assert _op(None).record_key() is None and _op(None).intent_key() is None
    assert _op(tree, Operation.UPDATE).record_key() == (("email", "a@x.com"),)
    assert _op(tree, Operation.UPDATE).intent_key() is None
    assert _op(tree).intent_key() == '[["email", "a@x.com"]]'


def test_a_copy_of_an_op_with_other_matchers_computes_its_own_keys() -> None:
    op = _op(MatchTree("any", (Matcher("Email", "a@x.com"),)))
    assert op.record_key() == (("email", "a@x.com"),) and op.batch_key()[3] == "any(Email:exact)"
    copy = dataclasses.replace(op, match=MatchTree("all", (Matcher("LastName", "Lee"), Matcher("Company", "X"))),
                               fields={"Title": FieldValue("CEO")})
    assert copy.record_key() == (("company", "x"), ("lastname", "lee"))
    assert copy.batch_key()[3] == "all(LastName:exact,Company:exact)"
    assert copy.intent_key() == '[["company", "x"], ["lastname", "lee"]]'
