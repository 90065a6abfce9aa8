"""Events are checked against the Segment spec's shape at ingest (a 400 naming the field, never a 500) and
again at routing (INVALID_EVENT for one event, never an exception) — except one the Kafka reader has just
normalised, whose check it ran itself."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_support import EVENT_BODIES, JSON_VALUES, SOURCES, IngestServer

from destination.events import Event
from destination.ingest import validate
from destination.ingest.segment import BadRequest, events_of, read_logged
from destination.outcomes import Outcome, Status
from destination.route import route

AUTH = {"Authorization": "Basic " + base64.b64encode(b"web-key:").decode()}


def _nested(levels: int) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for _ in range(levels):
        nested = {"a": nested}
    return nested


REFUSED = [  # (event, the field the 400 names)
    ({"userId": "u", "context": "x"}, "context"),
    ({"userId": "u", "traits": ["a"]}, "traits"),
    ({"userId": "u", "event": "E", "properties": "p"}, "properties"),
    ({"userId": "u", "integrations": 1}, "integrations"),
    ({"userId": {"id": 1}}, "userId"),
    ({"anonymousId": ["a"]}, "anonymousId"),
    ({"userId": "u", "messageId": ["m"]}, "messageId"),  # was a 500 (unhashable in the dedup window)
    ({"userId": "u", "messageId": {"a": 1}}, "messageId"),
    ({"userId": "u", "messageId": 12}, "messageId"),
    ({"userId": "u", "messageId": "m" * 257}, "messageId"),
    ({"userId": "u", "timestamp": "yesterday"}, "timestamp"),
    ({"userId": "u", "timestamp": 1700000000}, "timestamp"),
    ({"userId": "u", "sentAt": ["x"]}, "sentAt"),
    ({"userId": "u", "context": {"traits": "t"}}, "context.traits"),
    ({"userId": "u", "traits": _nested(300)}, "traits"),  # was a 500 (orjson's recursion limit)
    ({"userId": "u", "traits": _nested(40)}, "traits"),
]


@pytest.mark.parametrize(("event", "field"), REFUSED, ids=[f for _, f in REFUSED])
async def test_an_event_off_the_segment_spec_is_a_400_naming_the_field(ingest: IngestServer, event: dict[str, Any],
                                                                       field: str) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as http:
        r = await http.post("/v1/identify", json=event, headers=AUTH)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_event" and r.json()["message"].startswith(f"{field}:"), r.json()
        r = await http.post("/v1/batch", json={"batch": [{"type": "identify", "userId": "ok"},
                                                         {"type": "identify", **event}]}, headers=AUTH)
        assert r.status_code == 400 and r.json()["message"].startswith(f"batch[1].{field}:"), r.json()
    assert await ingest.logged() == []  # the whole request is refused, as Segment's API does


async def test_a_batch_whose_shared_or_own_context_is_not_an_object_is_a_400(ingest: IngestServer) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as http:
        r = await http.post("/v1/batch", json={"context": {"ip": "1.2.3.4"},  # was a 500: merging {**"x"}
                                               "batch": [{"type": "identify", "userId": "u", "context": "x"}]},
                            headers=AUTH)
        assert r.status_code == 400 and r.json()["message"].startswith("batch[0].context:")
        r = await http.post("/v1/batch", json={"context": "x", "batch": [{"type": "identify", "userId": "u"}]},
                            headers=AUTH)
        assert r.status_code == 400 and r.json()["message"].startswith("context:")


async def test_numeric_ids_are_stored_as_strings_as_segment_does(ingest: IngestServer) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as http:
        r = await http.post("/v1/group", json={"userId": 42, "groupId": 7.0, "anonymousId": 1.5}, headers=AUTH)
    assert r.status_code == 200
    [(_, body)] = await ingest.logged()
    assert (body["userId"], body["groupId"], body["anonymousId"]) == ("42", "7", "1.5")


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=EVENT_BODIES, batch=st.lists(EVENT_BODIES, max_size=3),
       kind=st.sampled_from(["identify", "track", "batch"]))
def test_any_json_is_either_refused_with_a_400_or_yields_events_of_the_spec_shape(
        body: dict[str, Any], batch: list[dict[str, Any]], kind: str) -> None:
    data = {**body, "batch": batch} if kind == "batch" else body
    try:
        events = events_of(kind, data, datetime.now(UTC))
    except BadRequest as exc:
        assert exc.code and str(exc)
        return
    for event in events:
        validate.check(event)
        assert isinstance(event["messageId"], str) and isinstance(event["timestamp"], str)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=EVENT_BODIES | JSON_VALUES)
def test_routing_any_logged_body_gives_outcomes_never_an_exception(body: Any) -> None:
    event = Event("web", body)
    results = route(SOURCES, event)
    assert results
    invalid = validate.problem(body)
    if invalid is not None:
        [outcome] = results
        assert isinstance(outcome, Outcome) and outcome.status is Status.FAILED
        assert outcome.error_code == "INVALID_EVENT" and outcome.fields == (invalid.field,)


def test_the_reproduced_poison_event_fails_alone_with_invalid_event() -> None:
    [outcome] = route(SOURCES, Event("web", {"type": "identify", "userId": "u", "context": "x"}))
    assert isinstance(outcome, Outcome) and outcome.status is Status.FAILED
    assert outcome.error_code == "INVALID_EVENT" and outcome.fields == ("context",)
    assert "context" in (outcome.message or "")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=EVENT_BODIES, ingested=st.booleans())
def test_a_body_the_kafka_reader_marks_checked_routes_as_a_checked_one_would(body: dict[str, Any],
                                                                           ingested: bool) -> None:
    """read_logged says it checked a body only when the body it returns passes the check routing would run,
    so routing it without that check gives the same results; one our ingest had normalised is not marked."""
    if ingested:
        body = {**body, "receivedAt": "2026-01-01T00:00:00.000Z"}
    try:
        out, checked = read_logged(body, "kafka:events:0:7:1", 1_764_658_000_123)
    except BadRequest as exc:
        assert exc.code and not ingested
        return
    assert checked is not ingested
    if checked:
        assert validate.problem(out) is None
        assert route(SOURCES, Event("web", out, checked=True)) == route(SOURCES, Event("web", out))


def test_an_event_our_ingest_logged_is_checked_again_when_routed() -> None:
    """A record with receivedAt is taken as normalised by an ingest, not as checked here: a producer may
    write anything to the topic, so routing still refuses one off the spec's shape."""
    body, checked = read_logged({"type": "identify", "userId": "u", "messageId": "m", "context": "x",
                                 "receivedAt": "2026-01-01T00:00:00.000Z"}, "kafka:events:0:7:1", None)
    assert not checked
    [outcome] = route(SOURCES, Event("web", body, checked))
    assert isinstance(outcome, Outcome) and outcome.error_code == "INVALID_EVENT" and outcome.fields == ("context",)
