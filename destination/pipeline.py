"""The pipeline after the event log: route → map → batch → plan/write → outcome, then `done` per event so
the consumer can acknowledge (commit) only what has its outcomes recorded."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from .actions.model import ActionFile
from .batcher import Batcher
from .config import BatchingConfig
from .deliver import Delivery
from .events import Event
from .metrics import Metrics
from .operations import RecordOp
from .outcomes import Outcome, Status
from .redaction import stored_outcomes
from .route import route
from .synclog.base import SyncLog

log = logging.getLogger("destination.pipeline")


@dataclass
class _Ticket:
    event: Event
    remaining: int
    done: Callable[[], None]
    received: float
    outcomes: list[Outcome] = field(default_factory=list)


class Pipeline:
    """Events in, one outcome per event and action recorded, `done()` called when all are recorded."""

    def __init__(self, sources: Mapping[str, ActionFile], delivery: Delivery, sync_log: SyncLog, *,
                 batching: BatchingConfig | None = None, metrics: Metrics | None = None) -> None:
        batching = batching or BatchingConfig()
        self.sources = sources
        self.delivery = delivery
        self.sync_log = sync_log
        self.metrics = metrics or Metrics()
        delivery.metrics = self.metrics
        self.batcher = Batcher(self._deliver, rest_size=batching.rest_size, bulk_size=batching.bulk_size,
                               linger_ms=batching.linger_ms, max_pending=batching.max_pending)
        self._tickets: dict[int, _Ticket] = {}

    async def submit(self, event: Event, done: Callable[[], None] = lambda: None, *,
                     only: Collection[str] | None = None) -> None:
        """Route and map an event (to the actions in `only`, when given: a replay of failed actions);
        operations go to the batcher (may wait: backpressure)."""
        self.metrics.event_in(event.source)
        results = route(self.sources, event, only)
        ops = [r for r in results if isinstance(r, RecordOp)]
        immediate = [r for r in results if isinstance(r, Outcome)]
        ticket = _Ticket(event, len(ops), done, time.monotonic(), list(immediate))
        if not ops:
            await self._finish([ticket])
            return
        self._tickets[id(event)] = ticket
        for op in ops:
            await self.batcher.add(op)

    async def _deliver(self, batch: list[RecordOp]) -> None:
        outcomes = await self.delivery.deliver(batch)
        finished = []
        for outcome in outcomes:
            ticket = self._tickets.get(id(outcome.event))
            if ticket is None:
                log.error("outcome for an unknown event %s", outcome.event.message_id)
                continue
            ticket.outcomes.append(outcome)
            ticket.remaining -= 1
            if ticket.remaining == 0:
                finished.append(self._tickets.pop(id(outcome.event)))
        if finished:
            await self._finish(finished)
        self.metrics.pending.set(self.batcher.pending)
        self.metrics.paused.set(1 if self.delivery.budget.paused else 0)

    async def _finish(self, tickets: list[_Ticket]) -> None:
        """Record the outcomes of finished events in one sync-log transaction, dead-letter the failed ones,
        then acknowledge each event (never before its outcomes are stored)."""
        stored = [stored_outcomes(self.sources, t.event, t.outcomes) for t in tickets]  # redact:/hash: applied
        await self.sync_log.record([o for _, outcomes in stored for o in outcomes])
        now = time.monotonic()
        for ticket, (event, outcomes) in zip(tickets, stored, strict=True):
            for outcome in outcomes:
                self.metrics.outcome(outcome)
                if outcome.status is Status.FAILED:
                    await self.sync_log.dead_letter(event.source, f"{outcome.action}: {outcome.message}",
                                                    json.dumps(event.body), error_code=outcome.error_code)
            self.metrics.latency.observe(now - ticket.received)
            ticket.done()

    async def drain(self) -> None:
        """Write everything pending and record its outcomes."""
        await self.batcher.drain()
