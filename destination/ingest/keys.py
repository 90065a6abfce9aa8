"""Write keys → sources, compared in constant time; a key of one source never reaches another's actions."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ..access import find_in_constant_time
from ..actions.model import ActionFile


class WriteKeys:
    def __init__(self, sources: Mapping[str, ActionFile]) -> None:
        self._keys = [(key.encode(), name) for name, source in sources.items() for key in source.write_keys if key]

    def source_for(self, key: str | None) -> str | None:
        """The source of a write key, checking every key in constant time."""
        if not key:
            return None
        return find_in_constant_time(self._keys, key.encode())


def key_from(headers: Mapping[str, str], body: dict[str, Any]) -> str | None:
    """The write key: HTTP Basic (`key:` or `key`), else the body's writeKey (also with a Bearer header)."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.split(":", 1)[0] or None
    key = body.get("writeKey")
    return key if isinstance(key, str) else None


def strip_write_keys(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events without their `writeKey` field: a credential is not event data, and the stored event is
    served by the sync-log API and page."""
    for body in bodies:
        body.pop("writeKey", None)
    return bodies
