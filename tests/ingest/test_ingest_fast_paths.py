"""The ingest path's cheaper forms keep the old answers: the messageId window, the embedded log's multi-row
group commit (order, every group size), the 200 body, the Kafka partition of a key (aiokafka's), each event
serialised once (the same events accepted, the same 400s, the same bytes stored), and the fast ASGI path
(the same answers as FastAPI's routes)."""

from __future__ import annotations

import asyncio
import copy
import gzip
import itertools
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_support import EVENT_BODIES, JSON_VALUES, SOURCES, IngestServer

from destination.eventlog.kafka_partition import murmur2, partition_of
from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.events import Event
from destination.ingest import validate
from destination.ingest.app import Ingest, IngestFastPath
from destination.ingest.dedup import RecentMessages
from destination.ingest.keys import WriteKeys, strip_write_keys
from destination.ingest.segment import MAX_EVENT_BYTES, BadRequest, accepted_events, events_of, normalise
from destination.ingest.validate import coerce_ids
from destination.sqlite_rows import statement_sizes


def test_recent_messages_window_repeats_and_forget() -> None:
    recent = RecentMessages(window_seconds=0.2, max_entries=5)
    assert recent.first_times("web", ["a", "b", "a"]) == [True, True, False]  # a repeat inside one request
    assert not recent.first_time("web", "a") and recent.first_time("app", "a")  # per source
    assert recent.first_time("web", 7) and not recent.first_time("web", 7)  # a non-string messageId
    recent.forget("web", "a")
    assert recent.first_time("web", "a")
    for i in range(10):
        recent.first_time("web", f"x{i}")
    recent.first_time("web", "y")
    assert len(recent._seen) <= 6  # max_entries (+ the one just added)
    time.sleep(0.25)
    assert recent.first_time("web", "x9")  # out of the window: a first time again
    assert len(recent._seen) == 1


def test_statement_sizes_cover_every_group() -> None:
    for rows in (*range(0, 600), 1637, 20_000):
        sizes = statement_sizes(rows, 256)
        assert sum(sizes) == rows and all(s & (s - 1) == 0 and s <= 256 for s in sizes)
    assert len({s for rows in range(2000) for s in statement_sizes(rows, 256)}) == 9  # 9 statement shapes


async def test_group_commit_keeps_order_across_concurrent_appends(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    sizes = [1, 100, 3, 257, 0, 512, 31]
    async with SqliteEventLog(path) as log:
        await asyncio.gather(*(log.append([Event("web", {"userId": f"u{n}-{i}", "n": n, "i": i}) for i in range(size)])
                               for n, size in enumerate(sizes)))
    consumer = SqliteLogConsumer(path, consumer="check")
    await consumer.start()
    records = await consumer.fetch(10_000, wait_seconds=0.05)
    await consumer.stop()
    bodies = [r.event.body for r in records if r.event]
    assert len(bodies) == sum(sizes)
    for n, size in enumerate(sizes):  # each append's events all there, in order
        mine = [b["i"] for b in bodies if b["n"] == n]
        assert mine == list(range(size))


async def test_the_200_is_the_segment_answer(ingest: IngestServer) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as http:
        r = await http.post("/v1/track", json={"userId": "u1", "event": "e"}, auth=("web-key", ""))
    assert r.status_code == 200 and r.json() == {"success": True}
    assert r.headers["content-type"] == "application/json" and r.headers["content-length"] == str(len(r.content))


def test_kafka_partition_is_aiokafkas() -> None:
    rng = random.Random(7)
    for length in range(64):
        for _ in range(50):
            data = os.urandom(length)
            assert murmur2(data) == aiokafka_murmur2(data)
    partitions = list(range(8))
    for _ in range(2000):
        key = os.urandom(rng.randint(1, 40))
        count = rng.randint(1, 8)
        assert partition_of(key, partitions[:count]) == DefaultPartitioner()(key, partitions[:count], partitions[:count])


# --- each event serialised once; the fast ASGI path --------------------------------------------------------

_NEAR_LIMIT = st.builds(  # events whose size is near MAX_EVENT_BYTES, with and without a writeKey
    lambda pad, key, kind: {"type": kind, "userId": "u", "traits": {"pad": "x" * pad},
                            **({"writeKey": "k" * key} if key >= 0 else {})},
    st.integers(MAX_EVENT_BYTES - 260, MAX_EVENT_BYTES - 120), st.integers(-1, 60),
    st.sampled_from(["identify", "track"]))


def _deterministic_ids() -> Any:
    """uuid4 as a counter from 0, so two runs over the same request make the same generated messageIds."""
    return mock.patch("destination.ingest.segment.uuid.uuid4", side_effect=itertools.count())


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=EVENT_BODIES | _NEAR_LIMIT, batch=st.lists(EVENT_BODIES | _NEAR_LIMIT, max_size=3),
       kind=st.sampled_from(["identify", "track", "group", "alias", "batch"]),
       shared=st.none() | st.fixed_dictionaries({"context": JSON_VALUES}))
