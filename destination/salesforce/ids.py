"""Salesforce Id shape checks (15 or 18 characters, base 62), so bad Ids never reach a query."""

from __future__ import annotations

import re

_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")


_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def looks_like_id(value: str) -> bool:
    """True for a string with the shape of a 15-character Id, or an 18-character one whose last 3 characters
    are its case-safe checksum (Salesforce refuses a query naming any other: INVALID_QUERY_FILTER_OPERATOR)."""
    if not _ID.match(value):
        return False
    return len(value) == 15 or value[15:] == "".join(
        _CHECKSUM[sum(1 << j for j, c in enumerate(value[b * 5:b * 5 + 5]) if "A" <= c <= "Z")] for b in range(3))
