"""Query cursors: the remaining rows of a SOQL result, served page by page through nextRecordsUrl."""

from __future__ import annotations


class QueryCursors:
    """Open query locators (filled in by the SOQL work)."""

    def __init__(self) -> None:
        self.open: dict[str, object] = {}
