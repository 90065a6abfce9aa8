"""messageIds seen in the last 24 hours (per source): a retried send is acknowledged but not logged twice.

The window is bounded in memory: at most `max_entries` messageIds (about 200 bytes each for a 36-character
id, at most about 430 for the longest messageId ingest accepts, 256 characters), the oldest forgotten first.
A repeat of a messageId already forgotten is logged again; delivery then finds its outcome in the sync log
(one row per source, messageId and action; a create already made is never re-sent)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

DEFAULT_MAX_ENTRIES = 200_000


class RecentMessages:
    def __init__(self, window_seconds: float = 24 * 3600, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.window = window_seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str | tuple[str, object], float] = OrderedDict()
        self._head_at = 0.0  # when the oldest entry was seen, or earlier (a forget may have removed it)

    def _expire(self, now: float) -> None:
        seen = self._seen
        if now - self._head_at <= self.window and len(seen) <= self.max_entries:
            return
        while seen:
            at = next(iter(seen.values()))
            if now - at <= self.window and len(seen) <= self.max_entries:
                self._head_at = at
                return
            seen.popitem(last=False)
        self._head_at = now

    def first_time(self, source: str, message_id: Any) -> bool:
        """True (and remembered) when this messageId was not seen for the source within the window."""
        return self.first_times(source, (message_id,))[0]

    def first_times(self, source: str, message_ids: Iterable[Any]) -> list[bool]:
        """`first_time` for each messageId in turn (a repeat inside the same call is not a first time)."""
        now = time.monotonic()
        self._expire(now)
        seen = self._seen
        if not seen:
            self._head_at = now
        out = []
        prefix = source + "\0"
        for message_id in message_ids:
            key = prefix + message_id if type(message_id) is str else _key(source, message_id)  # _key, inlined
            if key in seen:
                out.append(False)
                continue
            seen[key] = now
            out.append(True)
        if len(seen) > self.max_entries:  # within the cap after this call too, not only before the next
            self._expire(now)
        return out

    def forget(self, source: str, message_id: Any) -> None:
        """Undo `first_time` (the append failed, so a retry must be accepted)."""
        self._seen.pop(_key(source, message_id), None)


def _key(source: str, message_id: Any) -> str | tuple[str, object]:
    # "source\0messageId": strings, unlike tuples, are not tracked by the garbage collector, so a window of
    # millions of entries does not make every collection slower
    return source + "\0" + message_id if type(message_id) is str else (source, message_id)