def test_accepted_events_are_events_of_without_write_keys_each_serialised_once(
        body: dict[str, Any], batch: list[dict[str, Any]], kind: str, shared: dict[str, Any] | None) -> None:
    data = {**body, **(shared or {}), "batch": batch} if kind == "batch" else body
    received = datetime.now(UTC)
    with _deterministic_ids():
        try:
            expected = strip_write_keys(events_of(kind, copy.deepcopy(data), received))
        except BadRequest as exc:
            expected_error: BadRequest | None = exc
        else:
            expected_error = None
    with _deterministic_ids():
        try:
            got = accepted_events(kind, copy.deepcopy(data), received)
        except BadRequest as exc:
            assert expected_error is not None, exc
            assert (exc.code, str(exc)) == (expected_error.code, str(expected_error))
            return
    assert expected_error is None, expected_error
    assert got.bodies == expected
    assert got.encoded == [orjson.dumps(b) for b in expected]  # what the log stores: the same bytes as before
    assert got.keys == [Event("web", b).partition_key for b in expected]


def test_the_size_limit_counts_the_write_key_as_sent() -> None:
    event = {"type": "identify", "userId": "u", "traits": {"pad": ""}, "writeKey": "web-key"}
    with_key = len(orjson.dumps(normalise(event, "identify", datetime.now(UTC), max_bytes=None)))
    event["traits"]["pad"] = "x" * (MAX_EVENT_BYTES - with_key)  # exactly at the limit with its writeKey
    accepted_events("identify", dict(event), datetime.now(UTC))
    event["traits"]["pad"] += "x"
    with pytest.raises(BadRequest) as refused:
        accepted_events("identify", dict(event), datetime.now(UTC))
    assert refused.value.code == "event_too_large"  # although it is under the limit once its key is dropped


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=EVENT_BODIES | st.dictionaries(st.sampled_from(["userId", "anonymousId", "groupId", "previousId", "context"]),
                                           st.integers() | st.floats() | st.booleans() | st.text(max_size=3)))
def test_ids_made_strings_in_the_checks_pass_as_by_coercing_first(body: dict[str, Any]) -> None:
    first, fused = copy.deepcopy(body), copy.deepcopy(body)
    coerce_ids(first)
    expected, got = validate.problem(first), None
    try:
        validate.check(fused, numbers_as_ids=True)
    except validate.InvalidEvent as exc:
        got = exc
    assert (got and (got.field, str(got))) == (expected and (expected.field, str(expected)))
    if expected is None:
        assert fused == first


_REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [  # (method, path, headers, body)
    ("POST", "/v1/batch", {"authorization": "Basic d2ViLWtleTo="},
     orjson.dumps({"context": {"ip": "1.2.3.4"}, "batch": [{"type": "track", "event": "E", "userId": f"u{i}",
                                                             "messageId": f"m{i}"} for i in range(3)]})),
    ("POST", "/v1/batch", {"authorization": "Basic d2ViLWtleTo="},  # a repeat: 200, not logged again
     orjson.dumps({"batch": [{"type": "track", "event": "E", "userId": "u0", "messageId": "m0"}]})),
    ("POST", "/v1/identify", {}, orjson.dumps({"writeKey": "web-key", "userId": 42, "messageId": "i1"})),
    ("POST", "/v1/t", {"content-type": "text/plain"}, orjson.dumps({"writeKey": "app-key", "userId": "u",
                                                                    "event": "E", "messageId": "t1"})),
    ("POST", "/v1/g", {"content-encoding": "gzip"},
     gzip.compress(orjson.dumps({"writeKey": "web-key", "userId": "u", "groupId": "g", "messageId": "g1"}))),
    ("POST", "/v1/track", {"authorization": "Basic d2ViLWtleTo="}, orjson.dumps({"userId": "u"})),
    ("POST", "/v1/batch", {"authorization": "Basic d2ViLWtleTo="}, b"{not json"),
    ("POST", "/v1/batch", {"authorization": "Basic d2ViLWtleTo="}, b""),
    ("POST", "/v1/identify", {"authorization": "Basic d3Jvbmc6"}, orjson.dumps({"userId": "u"})),
    ("POST", "/v1/identify", {}, orjson.dumps({"userId": "u"})),
    ("POST", "/v1/p", {"content-encoding": "gzip"}, b"\x1f\x8bnot gzip"),
    ("POST", "/v1/identify", {"content-length": str(10**9)}, orjson.dumps({"userId": "u"})),
    ("POST", "/v1/batch", {"authorization": "Basic d2ViLWtleTo="}, orjson.dumps({"batch": [{"type": "nope"}]})),
    ("GET", "/v1/batch", {}, b""),
    ("POST", "/v1/batch/", {"authorization": "Basic d2ViLWtleTo="}, orjson.dumps({"batch": []})),
    ("POST", "/v1/unknown", {}, b"{}"),
]


