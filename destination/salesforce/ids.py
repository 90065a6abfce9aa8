"""Salesforce Id shape checks (15 or 18 characters, base 62), so bad Ids never reach a query."""

from __future__ import annotations

import re

_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")


def looks_like_id(value: str) -> bool:
    """True for a string with the shape of a 15- or 18-character Id."""
    return bool(_ID.match(value))
