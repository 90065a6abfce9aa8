"""Objects the generated code builds slot by slot (codegen.assign, codegen.maker) are the ones their
classes' __init__ builds: every slot, inherited and non-init ones (caches) included."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from destination.actions.codegen import maker
from destination.events import Event
from destination.kinds import Compare, Operation, Policy
from destination.operations import FieldValue, Matcher, MatchTree, RecordOp
from destination.synclog.base import StoredEvent


def _slots(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@pytest.mark.parametrize(("cls", "args"), [
    (StoredEvent, ("web", {"messageId": "m1"}, True, b'{"messageId":"m1"}', "a@b.example")),
    (Event, ("web", {"type": "identify"}, False)),
    (FieldValue, ("x", Policy.ALWAYS, True, False, True)),
    (Matcher, ("Email", "a@b.example", Compare.DOMAIN)),
    (MatchTree, ("any", (Matcher("Email", "a@b.example"),))),
    (RecordOp, (Event("web", {}), "leads", "Lead", Operation.UPSERT, None, {"A": FieldValue("a")})),
])
def test_a_made_object_has_every_slot_its_init_gives_it(cls: type, args: tuple[Any, ...]) -> None:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    given = [*args, *[f.default for f in fields[len(args):]]]  # the rest as their defaults
    made = maker(cls)(*given)
    built = cls(**{f.name: value for f, value in zip(fields, given, strict=True)})
    assert type(made) is cls and made == built and _slots(made) == _slots(built)
    for name in (f.name for f in dataclasses.fields(cls) if not f.init):
        assert getattr(made, name) is getattr(built, name)  # a cache starts empty, as __init__ leaves it

