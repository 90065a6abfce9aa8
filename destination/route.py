"""Route: which actions of the event's own source run for it. Pure."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from .actions.model import ActionFile
from .events import Event
from .ingest.validate import problem
from .mapgen import SourcePlan, plan_of
from .operations import RecordOp
from .outcomes import Outcome

DESTINATION_NAMES = ("Salesforce", "salesforce", "Salesforce (Actions)")
log = logging.getLogger("destination.route")


def opted_out(event: Event) -> bool:
    """Segment's `integrations` opt-out: `{"Salesforce": false}`, or `{"All": false}` without opting back in."""
    integrations = event.body.get("integrations")
    if not isinstance(integrations, dict):
        return False
    for name in DESTINATION_NAMES:
        if name in integrations:
            return integrations[name] is False
    return integrations.get("All") is False


def route(sources: Mapping[str, ActionFile], event: Event, only: Collection[str] | None = None,
          plans: Mapping[str, SourcePlan] | None = None) -> list[RecordOp | Outcome]:
    """One RecordOp (or failed Outcome) per matching action; one skipped Outcome when none applies.
    `plans`: a source's plan to run in place of its whole one (mapgen.key_plan).

    A source only ever reaches its own actions: the event's source name selects the file. An event without
    the Segment spec's shape (ingest refuses those, but the log may hold older ones, or Kafka producers may
    skip ingest) fails with INVALID_EVENT; so does one that breaks routing or mapping: that one event, never
    its batch or the stream."""
    if not event.checked:  # the Kafka reader checked it as it normalised it: once per event is enough
        invalid = problem(event.body)
        if invalid is not None:
            return [Outcome.failed(event, "INVALID_EVENT", f"not a valid Segment event: {invalid}", (invalid.field,))]
    try:
        return _route(sources, event, only, plans)
    except Exception as exc:  # the event boundary: a bug met by one event must not stop the stream
        log.exception("routing event %s of source %s failed", event.message_id, event.source)
        return [mapping_failed(event, exc)]


def mapping_failed(event: Event, exc: Exception, action: str | None = None) -> Outcome:
    """The outcome of an event (for one action, when given) whose routing or mapping raised: a bug one event
    meets fails that event, never the stream or its batch."""
    return Outcome.failed(event, "INVALID_EVENT", f"routing or mapping failed: {type(exc).__name__}", action=action)


def _route(sources: Mapping[str, ActionFile], event: Event, only: Collection[str] | None,
           plans: Mapping[str, SourcePlan] | None) -> list[RecordOp | Outcome]:
    source = sources.get(event.source)
    if source is None:
        return [Outcome.failed(event, "UNKNOWN_SOURCE", f"no action file for source {event.source!r}")]
    if opted_out(event):
        return [Outcome.skipped(event, "integrations opt-out: Salesforce is disabled for this event")]
    plan = plans.get(event.source) if plans is not None else None
    results = (plan or plan_of(source)).run(event, only)  # each action compiled once into a function (mapgen.py)
    if not results:
        return [Outcome.skipped(event, f"no action of source {source.source} matches this {event.type or 'event'}")]
    return results
