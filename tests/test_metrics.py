"""Metrics counted per batch read exactly as the same values counted one at a time."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from destination.events import Event
from destination.metrics import Metrics
from destination.outcomes import Outcome
from destination.progress import read_totals


def _samples(metrics: Metrics, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode()) if family.name == name
            for s in family.samples if not s.name.endswith("_created")}


def test_latencies_observed_per_batch_fill_the_same_buckets_and_sum_as_one_observe_each() -> None:
    seconds = [0.0, 0.05, 0.0500001, 0.1, 0.3, 1.0, 2.4, 9.99, 60.0, 299.0, 300.0, 301.0, 1e6]
    one_by_one, batched = Metrics(), Metrics()
    for value in seconds:
        one_by_one.latency.observe(value)
    batched.observe_latencies(seconds[:5])
    batched.observe_latencies(seconds[5:])
    batched.observe_latencies([])
    name = "destination_event_latency_seconds"
    assert _samples(batched, name) == _samples(one_by_one, name)
    assert _samples(batched, name)[(f"{name}_count", ())] == len(seconds)


def test_outcomes_counted_per_batch_are_one_each_by_status_object_and_error_code() -> None:
    event = Event("app", {"messageId": "m1"})
    metrics = Metrics()
    metrics.count_outcomes([Outcome.succeeded(event, record_id="00Q1", created=True, object="Lead"),
                            Outcome.succeeded(event, record_id="00Q2", created=False, object="Lead"),
                            Outcome.failed(event, "STRING_TOO_LONG", "too long", object="Lead")])
    metrics.count_outcomes([Outcome.failed(event, "STRING_TOO_LONG", "too long", object="Lead"),
                            Outcome.failed(event, "MAPPING_ERROR", "no value"),
                            Outcome.skipped(event, "NOTHING_TO_CHANGE", object="Lead")])
    metrics.outcome(Outcome.succeeded(event, record_id="00Q3", created=True, object="Lead"))
    assert {dict(labels)["status"] + " " + dict(labels)["object"] + " " + dict(labels)["error_code"]: value
            for (_, labels), value in _samples(metrics, "destination_outcomes").items()} == {
        "succeeded Lead ": 3, "failed Lead STRING_TOO_LONG": 2, "failed  MAPPING_ERROR": 1, "skipped Lead ": 1}


def test_events_consumed_are_all_seen_by_every_reader_of_the_registry_each_time_it_is_read() -> None:
    metrics = Metrics()
    for source in ("web", "web", "app"):
        metrics.consumed(source)
    name = "destination_events_consumed"
    assert read_totals(metrics.registry).events_consumed == 3
    metrics.consumed("web")
    assert _samples(metrics, name) == {(f"{name}_total", (("source", "web"),)): 3,
                                       (f"{name}_total", (("source", "app"),)): 1}
    metrics.consumed("app")
    assert metrics.registry.get_sample_value(f"{name}_total", {"source": "app"}) == 2
    assert read_totals(metrics.registry).events_consumed == 5
