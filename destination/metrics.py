"""Prometheus metrics of one running destination (a registry per instance, so tests can run several)."""

from __future__ import annotations

import bisect
import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

from .eventlog.base import Partition
from .outcomes import Outcome


class _BeforeReading:
    """A collector that reports nothing: registered first, it runs `flush` whenever the registry is read
    (/metrics, progress lines), before any metric is collected."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        self._flush()
        return []


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # events consumed are counted as plain ints (once per event: a counter's locked increment costs ~1 µs)
        # and moved into their counter whenever the registry is read, so every reader sees them all
        self._consumed: dict[str, int] = {}
        r.register(_BeforeReading(self._flush_consumed))
        # counted where each happens: an ingest-only process accepts, a consumer-only process consumes
        self.events_accepted = Counter("destination_events_accepted_total", "Events the HTTP API (Segment calls and "
                                       "Outbound Messages) made durable in the event log, by source", ["source"],
                                       registry=r)
        self.events_consumed = Counter("destination_events_consumed_total", "Events handed to delivery (read from "
                                       "the event log, or replayed by an operator), by source", ["source"],
                                       registry=r)
        self.consumer_lag = Gauge("destination_consumer_lag_events", "Events in the event log not yet committed by "
                                  "this consumer, per assigned partition", ["topic", "partition"], registry=r)
        self.outcomes = Counter("destination_outcomes_total", "Terminal outcomes", ["status", "object", "error_code"],
                                registry=r)
        self.api_calls = Counter("destination_salesforce_calls_total", "Write calls by kind (mode:operation)",
                                 ["kind"], registry=r)
        self.batch_sizes = Histogram("destination_batch_records", "Records per write call", ["kind"], registry=r,
                                     buckets=(1, 5, 10, 25, 50, 100, 200, 500, 1000, 5000, 10000))
        self.latency = Histogram("destination_event_latency_seconds", "Event received → outcome recorded",
                                 registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.budget_used = Gauge("destination_api_usage_ratio", "Share of the daily API allocation used",
                                 ["connection"], registry=r)
        self.paused = Gauge("destination_delivery_paused", "1 while delivery is paused by the API budget",
                            registry=r)
        self.pending = Gauge("destination_pending_operations", "Operations waiting to be written", registry=r)
        self.batch_errors = Counter("destination_batch_errors_total", "Batches an exception escaped from (their "
                                    "undecided operations failed INTERNAL_ERROR)", ["object", "error"], registry=r)
        self.sync_log_failures = Counter("destination_sync_log_failures_total", "Attempts to record outcomes that "
                                         "failed (waited out and retried)", ["error"], registry=r)
        self.loop_guard_drops = Counter("destination_loop_guard_dropped_total", "Outbound-message notifications "
                                        "dropped by the loop guard (recorded skipped LOOP_GUARD)", ["source"], registry=r)
        self._lag_labels: set[tuple[str, str]] = set()
        self.retention_pruned = Counter("destination_retention_pruned_rows_total", "Rows deleted by retention, by "
                                        "store (sync_log, dead_letters, event_log)", ["store"], registry=r)
        self._children: dict[tuple[str, ...], Any] = {}  # labels() takes a lock and builds a key: once per label set

    def accepted(self, source: str, count: int = 1) -> None:
        """`count` events of `source` are durable in the event log (the ingest API's 200 goes out)."""
        self._counter(self.events_accepted, "accepted", source).inc(count)

    def consumed(self, source: str) -> None:
        """One event of `source` goes to delivery."""
        self._consumed[source] = self._consumed.get(source, 0) + 1

    def _flush_consumed(self) -> None:
        counts, self._consumed = self._consumed, {}
        for source, count in counts.items():
            self._counter(self.events_consumed, "consumed", source).inc(count)

    def _counter(self, counter: Counter, kind: str, source: str) -> Any:
        child = self._children.get((kind, source))
        if child is None:
            child = self._children[(kind, source)] = counter.labels(source)
        return child

    def lag(self, partitions: Mapping[Partition, int]) -> None:
        """The consumer lag per partition this consumer holds now; partitions it no longer holds are dropped."""
        held = {(p.topic, str(p.number)): n for p, n in partitions.items()}
        for labels in set(self._lag_labels) - set(held):
            self.consumer_lag.remove(*labels)
        for labels, n in held.items():
            self.consumer_lag.labels(*labels).set(n)
        self._lag_labels = set(held)

    def batch(self, kind: str, size: int) -> None:
        self.api_calls.labels(kind).inc()
        self.batch_sizes.labels(kind).observe(size)

    def batch_error(self, object: str, error: str) -> None:
        self.batch_errors.labels(object, error).inc()

    def sync_log_failure(self, error: str) -> None:
        self.sync_log_failures.labels(error).inc()

    def outcome(self, outcome: Outcome) -> None:
        """One terminal outcome recorded."""
        self.count_outcomes((outcome,))

    def count_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Terminal outcomes recorded (a batch's): one increment per label set, by how many it has (each
        increment takes the counter's lock)."""
        counts = collections.Counter(("outcome", o.status, o.object or "", o.error_code or "") for o in outcomes)
        for key, count in counts.items():
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.outcomes.labels(str(key[1]), *key[2:])
            child.inc(count)

    def observe_latencies(self, seconds: Sequence[float]) -> None:
        """Event latencies (received → outcome recorded), as `latency.observe` of each would count them, with one
        increment per bucket they fall in and one of the sum, not two locked increments per event.
        prometheus_client has no call for many observations: this adds to the histogram's own bucket and sum
        values (tests/test_metrics.py checks the result against observe())."""
        if not seconds:
            return
        histogram: Any = self.latency
        bounds = histogram._upper_bounds  # ascending, the last one +Inf: observe() counts a value in the first
        counts = collections.Counter(bisect.bisect_left(bounds, s) for s in seconds)  # bound it is <= to
        histogram._sum.inc(sum(seconds))
        for index, count in counts.items():
            histogram._buckets[index].inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
