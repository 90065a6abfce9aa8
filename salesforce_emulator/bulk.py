"""Bulk API 2.0 ingest jobs (filled in by the Bulk work)."""

from __future__ import annotations

from .ids import IdFactory
from .store import Store


class BulkJobs:
    """Ingest jobs by Id."""

    def __init__(self, store: Store, ids: IdFactory) -> None:
        self.store = store
        self.ids = ids
        self.jobs: dict[str, object] = {}
