"""Building RecordOps from YAML snippets for delivery tests."""

from __future__ import annotations

import itertools
from typing import Any

from destination.actions.loader import load_text
from destination.events import Event
from destination.mapping import map_event
from destination.operations import RecordOp

_ids = itertools.count(1)


def ops_for(action_yaml: str, bodies: list[dict[str, Any]], source: str = "app") -> list[RecordOp]:
    """Map each body through the one action in `action_yaml` (fails the test if mapping fails)."""
    file = load_text(f"source: {source}\nactions:\n  - name: a\n    when: type exists\n" + action_yaml, "t.yaml")
    out = []
    for body in bodies:
        full = {"type": "identify", "messageId": f"m-{next(_ids)}", **body}
        op = map_event(file, file.actions[0], Event(source, full))
        assert isinstance(op, RecordOp), op
        out.append(op)
    return out