async def test_the_fast_path_answers_and_stores_as_the_routes(tmp_path: Path) -> None:
    answers, stored = [], []
    for fast in (False, True):
        path = tmp_path / f"{fast}.db"
        async with SqliteEventLog(path) as log:
            app = FastAPI()
            ingest = Ingest(WriteKeys(SOURCES), log)
            app.include_router(ingest.router)
            if fast:
                app.add_middleware(IngestFastPath, ingest=ingest)
            seen = []
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest") as client:
                for method, url, headers, content in _REQUESTS:
                    r = await client.request(method, url, headers=headers, content=content)
                    seen.append((method, url, r.status_code, r.content, dict(r.headers)))
            answers.append(seen)
        consumer = SqliteLogConsumer(path, consumer="check")
        await consumer.start()
        records = await consumer.fetch(100, wait_seconds=0.05)
        await consumer.stop()
        stored.append([(r.partition.number, r.event.source, {k: v for k, v in r.event.body.items()
                                                              if k not in ("receivedAt", "timestamp")})
                       for r in records if r.event])
    # 200s, the repeat, 400s, 401s, 413, and what the routes alone answer: 405, the trailing-slash 307, 404
    assert [status for _, _, status, _, _ in answers[0]] == [200] * 5 + [400] * 3 + [401] * 2 + [400, 413, 400,
                                                                                                  405, 307, 404]
    assert answers[0] == answers[1]
    assert stored[0] == stored[1] and len(stored[0]) == 6


_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=1)


def _canonical(draw: Any, digits: list[int]) -> str:
    """`YYYY-MM-DDTHH:MM:SS` from 14 digits, then `Z` or `.mmmZ`."""
    text = "".join(map(str, digits))
    stamp = f"{text[:4]}-{text[4:6]}-{text[6:8]}T{text[8:10]}:{text[10:12]}:{text[12:14]}"
    return stamp + draw(st.sampled_from(["Z", ".000Z", ".001Z", ".999Z", ".500Z"]))


@st.composite
def _canonical_times(draw: Any) -> str:
    """Canonical UTC texts: of real moments (year 1 to 9999), and of any digits (mostly not dates at all)."""
    if draw(st.booleans()):
        moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
        digits = [int(c) for c in f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}"
                  f"{moment.minute:02d}{moment.second:02d}"]
    else:
        digits = draw(st.lists(st.integers(0, 9), min_size=14, max_size=14))
    return _canonical(draw, digits)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(timestamp=_canonical_times() | st.text(max_size=30) | st.sampled_from(
    ["2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.123456Z", "2026-01-01T00:00:00+00:00", "2026-01-01 00:00:00Z",
     "20260101T000000Z", "2026-01-01T00:00:00z", "2026-01-01T00:00Z", "2026-01-01T01:00:00+01:00",
     "2026-01-01T00:00:00.123Z\n", "٢٠٢٦-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z"]))
def test_a_timestamp_without_skew_is_stored_as_parsing_and_formatting_it_would(timestamp: str) -> None:
    """Without sentAt, a canonical UTC `Z` text is kept (to the millisecond) instead of parsed and formatted
    again; with a sentAt equal to receivedAt (no skew either) it goes the full way. Both store the same."""
    received = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    received_iso = "2026-03-01T12:00:00.250Z"
    event = {"type": "identify", "userId": "u", "messageId": "m", "timestamp": timestamp}
    answers = []
    for sent in (None, received_iso):
        try:
            answers.append(normalise(event if sent is None else {**event, "sentAt": sent}, "batch", received,
                                     received_iso=received_iso)["timestamp"])
        except BadRequest as exc:
            answers.append(exc.code)
    assert answers[0] == answers[1]
    if answers[0] not in ("invalid_event", "invalid_timestamp"):
        assert answers[0].endswith("Z") and len(answers[0]) >= 24
