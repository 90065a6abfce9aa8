"""The mapping engine alone (route + map, pure): events per second on one core."""

from __future__ import annotations

import time
from typing import Any

from destination.actions.loader import load_dir
from destination.events import Event
from destination.route import route

from .processes import TREE

REPO = TREE


def run(n: int = 100_000) -> dict[str, Any]:
    sources = load_dir(REPO / "actions")
    events = [Event("web-app", {"type": "identify", "userId": f"u{i}", "messageId": f"m{i}",
                                "timestamp": "2026-01-01T00:00:00Z",
                                "traits": {"email": f"user{i}@example.com", "first_name": "Ada", "last_name": "L",
                                           "company": "Acme", "plan": "pro", "phone": "123"}})
              for i in range(n)]
    started = time.process_time()
    ops = 0
    for event in events:
        ops += len(route(sources, event))
    cpu = time.process_time() - started
    return {"benchmark": "mapping", "events": n, "operations": ops, "cpu_seconds": round(cpu, 3),
            "events_per_second_per_core": round(n / cpu)}
