"""A progress line every interval from a running destination: events accepted (ingest) and consumed
(delivery), outcomes by status and Salesforce API calls in the interval and since start, and the total
consumer lag when a consumer reports it. Read from the
Prometheus registry (destination/metrics.py), so the log and /metrics never disagree."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from .background import in_background

log = logging.getLogger("destination.progress")

EVENTS_ACCEPTED = "destination_events_accepted_total"
EVENTS_CONSUMED = "destination_events_consumed_total"
LAG = "destination_consumer_lag_events"
OUTCOMES = "destination_outcomes_total"
API_CALLS = "destination_salesforce_calls_total"


@dataclass(frozen=True)
class Totals:
    """Counter values at one moment; `lag` is None when no consumer-lag metric is registered."""

    events_accepted: int = 0
    events_consumed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    lag: int | None = None

    def minus(self, earlier: Totals) -> Totals:
        statuses = set(self.outcomes) | set(earlier.outcomes)
        return Totals(self.events_accepted - earlier.events_accepted, self.events_consumed - earlier.events_consumed,
                      {s: self.outcomes.get(s, 0) - earlier.outcomes.get(s, 0) for s in sorted(statuses)},
                      self.api_calls - earlier.api_calls, self.lag)


def read_totals(registry: CollectorRegistry) -> Totals:
    """The counters a progress line reports; the lag is summed over partitions (None: no consumer reports
    it yet)."""
    accepted = consumed = calls = 0.0
    outcomes: dict[str, float] = {}
    lag: float | None = None
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == EVENTS_ACCEPTED:
                accepted += sample.value
            elif sample.name == EVENTS_CONSUMED:
                consumed += sample.value
            elif sample.name == OUTCOMES:
                status = sample.labels.get("status", "")
                outcomes[status] = outcomes.get(status, 0) + sample.value
            elif sample.name == API_CALLS:
                calls += sample.value
            elif sample.name == LAG:
                lag = (lag or 0) + sample.value
    return Totals(int(accepted), int(consumed), {s: int(n) for s, n in sorted(outcomes.items())}, int(calls),
                  None if lag is None else int(lag))


def progress_line(interval: Totals, total: Totals, seconds: float) -> tuple[str, dict[str, object]]:
    """The message and its fields (the JSON format shows them as keys)."""
    done = sum(interval.outcomes.values())
    by_status = ", ".join(f"{s} {n}" for s, n in interval.outcomes.items() if n)
    text = (f"progress, last {round(seconds)} s: {interval.events_accepted} events accepted, "
            f"{interval.events_consumed} consumed, {done} outcomes"
            f"{f' ({by_status})' if by_status else ''}, {interval.api_calls} Salesforce API calls")
    if total.lag is not None:
        text += f"; consumer lag {total.lag}"
    text += (f"; since start: {total.events_accepted} events accepted, {total.events_consumed} consumed, "
             f"{sum(total.outcomes.values())} outcomes")
    fields: dict[str, object] = {
        "interval_seconds": round(seconds, 3), "events_accepted": interval.events_accepted,
        "events_consumed": interval.events_consumed, "outcomes": interval.outcomes, "api_calls": interval.api_calls,
        "events_accepted_since_start": total.events_accepted, "events_consumed_since_start": total.events_consumed,
        "outcomes_since_start": total.outcomes, "api_calls_since_start": total.api_calls,
    }
    if total.lag is not None:
        fields["consumer_lag"] = total.lag
    return text, fields


async def report_progress(registry: CollectorRegistry, every: float) -> None:
    """Log a progress line every `every` seconds, until cancelled."""
    loop = asyncio.get_running_loop()
    last, since = read_totals(registry), loop.time()
    while True:
        await asyncio.sleep(every)
        now, current = loop.time(), read_totals(registry)
        text, fields = progress_line(current.minus(last), current, now - since)
        log.info(text, extra={"progress": fields})
        last, since = current, now


@asynccontextmanager
async def progress_lines(registry: CollectorRegistry, every: float) -> AsyncIterator[None]:
    """Report progress while the block runs (not at all when `every` is 0)."""
    if every <= 0:
        yield
        return
    async with in_background(report_progress(registry, every)):
        yield
