"""Prometheus metrics of one running destination (a registry per instance, so tests can run several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .outcomes import Outcome


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_in = Counter("destination_events_in_total", "Events accepted, by source", ["source"], registry=r)
        self.outcomes = Counter("destination_outcomes_total", "Terminal outcomes", ["status", "object", "error_code"],
                                registry=r)
        self.api_calls = Counter("destination_salesforce_calls_total", "Write calls by kind (mode:operation)",
                                 ["kind"], registry=r)
        self.batch_sizes = Histogram("destination_batch_size", "Records per write call", ["kind"], registry=r,
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
        self.retention_pruned = Counter("destination_retention_pruned_rows_total", "Rows deleted by retention, by "
                                        "store (sync_log, dead_letters, event_log)", ["store"], registry=r)
        self._children: dict[tuple[str, ...], Any] = {}  # labels() takes a lock and builds a key: once per label set

    def event_in(self, source: str) -> None:
        child = self._children.get(("in", source))
        if child is None:
            child = self._children[("in", source)] = self.events_in.labels(source)
        child.inc()

    def batch(self, kind: str, size: int) -> None:
        self.api_calls.labels(kind).inc()
        self.batch_sizes.labels(kind).observe(size)

    def batch_error(self, object: str, error: str) -> None:
        self.batch_errors.labels(object, error).inc()

    def sync_log_failure(self, error: str) -> None:
        self.sync_log_failures.labels(error).inc()

    def outcome(self, outcome: Outcome) -> None:
        key = ("outcome", outcome.status.value, outcome.object or "", outcome.error_code or "")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.outcomes.labels(*key[1:])
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
