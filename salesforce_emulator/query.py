"""Query cursors: the remaining rows of a SOQL result, served page by page through nextRecordsUrl."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass
from typing import Any

DEFAULT_BATCH = 2000
MIN_BATCH = 200
MAX_BATCH = 2000
LOCATOR_TTL_SECONDS = 2 * 24 * 3600  # a query locator stays valid for 2 days
_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass
class Cursor:
    rows: list[dict[str, Any]]
    total: int
    batch: int
    created: float


def batch_size(header: str | None) -> int:
    """Page size from `Sforce-Query-Options: batchSize=N` (200..2000), else 2000."""
    if header:
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == "batchsize" and value.strip().isdigit():
                return max(MIN_BATCH, min(MAX_BATCH, int(value)))
    return DEFAULT_BATCH


def new_locator() -> str:
    """A locator shaped like Salesforce's: `01g` and 15 more alphanumerics (18 in all, like an Id)."""
    return "01g" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(15))


class QueryCursors:
    """Open query locators: `01g` + 15 characters; a page is addressed as `{locator}-{offset}`."""

    def __init__(self) -> None:
        self.open: dict[str, Cursor] = {}
        self._lock = threading.Lock()

    def page(self, rows: list[dict[str, Any]], batch: int, version: str, path: str) -> dict[str, Any]:
        """The first page of a result, opening a cursor when more remain."""
        if len(rows) <= batch:
            return {"totalSize": len(rows), "done": True, "records": rows}
        locator = new_locator()
        with self._lock:
            self._expire()
            self.open[locator] = Cursor(rows, len(rows), batch, time.monotonic())
        return self._page(locator, 0, version, path)

    def next(self, ref: str, version: str, path: str) -> dict[str, Any] | None:
        """The page a nextRecordsUrl names, or None for an unknown or expired locator."""
        locator, _, offset_text = ref.rpartition("-")
        if not offset_text.isdigit():
            return None
        with self._lock:
            if locator not in self.open:
                return None
        return self._page(locator, int(offset_text), version, path)

    def _page(self, locator: str, offset: int, version: str, path: str) -> dict[str, Any] | None:
        cursor = self.open.get(locator)
        if cursor is None or offset >= cursor.total:
            return None
        end = offset + cursor.batch
        body: dict[str, Any] = {"totalSize": cursor.total, "done": end >= cursor.total,
                                "records": cursor.rows[offset:end]}
        if end < cursor.total:
            body["nextRecordsUrl"] = f"/services/data/v{version}/{path}/{locator}-{end}"
        else:
            with self._lock:
                self.open.pop(locator, None)
        return body

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, c in self.open.items() if now - c.created > LOCATOR_TTL_SECONDS]:
            del self.open[key]

    def reset(self) -> None:
        """Drop every open locator (admin reset)."""
        with self._lock:
            self.open.clear()
