"""Paths into an event: `$.traits.email`, `properties.items[0].sku`, `context.traits.company`."""

from __future__ import annotations

import re
from collections.abc import Callable
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
    return getter(path)(body)


@lru_cache(maxsize=4096)
def getter(path: str) -> Callable[[Any], Any]:
    """A function reading `path` from a body (MISSING when any step is absent), built once per path:
    mapping reads every field of every event through one of these."""
    keys = steps(path)
    if len(keys) == 1 and isinstance(keys[0], str):
        only = keys[0]
        return lambda body: body.get(only, MISSING) if isinstance(body, dict) else MISSING
    if len(keys) == 2 and isinstance(keys[0], str) and isinstance(keys[1], str):
        outer, inner = keys

        def two(body: Any) -> Any:
            scope = body.get(outer) if isinstance(body, dict) else None
            return scope.get(inner, MISSING) if isinstance(scope, dict) else MISSING
        return two

    def walk(body: Any) -> Any:
        current = body
        for step in keys:
            if isinstance(step, int):
                if not isinstance(current, list) or step >= len(current):
                    return MISSING
                current = current[step]
            else:
                if not isinstance(current, dict) or step not in current:
                    return MISSING
                current = current[step]
        return current
    return walk
