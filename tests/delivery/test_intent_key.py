"""A record intent's key is the JSON text of the op's record key, as json.dumps wrote it (keys stored by
earlier versions must still match after an upgrade), whatever the matcher values hold."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from destination.actions.model import Operation
from destination.events import Event
from destination.operations import Matcher, MatchTree, RecordOp
from destination.plan import intent_key

VALUES = st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans())


@given(st.lists(st.tuples(st.text(min_size=1), VALUES), min_size=1, max_size=4))
def test_intent_key_is_the_json_dumps_of_the_record_key(matchers: list[tuple[str, object]]) -> None:
    op = RecordOp(Event("web", {"messageId": "m"}), "leads", "Lead", Operation.UPSERT,
                  MatchTree("all", tuple(Matcher(name, value) for name, value in matchers)))
    assert intent_key(op) == json.dumps(op.record_key())


def test_only_upserts_with_matchers_have_an_intent_key() -> None:
    event = Event("web", {"messageId": "m"})
    match = MatchTree("any", (Matcher("Email", "a@x.example"),))
    assert intent_key(RecordOp(event, "leads", "Lead", Operation.UPDATE, match)) is None
    assert intent_key(RecordOp(event, "leads", "Lead", Operation.UPSERT, None)) is None
    assert intent_key(RecordOp(event, "leads", "Lead", Operation.UPSERT, match)) == '[["email", "a@x.example"]]'
