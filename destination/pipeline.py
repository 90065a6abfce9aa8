"""The pipeline after the event log: route → map → batch → plan/write → outcome, then `done` per event so
the consumer can acknowledge (commit) only what has its outcomes recorded."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .actions.codegen import maker
from .actions.model import ActionFile
from .batcher import Batcher
from .config import BatchingConfig
from .deliver import Delivery
from .events import Event
from .health import Health
from .kinds import Mode
from .mapgen import key_plan, plan_of
from .metrics import Metrics
from .operations import RecordOp
from .outcomes import Outcome, Status
from .redaction import kept_as_is, stored_outcomes
from .route import mapping_failed, route
from .synclog.base import StoredEvent, SyncLog, event_email, stored_text

log = logging.getLogger("destination.pipeline")


#: what a pending operation keeps of its event's body: its identity and time (deliver, plan and write read
#: nothing else of it; the whole event is read back from `_Ticket.packed` for its outcome rows)
_KEPT = ("messageId", "timestamp", "originalTimestamp")
#: StoredEvent(source, body, checked, packed, email), slot by slot: a frozen dataclass's __init__ sets each
#: field through object.__setattr__, three times the cost, once per event
_stored_event = maker(StoredEvent)
_event = maker(Event)  # Event(source, body, checked), slot by slot


@dataclass(slots=True)
class _Ticket:
    """An event whose operations are pending. Its ops carry a stand-in event (source, messageId, event
    time), not the event: the event itself waits as its JSON bytes, a fraction of the decoded form. A
    StoredEvent stand-in carries them to the sync log as they are; any other event is decoded again once
    for its outcome rows and dead letters (redact:/hash: rules, a writeKey to drop).

    Packed (see Pipeline.submit): the batcher holds no op of the event, only this ticket (one action) or a
    _Packed per action; the op is mapped again from `packed` when its batch is written, and the stand-in is
    made then (`event` is None until the first of them is)."""

    event: Event | None  # the stand-in its ops and outcomes carry (or the event itself, when it could not be packed)
    packed: bytes | None  # the event's body as JSON
    remaining: int  # operations (one per action) whose outcomes have not come back yet
    done: Callable[..., None]  # called with `args` (kept apart: a partial per pending event costs ~200 bytes)
    args: tuple[Any, ...]
    received: float
    outcomes: list[Outcome] | None  # None until the first come back (most tickets wait with none)
    source: str
    action: str | None = None  # a packed ticket of one action: the action the batcher holds it for

    def whole(self) -> Event:
        """The event as it arrived."""
        assert self.event is not None, "a ticket's outcomes come back after its stand-in is made"
        return self.event if self.packed is None else Event(self.event.source, orjson.loads(self.packed))


@dataclass(slots=True)
class _Packed:
    """One action's pending operation of a packed event of several actions: mapped again when written."""

    ticket: _Ticket
    action: str


def _stand_in(source: ActionFile | None, name: str, body: dict[str, Any], packed: bytes) -> Event:
    """The stand-in an event's ops and outcomes carry while they are pending: its identity and time (deliver,
    plan and write read nothing else of it); a StoredEvent when the sync log keeps the event as it is (it
    takes the JSON there as it is, never decoded again: what its row needs besides, the email, is read now)."""
    kept = {key: body[key] for key in _KEPT if key in body}
    if kept_as_is(source, body):
        return _stored_event(name, kept, False, packed, event_email(body))
    return _event(name, kept, False)


