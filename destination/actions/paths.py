"""Paths into an event: `$.traits.email`, `properties.items[0].sku`, `context.traits.company`."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@lru_cache(maxsize=4096)
def steps(path: str) -> tuple[str | int, ...]:
    """The keys and list indexes of a path (the leading `$.` is optional); cached, paths come from config."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    text = text.lstrip(".")
    out: list[str | int] = []
    for key, index in _STEP.findall(text):
        out.append(int(index) if index else key)
    return tuple(out)


def is_path(text: str) -> bool:
    """True for a value written as a path (`$.traits.email`), as opposed to a static string."""
    return text.startswith("$.") or text == "$"


def resolve(body: Any, path: str) -> Any:
    """The value at `path`, or MISSING when any step is absent."""
    current = body
    for step in steps(path):
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return MISSING
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return MISSING
            current = current[step]
    return current
