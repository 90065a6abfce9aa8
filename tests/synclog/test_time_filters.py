"""`since` / `until` honour the offset they are written in (the sync-log API, page and `replay --since` all
parse them with `parse_time`): the reproduced bug compared a +02:00 bound as text against UTC rows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from destination.events import Event
from destination.outcomes import Outcome
from destination.synclog import SyncLog, SyncLogFilter, SyncLogRow, open_sync_log
from destination.synclog.filters import parse_time


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SyncLog, asyncio.AbstractEventLoop,
                                                                     list[SyncLogRow]]]:
    """Three outcomes recorded a few milliseconds apart, oldest first (a loop of its own for hypothesis)."""
    loop = asyncio.new_event_loop()
    log = open_sync_log(f"sqlite:///{tmp_path_factory.mktemp('times') / 'sync.db'}")
    loop.run_until_complete(log.open())
    for name in ("a", "b", "c"):
        outcome = Outcome.skipped(Event("web", {"type": "identify", "messageId": name, "userId": "u"}), "test")
        loop.run_until_complete(log.record([outcome]))
        time.sleep(0.01)
    rows = sorted(loop.run_until_complete(log.rows(limit=10)), key=lambda r: r.updated_at)
    yield log, loop, rows
    loop.run_until_complete(log.close())
    loop.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(minutes=st.integers(-14 * 60, 14 * 60), style=st.sampled_from(["iso", "no-seconds-fraction", "space"]))
def test_since_and_until_in_any_offset_select_by_the_instant(
        store: tuple[SyncLog, asyncio.AbstractEventLoop, list[SyncLogRow]], minutes: int, style: str) -> None:
    log, loop, rows = store
    middle = rows[1].updated_at
    moment = middle.astimezone(timezone(timedelta(minutes=minutes)))
    text = moment.isoformat()
    if style == "space":
        text = text.replace("T", " ")
    if style == "no-seconds-fraction":  # a bound a fraction of a second earlier still starts at `middle`'s second
        text = moment.replace(microsecond=0).isoformat()
        assert {r.message_id for r in loop.run_until_complete(log.rows(SyncLogFilter(since=parse_time(text))))} \
            >= {"b", "c"}
        return
    since = {r.message_id for r in loop.run_until_complete(log.rows(SyncLogFilter(since=parse_time(text))))}
    until = {r.message_id for r in loop.run_until_complete(log.rows(SyncLogFilter(until=parse_time(text))))}
    assert (since, until) == ({"b", "c"}, {"a"}), text


def test_a_bound_without_offset_is_utc_and_z_is_utc() -> None:
    assert parse_time("2026-03-01T10:00:00") == parse_time("2026-03-01T10:00:00Z") \
        == parse_time("2026-03-01T12:00:00+02:00") == parse_time("2026-03-01T05:30:00-04:30")
    assert parse_time("2026-03-01T12:00:00+02:00").utcoffset() == timedelta(0)  # type: ignore[union-attr]
