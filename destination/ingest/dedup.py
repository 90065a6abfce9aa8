"""messageIds seen in the last 24 hours (per source): a retried send is acknowledged but not logged twice."""

from __future__ import annotations

import time
from collections import OrderedDict


class RecentMessages:
    def __init__(self, window_seconds: float = 24 * 3600, max_entries: int = 2_000_000) -> None:
        self.window = window_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def first_time(self, source: str, message_id: str) -> bool:
        """True (and remembered) when this messageId was not seen for the source within the window."""
        now = time.monotonic()
        while self._seen:
            at = next(iter(self._seen.values()))
            if now - at <= self.window and len(self._seen) <= self.max_entries:
                break
            self._seen.popitem(last=False)
        key = (source, message_id)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    def forget(self, source: str, message_id: str) -> None:
        """Undo `first_time` (the append failed, so a retry must be accepted)."""
        self._seen.pop((source, message_id), None)
