"""The messageId dedup window is bounded in memory: at most `dedup_max_entries` ids (the oldest forgotten
first), whatever the traffic; the reproduced growth was 212 MB over 360 requests, never shrinking."""

from __future__ import annotations

import tracemalloc
import uuid

from destination.config import IngestConfig
from destination.ingest.dedup import DEFAULT_MAX_ENTRIES, RecentMessages


def test_the_default_window_stays_within_its_documented_size_under_unique_traffic() -> None:
    recent = RecentMessages()
    prefix = uuid.uuid4().hex[:4]
    for request in range(240):  # 600,000 unique messageIds of 36 characters, 2,500 per request
        recent.first_times("web-app", [f"{prefix}{request:08d}-{i:024d}" for i in range(2500)])
    assert len(recent._seen) <= DEFAULT_MAX_ENTRIES
    sample = RecentMessages()
    tracemalloc.start()
    try:
        for request in range(8):
            sample.first_times("web-app", [f"{prefix}{request:08d}-{i:024d}" for i in range(2500)])
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_entry = used / len(sample._seen)
    assert per_entry < 250  # the ~200 bytes docs/operations.md states
    assert DEFAULT_MAX_ENTRIES * per_entry < 50e6, f"{DEFAULT_MAX_ENTRIES * per_entry / 1e6:.0f} MB at the cap"


def test_beyond_the_cap_the_oldest_messageids_are_forgotten_first() -> None:
    recent = RecentMessages(max_entries=1000)
    recent.first_times("web", [f"m{i}" for i in range(1500)])
    assert len(recent._seen) == 1000
    assert not recent.first_time("web", "m1499")  # the newest are remembered
    assert recent.first_time("web", "m0")  # the oldest were forgotten: a repeat is accepted again


def test_the_window_is_sized_by_the_ingest_settings() -> None:
    from destination.ingest.app import Ingest
    from destination.ingest.keys import WriteKeys

    ingest = Ingest(WriteKeys({}), log=None,  # type: ignore[arg-type]
                    limits=IngestConfig(dedup_max_entries=5000, dedup_window_seconds=60))
    assert (ingest.recent.max_entries, ingest.recent.window) == (5000, 60)
