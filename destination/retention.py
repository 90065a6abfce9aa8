"""Retention: a delivering process deletes, in the background, sync-log rows, dead letters and embedded-log
events older than the configured ages (settings `retention`, docs/operations.md "Retention").

- Sync-log rows go after `sync_log_days` (by when last updated) — except failed ones, which `replay`
  re-drives: they stay as long as dead letters, `dead_letter_days`.
- The embedded event log loses an event only once it is committed (its outcomes are recorded) and older
  than `event_log_days`. Kafka topics are the broker's business (`retention.ms`).
- Deletes go in chunks of `batch_rows`, each its own short transaction in the store's worker thread (SQLite)
  or pool (PostgreSQL), so ingest and delivery interleave and the event loop never waits on them.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import asyncpg

from .background import in_background
from .config import RetentionConfig
from .eventlog.base import EventLog
from .eventlog.sqlite import SqliteEventLog
from .metrics import Metrics
from .synclog.base import SyncLog, utcnow

log = logging.getLogger("destination.retention")

#: What a store can fail with while pruning (locked, disk, connection): logged, tried again next run.
_STORE_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows deleted by one run, per store."""

    sync_log: int = 0  # outcomes other than failed
    failed: int = 0  # failed outcomes (kept as long as dead letters)
    dead_letters: int = 0
    event_log: int = 0


def _days(value: float | None) -> timedelta | None:
    return timedelta(days=value) if value else None  # 0 and null: keep forever


async def _drain(chunk: Callable[[], Awaitable[int]], limit: int) -> int:
    """Repeat a chunked delete until a chunk deletes fewer than `limit` rows."""
    total = 0
    while True:
        deleted = await chunk()
        total += deleted
        if deleted < limit:
            return total
        await asyncio.sleep(0)  # let queued appends and outcome writes take the store first


class Retention:
    """One pruning pass over the stores a delivering process owns."""

    def __init__(self, config: RetentionConfig, sync_log: SyncLog, event_log: EventLog | None = None,
                 metrics: Metrics | None = None) -> None:
        self.config = config
        self.sync_log = sync_log
        # only the embedded log is ours to prune; a Kafka topic keeps what its retention.ms says
        self.event_log = event_log if isinstance(event_log, SqliteEventLog) else None
        self.metrics = metrics

    async def run_once(self, now: datetime | None = None) -> Pruned:
        """Delete what is older than the configured ages at `now` (default: the current time); log a line
        with the counts and add them to `destination_retention_pruned_rows_total`."""
        now = now or utcnow()
        limit = self.config.batch_rows
        started = time.monotonic()
        outcomes, dead_letters, events = (_days(self.config.sync_log_days), _days(self.config.dead_letter_days),
                                          _days(self.config.event_log_days))
        sync = failed = dead = logged = 0
        if outcomes is not None:
            sync = await _drain(lambda: self.sync_log.prune_outcomes(now - outcomes, failed=False, limit=limit), limit)
        if dead_letters is not None:
            failed = await _drain(lambda: self.sync_log.prune_outcomes(now - dead_letters, failed=True, limit=limit),
                                  limit)
            dead = await _drain(lambda: self.sync_log.prune_dead_letters(now - dead_letters, limit=limit), limit)
        if events is not None and self.event_log is not None:
            logged = await self.event_log.prune((now - events).timestamp(), limit=limit)
        pruned = Pruned(sync, failed, dead, logged)
        if self.metrics is not None:
            for store, count in (("sync_log", sync + failed), ("dead_letters", dead), ("event_log", logged)):
                if count:
                    self.metrics.retention_pruned.labels(store).inc(count)
        log.info("retention: pruned %d sync-log rows (%d of them failed), %d dead letters, %d event-log events "
                 "in %.1f s", sync + failed, failed, dead, logged, time.monotonic() - started,
                 extra={"retention": asdict(pruned)})
        return pruned


async def prune_every(retention: Retention, every: float) -> None:
    """Run `retention` now and then every `every` seconds, until cancelled; a store that fails is retried at
    the next run."""
    while True:
        try:
            await retention.run_once()
        except _STORE_ERRORS as exc:
            log.warning("retention: pruning stopped early (%s: %s); next try in %d s", type(exc).__name__, exc,
                        round(every))
        await asyncio.sleep(every)


@asynccontextmanager
async def pruning(retention: Retention, every: float) -> AsyncIterator[None]:
    """Prune in the background while the block runs."""
    async with in_background(prune_every(retention, every), name="retention", on_done=_report_death):
        yield


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:  # a bug: say so now, not only at shutdown
        log.error("retention stopped: pruning failed", exc_info=task.exception())
