"""The pipeline after the event log: route → map → batch → plan/write → outcome, then `done` per event so
the consumer can acknowledge (commit) only what has its outcomes recorded."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

import orjson

from .actions.codegen import maker
from .actions.model import ActionFile
from .batcher import Batcher
from .config import BatchingConfig
from .deliver import Delivery
from .events import Event
from .health import Health
from .metrics import Metrics
from .operations import RecordOp
from .outcomes import Outcome, Status
from .redaction import kept_as_is, stored_outcomes
from .route import route
from .synclog.base import StoredEvent, SyncLog, event_email, stored_text

log = logging.getLogger("destination.pipeline")


#: what a pending operation keeps of its event's body: its identity and time (deliver, plan and write read
#: nothing else of it; the whole event is read back from `_Ticket.packed` for its outcome rows)
_KEPT = ("messageId", "timestamp", "originalTimestamp")
#: StoredEvent(source, body, checked, packed, email), slot by slot: a frozen dataclass's __init__ sets each
#: field through object.__setattr__, three times the cost, once per event
_stored_event = maker(StoredEvent)


@dataclass(slots=True)
class _Ticket:
    """An event whose operations are pending. Its ops carry a stand-in event (source, messageId, event
    time), not the event: the event itself waits as its JSON bytes, a fraction of the decoded form. A
    StoredEvent stand-in carries them to the sync log as they are; any other event is decoded again once
    for its outcome rows and dead letters (redact:/hash: rules, a writeKey to drop)."""

    event: Event  # the stand-in its ops and outcomes carry (or the event itself, when it could not be packed)
    packed: bytes | None  # the event's body as JSON
    remaining: int  # operations (one per action) whose outcomes have not come back yet
    done: Callable[[], None]
    received: float
    outcomes: list[Outcome]

    def whole(self) -> Event:
        """The event as it arrived."""
        return self.event if self.packed is None else Event(self.event.source, orjson.loads(self.packed))


def _packed(source: ActionFile | None, event: Event) -> tuple[Event, bytes | None]:
    """A stand-in for the event while its operations wait, and its body as JSON bytes (None, and the event
    itself, for a body JSON cannot hold as it is: that one stays as it is)."""
    body = event.body
    try:
        packed = bytes(memoryview(orjson.dumps(body)))  # a copy of its size: orjson's own buffer is 4 KB
    except (TypeError, orjson.JSONEncodeError):
        return event, None
    kept = {key: body[key] for key in _KEPT if key in body}
    if kept_as_is(source, body):
        # stored as it is: the stand-in takes its JSON to the sync log, never decoded again; what its row
        # needs besides (the email) is read now, while the event is at hand
        return _stored_event(event.source, kept, False, packed, event_email(body)), packed
    return Event(event.source, kept), packed


class Pipeline:
    """Events in, outcomes recorded per event, action (and record, under `on_many_matches: all`), `done()`
    called when every action of the event has all its outcomes recorded."""

    def __init__(self, sources: Mapping[str, ActionFile], delivery: Delivery, sync_log: SyncLog, *,
                 batching: BatchingConfig | None = None, metrics: Metrics | None = None) -> None:
        batching = batching or BatchingConfig()
        self.sources = sources
        self.delivery = delivery
        self.sync_log = sync_log
        self.metrics = metrics or Metrics()
        delivery.metrics = self.metrics
        self.batcher = Batcher(self._deliver, rest_size=batching.rest_size, bulk_size=batching.bulk_size,
                               linger_ms=batching.linger_ms, max_pending=batching.max_pending,
                               window_ms=batching.window_ms)
        self._tickets: dict[int, _Ticket] = {}
        self.record_backoff = (0.5, 10.0)  # seconds: first wait, and the cap, between attempts to record
        self.record_log_interval = 30.0  # a sync log that keeps failing is logged once per interval
        self._stop_waiting = False
        # sync-log writes are retried until they succeed: a failure counts until then (no staleness bound)
        self.recording = Health(hold_seconds=math.inf)

    async def submit(self, event: Event, done: Callable[[], None] = lambda: None, *,
                     only: Collection[str] | None = None) -> None:
        """Route and map an event (to the actions in `only`, when given: a replay of failed actions);
        operations go to the batcher (may wait: backpressure, or a sync log that cannot record)."""
        self.metrics.consumed(event.source)
        results = route(self.sources, event, only)
        ops = [r for r in results if isinstance(r, RecordOp)]
        immediate = [r for r in results if isinstance(r, Outcome)] if len(ops) < len(results) else []
        if not ops:
            await self._finish([_Ticket(event, None, 0, done, time.monotonic(), immediate)])
            return
        held, packed = _packed(self.sources.get(event.source), event)
        for result in results:
            result.event = held  # the pending ops (and a failed action's outcome) let go of the event
        self._tickets[id(held)] = _Ticket(held, packed, len(ops), done, time.monotonic(), immediate)
        for op in ops:
            await self.batcher.add(op)

    async def _deliver(self, batch: list[RecordOp]) -> None:
        """One batch, an error boundary: every operation in it comes out with its outcomes."""
        try:
            outcomes = await self.delivery.deliver(batch)
        except Exception as exc:  # Delivery decides what it can; a bug one event meets there lands here
            log.exception("delivering a batch of %d %s operations failed; delivering them one by one",
                          len(batch), batch[0].object)
            self.metrics.batch_error(batch[0].object, type(exc).__name__)
            outcomes = [o for op in batch for o in await self._deliver_alone(op)]
        finished = self._collect(batch, outcomes)
        if finished:
            await self._finish(finished)
        self.metrics.pending.set(self.batcher.pending - len(batch))  # this batch leaves the batcher next
        self.metrics.paused.set(1 if self.delivery.budget.paused else 0)

    def _collect(self, batch: list[RecordOp], outcomes: list[Outcome]) -> list[_Ticket]:
        """Give each operation of the batch its outcomes (one or more); the tickets now complete."""
        by_op: dict[tuple[int, str], list[Outcome]] = {}
        for outcome in outcomes:
            key = id(outcome.event), outcome.action or ""  # fate_key's, inline: once per outcome and op
            mine = by_op.get(key)
            if mine is None:
                by_op[key] = [outcome]
            else:
                mine.append(outcome)
        tickets = self._tickets
        finished = []
        for op in batch:
            mine = by_op.pop((id(op.event), op.action or ""), None)
            if not mine:
                log.error("no outcome came back for event %s, action %s: failed as INTERNAL_ERROR",
                          op.event.message_id, op.action)
                mine = [_internal_error(op, "delivery returned no outcome for this action")]
            ticket = tickets.get(id(op.event))
            if ticket is None:
                log.error("outcome for an unknown event %s", op.event.message_id)
                continue
            if ticket.outcomes:
                ticket.outcomes.extend(mine)
            else:  # the first (usually the only) operation back: its list is the ticket's
                ticket.outcomes = mine
            ticket.remaining -= 1
            if not ticket.remaining:
                del tickets[id(op.event)]
                finished.append(ticket)
        for extra in by_op.values():
            log.error("outcome for an operation not in its batch: event %s, action %s", extra[0].event.message_id,
                      extra[0].action)
        return finished

    async def _deliver_alone(self, op: RecordOp) -> list[Outcome]:
        """One operation on its own: its outcomes, or INTERNAL_ERROR when it alone still breaks delivery
        (its neighbours are delivered; `destination replay --error-code INTERNAL_ERROR` re-drives it)."""
        try:
            return await self.delivery.deliver([op])
        except Exception as exc:
            log.exception("delivering event %s (action %s) failed", op.event.message_id, op.action)
            return [_internal_error(op, f"delivery failed: {type(exc).__name__}: {exc}"[:500])]

    async def _finish(self, tickets: list[_Ticket]) -> None:
        """Record the outcomes of finished events in one sync-log transaction, dead-letter the failed ones,
        then acknowledge each event (never before its outcomes are stored)."""
        stored = [_stored(self.sources, t) for t in tickets]  # redact:/hash: applied
        outcomes = [o for _, kept in stored for o in kept]
        await self.until_stored("record outcomes", lambda: self.sync_log.record(outcomes))
        now = time.monotonic()
        self.metrics.count_outcomes(outcomes)  # counted per batch: one increment per label set
        self.metrics.observe_latencies([now - ticket.received for ticket in tickets])
        if not any(outcome.status is Status.FAILED for outcome in outcomes):  # most batches: nothing to dead-letter
            for ticket in tickets:
                ticket.done()
            return
        for ticket, (event, kept) in zip(tickets, stored, strict=True):
            dead: set[str | None] = set()  # one dead letter per failed action (`all` may fail several records)
            for outcome in kept:
                if outcome.status is Status.FAILED and outcome.action not in dead:
                    dead.add(outcome.action)
                    await self.until_stored("dead-letter a failed event", functools.partial(
                        self.sync_log.dead_letter, event.source, f"{outcome.action}: {outcome.message}",
                        stored_text(event), error_code=outcome.error_code))
            ticket.done()

    async def until_stored(self, what: str, write: Callable[[], Awaitable[object]]) -> None:
        """Run a sync-log write until it succeeds. A sync log that cannot write (full disk, database down)
        is waited out: nothing is acknowledged before it is stored, the process keeps running, and it carries
        on by itself once the store recovers. Each failed attempt is counted; the log says so once per
        `record_log_interval`, and again when it recovers."""
        delay, cap = self.record_backoff
        since: float | None = None
        logged = -float("inf")
        while True:
            try:
                await write()
            except Exception as exc:  # any store failure: sqlite3, asyncpg, OSError, ...
                self.metrics.sync_log_failure(type(exc).__name__)
                self.recording.failure(f"the sync log cannot {what}: {type(exc).__name__}: {exc}")
                if self._stop_waiting:
                    log.error("shutting down while the sync log cannot %s (%s: %s): those events stay "
                              "unacknowledged and are read again after the restart", what, type(exc).__name__, exc)
                    raise
                now = time.monotonic()
                since = now if since is None else since
                if now - logged >= self.record_log_interval:
                    log.error("the sync log cannot %s (%s: %s): waiting, nothing is acknowledged until it can",
                              what, type(exc).__name__, exc)
                    logged = now
                await asyncio.sleep(delay)
                delay = min(delay * 2, cap)
                continue
            self.recording.success()
            if since is not None:
                log.warning("the sync log recovered after %.1f s: %s done", time.monotonic() - since, what)
            return

    def stop_waiting(self) -> None:
        """At shutdown: a sync log that cannot write is no longer waited for. The write raises instead, its
        events are not acknowledged, and the next start reads them again (an outage never blocks a stop)."""
        self._stop_waiting = True

    async def drain(self) -> None:
        """Write everything pending and record its outcomes."""
        await self.batcher.drain()
        self.metrics.pending.set(self.batcher.pending)


def _stored(sources: Mapping[str, ActionFile], ticket: _Ticket) -> tuple[Event, list[Outcome]]:
    """The ticket's event as the sync log and dead letters keep it (redact:/hash: applied, no writeKey), and
    its outcomes carrying it (in place of the stand-in). A StoredEvent stand-in is that already; any other
    event is decoded whole, then redacted."""
    if isinstance(ticket.event, StoredEvent):
        return ticket.event, ticket.outcomes
    event = ticket.whole()
    if event is not ticket.event:
        for outcome in ticket.outcomes:
            if outcome.event is ticket.event:
                outcome.event = event
    return stored_outcomes(sources, event, ticket.outcomes)


def _internal_error(op: RecordOp, message: str) -> Outcome:
    return Outcome.failed(op.event, "INTERNAL_ERROR", message, action=op.action, object=op.object,
                          operation=op.operation.value)
