"""Salesforce record Ids: 15-character base-62 bodies with the 3-character case-safe checksum."""

from __future__ import annotations

import itertools
import re
import threading

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Z]{3})?$")


def checksum(id15: str) -> str:
    """Return the 3-character suffix that makes a 15-character Id case-insensitively unique."""
    out = ""
    for block in range(3):
        chunk = id15[block * 5 : block * 5 + 5]
        n = sum(1 << j for j, c in enumerate(chunk) if "A" <= c <= "Z")
        out += _CHECKSUM_ALPHABET[n]
    return out


def to18(record_id: str) -> str:
    """Normalise a 15- or 18-character Id to its 18-character form (the checksum is recomputed)."""
    if len(record_id) == 18:
        return record_id[:15] + checksum(record_id[:15])
    if len(record_id) == 15:
        return record_id + checksum(record_id)
    raise ValueError(f"not a Salesforce Id: {record_id!r}")


def is_well_formed(record_id: str) -> bool:
    """True when the string has the shape of an Id and, for 18 characters, a correct checksum."""
    if not isinstance(record_id, str) or not _ID_RE.match(record_id):
        return False
    return len(record_id) == 15 or record_id[15:] == checksum(record_id[:15])


def _base62(n: int, width: int) -> str:
    chars = []
    for _ in range(width):
        n, r = divmod(n, 62)
        chars.append(_BASE62[r])
    return "".join(reversed(chars))


class IdFactory:
    """Mints 18-character Ids: key prefix, a 2-character pod ('8c' like a real instance), a sequence."""

    def __init__(self, pod: str = "8c", start: int = 1) -> None:
        self._pod = pod
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    def new(self, key_prefix: str) -> str:
        """Return a fresh Id for an object with this 3-character key prefix."""
        with self._lock:
            n = next(self._counter)
        # 10 base-62 digits; the leading 'A' shifts some characters to upper case so checksums vary.
        body = f"{key_prefix}{self._pod}{_base62(n, 10)}"
        return body + checksum(body)

    def advance_past(self, existing_id: str) -> None:
        """Make sure future Ids sort after one loaded from persistence."""
        seq = existing_id[5:15]
        value = 0
        for c in seq:
            value = value * 62 + _BASE62.index(c)
        with self._lock:
            current = next(self._counter)
            self._counter = itertools.count(max(current, value + 1))
