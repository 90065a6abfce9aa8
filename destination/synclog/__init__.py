"""The sync log: one outcome row per event and action, and the dead-letter queue (SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from .base import DeadLetter, SyncLog, SyncLogFilter, SyncLogRow

__all__ = ["DeadLetter", "SyncLog", "SyncLogFilter", "SyncLogRow", "open_sync_log"]


def open_sync_log(url: str) -> SyncLog:
    """A sync log for a URL: `sqlite:///path/file.db` (or a bare path) or `postgresql://...`."""
    if url.startswith(("postgres://", "postgresql://")):
        from .postgres import PostgresSyncLog

        return PostgresSyncLog(url)
    from .sqlite import SqliteSyncLog

    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
    return SqliteSyncLog(Path(path))