def _packed(event: Event) -> bytes | None:
    """The event's body as JSON bytes; None for a body JSON cannot hold as it is (that event stays as it is)."""
    try:
        return bytes(memoryview(orjson.dumps(event.body)))  # a copy of its size: orjson's own buffer is 4 KB
    except (TypeError, orjson.JSONEncodeError):
        return None


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
        self._tickets: dict[int, _Ticket] = {}  # by id() of their stand-in event
        # Actions whose pending ops are packed: REST ones that neither look up a parent nor write an object
        # some action looks up (parents first reads those while they wait). Mapped at submit only as far as
        # batching reads (key plans), then whole from the event's JSON when written (the mappers). Bulk ops
        # wait whole: a Bulk batch (up to 1,000 records) would be mapped again all at once, and on the Bulk
        # benchmark that cost 17% more CPU per event, most of it the collector walking the new ops.
        parents = {lookup.object.lower() for source in sources.values() for action in source.actions
                   for lookup in action.lookups.values()}
        self._packable = {name: frozenset(a.name for a in source.actions if not a.lookups
                                          and a.object.lower() not in parents and a.mode is not Mode.BULK)
                          for name, source in sources.items()}
        self._key_plans = {name: key_plan(source, self._packable[name]) for name, source in sources.items()}
        self._mappers = {name: {action: mapper for action, _, mapper in plan_of(source).actions}
                         for name, source in sources.items()}
        self.record_backoff = (0.5, 10.0)  # seconds: first wait, and the cap, between attempts to record
        self.record_log_interval = 30.0  # a sync log that keeps failing is logged once per interval
        self._stop_waiting = False
        # sync-log writes are retried until they succeed: a failure counts until then (no staleness bound)
        self.recording = Health(hold_seconds=math.inf)

    async def submit(self, event: Event, done: Callable[..., None] = lambda: None, *,
                     only: Collection[str] | None = None, done_args: tuple[Any, ...] = ()) -> None:
        """Route and map an event (to the actions in `only`, when given: a replay of failed actions);
        operations go to the batcher (may wait: backpressure, or a sync log that cannot record).
        `done(*done_args)` is called once all its outcomes are stored."""
        self.metrics.consumed(event.source)
        received = time.monotonic()
        packable = self._packable.get(event.source)
        results = route(self.sources, event, only, self._key_plans)
        ops = [r for r in results if isinstance(r, RecordOp)]
        if packable and ops and len(ops) == len(results) and all(op.action in packable for op in ops):
            packed = _packed(event)
            if packed is not None:
                # the batcher holds the ticket (or a _Packed per action), not these ops (made as far as
                # batching reads), and the op is mapped whole from `packed` when its batch is written
                ticket = _Ticket(None, packed, len(ops), done, done_args, received, None, event.source)
                if len(ops) == 1:
                    ticket.action = ops[0].action
                    await self.batcher.add(ops[0], ticket)
                    return
                for op in ops:
                    await self.batcher.add(op, _Packed(ticket, op.action))
                return
        if packable and any(op.action in packable for op in ops):  # the event is not packed: its ops whole
            results = route(self.sources, event, only)
            ops = [r for r in results if isinstance(r, RecordOp)]
        immediate = [r for r in results if isinstance(r, Outcome)] if len(ops) < len(results) else []
        if not ops:
            await self._finish([_Ticket(event, None, 0, done, done_args, received, immediate, event.source)])
            return
        packed = _packed(event)
        held = (_stand_in(self.sources.get(event.source), event.source, event.body, packed) if packed is not None
                else event)
        for result in results:
            result.event = held  # the pending ops (and a failed action's outcome) let go of the event
        self._tickets[id(held)] = _Ticket(held, packed, len(ops), done, done_args, received, immediate or None,
                                          event.source)
        for op in ops:
            await self.batcher.add(op)

    async def _deliver(self, batch: list[Any]) -> None:
        """One batch, an error boundary: every operation in it comes out with its outcomes."""
        ops, entries = self._expand(batch)
        try:
            outcomes = await self.delivery.deliver(ops) if ops else []
        except Exception as exc:  # Delivery decides what it can; a bug one event meets there lands here
            log.exception("delivering a batch of %d %s operations failed; delivering them one by one",
                          len(ops), ops[0].object)
            self.metrics.batch_error(ops[0].object, type(exc).__name__)
            outcomes = [o for op in ops for o in await self._deliver_alone(op)]
        if len(entries) != len(ops):  # a packed op whose whole mapping failed (a field the key plan never read)
            outcomes += [entry for entry in entries if isinstance(entry, Outcome)]
        finished = self._collect(entries, outcomes)
        if finished:
            await self._finish(finished)
        self.metrics.pending.set(self.batcher.pending - len(batch))  # this batch leaves the batcher next
        self.metrics.paused.set(1 if self.delivery.budget.paused else 0)

    def _expand(self, batch: list[Any]) -> tuple[list[RecordOp], list[RecordOp | Outcome]]:
        """The batch's operations, packed ones mapped again from their event (their stand-ins made, the first
        time, and their tickets filed under them); and per entry of the batch its op, or its failed outcome
        when whole mapping fails it (a field submit's key plan did not read, or a bug)."""
        if all(type(item) is RecordOp for item in batch):
            return batch, batch
        ops: list[RecordOp] = []
        entries: list[RecordOp | Outcome] = []
        for item in batch:
            if type(item) is RecordOp:
                made: RecordOp | Outcome = item
            elif type(item) is _Ticket:
                made = self._remap(item, item.action or "")
            else:
                made = self._remap(item.ticket, item.action)
            entries.append(made)
            if type(made) is RecordOp:
                ops.append(made)
        return ops, entries

    def _remap(self, ticket: _Ticket, action: str) -> RecordOp | Outcome:
        """A packed event's op for `action`, mapped whole from its JSON (what mapping makes of it at submit:
        a pure function of the event), carrying the ticket's stand-in (made by the first of its ops to be
        written). The decoded body is let go of once mapped: only the stand-in's few keys stay."""
        assert ticket.packed is not None, "only an event with its JSON is packed"
        body = orjson.loads(ticket.packed)
        event = ticket.event
        if event is None:
            event = ticket.event = _stand_in(self.sources.get(ticket.source), ticket.source, body, ticket.packed)
            self._tickets[id(event)] = ticket
        try:
            return self._mappers[ticket.source][action](event, body)
        except Exception as exc:  # route's boundary, for this one action: a bug fails the event, not the batch
            log.exception("mapping event %s for action %s failed", event.message_id, action)
            return mapping_failed(event, exc, action)

    def _collect(self, batch: Sequence[RecordOp | Outcome], outcomes: list[Outcome]) -> list[_Ticket]:
        """Give each operation of the batch its outcomes (one or more); the tickets now complete. An entry that
        is an outcome (a packed op whose whole mapping failed) is that op's outcome, among `outcomes`."""
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
                ticket.done(*ticket.args)
            return
        for ticket, (event, kept) in zip(tickets, stored, strict=True):
            dead: set[str | None] = set()  # one dead letter per failed action (`all` may fail several records)
            for outcome in kept:
                if outcome.status is Status.FAILED and outcome.action not in dead:
                    dead.add(outcome.action)
                    await self.until_stored("dead-letter a failed event", functools.partial(
                        self.sync_log.dead_letter, event.source, f"{outcome.action}: {outcome.message}",
                        stored_text(event), error_code=outcome.error_code))
            ticket.done(*ticket.args)

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
    outcomes = ticket.outcomes or []
    if isinstance(ticket.event, StoredEvent):
        return ticket.event, outcomes
    event = ticket.whole()
    if event is not ticket.event:
        for outcome in outcomes:
            if outcome.event is ticket.event:
                outcome.event = event
    return stored_outcomes(sources, event, outcomes)


def _internal_error(op: RecordOp | Outcome, message: str) -> Outcome:
    return Outcome.failed(op.event, "INTERNAL_ERROR", message, action=op.action, object=op.object,
                          operation=op.operation.value if isinstance(op, RecordOp) else op.operation)
