"""Optional SQLite persistence of the org's records, so a restarted emulator keeps its data.

Write-through: every save or removal is one row upsert or delete. Records are JSON documents keyed by Id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class RecordFile:
    """A SQLite file holding (object, Id, record JSON)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, object TEXT NOT NULL, "
                         "data TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._lock = threading.Lock()

    def load(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every stored (object name, record)."""
        with self._lock:
            rows = self._db.execute("SELECT object, data FROM records ORDER BY id").fetchall()
        for obj, data in rows:
            yield obj, json.loads(data)

    def save(self, obj: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO records (id, object, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
                             "SET data = excluded.data", (record["Id"], obj, json.dumps(record)))

    def note_new_id(self, record_id: str) -> None:
        """Remember the newest Id minted, so a restart never hands out an Id again (even a hard-deleted one)."""
        with self._lock:
            self._db.execute("INSERT INTO meta (key, value) VALUES ('newest_id', ?) ON CONFLICT(key) DO UPDATE "
                             "SET value = excluded.value", (record_id,))

    def newest_id(self) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'newest_id'").fetchone()
        return row[0] if row else None

    def remove(self, record_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM records WHERE id = ?", (record_id,))

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM records")

    def close(self) -> None:
        with self._lock:
            self._db.close()
