"""The change feed's loop: for every (source, object) under `sync_back`, every interval: read the changes
since the watermark minus the overlap, drop repeats (by Id and SystemModstamp) and echoes of our own writes,
publish the rest, then — only after the publish was acknowledged — record their outcomes and advance the
watermark in the sync log (one transaction). A failed poll keeps the watermark and notes the error; the
next interval tries again. Polls wait while the connection's API usage is over the budget's ceiling (the
budget delivery uses)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ..actions.model import ActionFile
from ..actions.sync_back_model import SyncBack, SyncObject
from ..budget import Budget
from ..eventlog.base import LogUnavailable
from ..events import Event
from ..outcomes import Outcome
from ..salesforce.client import SalesforceClient
from ..salesforce.errors import SalesforceApiError
from ..synclog.base import InFlight, SyncBackProgress, SyncLog
from .changes import (
    Change,
    changed_fields,
    delete_event,
    parse_modstamp,
    snapshot,
    update_event,
    values_of,
    wire,
)
from .echo import ECHO, held_delete, held_update, is_echo, is_own_delete
from .poll import changed_records, deleted_records
from .publish import FanOut

log = logging.getLogger("destination.sync_back")
ACTION = "sync_back"  # the sync log's action name for this direction's rows
CHUNK = 200  # records published and checkpointed together


def deleted_key(obj: str) -> str:
    """The state row of an object's delete feed (its own watermark: latestDateCovered)."""
    return f"{obj}:deleted"


@dataclass
class PollResult:
    published: int = 0
    echoes: int = 0
    repeats: int = 0
    unchanged: int = 0
    deleted: int = 0
    held: int = 0  # may be our own write, still being recorded: judged again by the next poll
    errors: list[str] = field(default_factory=list)
    held_from: str | None = None  # the oldest held change's SystemModstamp: the watermark stops there


class SyncBackRunner:
    """Polls every synced object of every source; `poll_once` is one round of one object (tests call it)."""

    def __init__(self, sources: dict[str, ActionFile], clients: dict[str, SalesforceClient], sync_log: SyncLog,
                 publishers: dict[str, FanOut], *, budget: Budget | None = None, metrics: Any = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.sources = {n: s for n, s in sources.items() if s.sync_back is not None}
        self.clients = clients
        self.sync_log = sync_log
        self.publishers = publishers
        self.budget = budget or Budget()
        self.now = now
        self.metrics = metrics  # outcomes counted as delivery's are (destination_outcomes_total)
        self.polls = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Poll every object every interval until `stop()`."""
        loops = [self._loop(source, spec) for source in self.sources.values() for spec in _objects(source)]
        await asyncio.gather(*loops)

    def stop(self) -> None:
        self._stop.set()

    async def _loop(self, source: ActionFile, spec: SyncObject) -> None:
        config = _config(source)
        while not self._stop.is_set():
            try:
                await self.poll_once(source.source, spec.object)
            except Exception as exc:  # a bug must not end the feed: note it, try again next interval
                log.error("sync-back poll of %s/%s failed: %r", source.source, spec.object, exc, exc_info=exc)
                await self._note_error(source.source, spec.object, f"{type(exc).__name__}: {exc}")
            try:
                await asyncio.wait_for(self._stop.wait(), config.interval_seconds)
            except TimeoutError:
                pass

    async def poll_once(self, source_name: str, obj: str) -> PollResult:
        """One round for one object: updates, then deletes."""
        source = self.sources[source_name]
        config = _config(source)
        spec = next(o for o in config.objects if o.object.lower() == obj.lower())
        client = self.clients[source.connection]
        result = PollResult()
        if self.budget.over(client):
            await self._note_error(source_name, spec.object, "API usage over the budget's ceiling: poll skipped")
            return result
        self.polls += 1
        states = {s.object: s for s in await self.sync_log.sync_back_states(source_name)}
        state = states.get(spec.object)
        started = self.now()
        try:
            if state is None or state.watermark is None:
                if config.start == "now":
                    await self._baseline(source_name, config, spec, client, started)
                    return result
                await self._updates(source_name, config, spec, client, None, result)
            else:
                since = parse_modstamp(state.watermark) - timedelta(seconds=config.overlap_seconds)
                await self._updates(source_name, config, spec, client, since, result)
            deleted_state = states.get(deleted_key(spec.object))
            deleted_since = (parse_modstamp(deleted_state.watermark) if deleted_state and deleted_state.watermark
                             else started - timedelta(days=1))
            await self._deletes(source_name, config, spec, client,
                                deleted_since - timedelta(seconds=config.overlap_seconds), started, result)
            await self.sync_log.save_sync_back(SyncBackProgress(source_name, spec.object, None))  # clean poll
        except (SalesforceApiError, OSError, LookupError, httpx.HTTPError, LogUnavailable) as exc:
            message = f"{type(exc).__name__}: {exc}"
            result.errors.append(message)
            log.warning("sync-back poll of %s/%s: %s (the watermark stays; next interval retries)",
                        source_name, spec.object, message)
            await self._note_error(source_name, spec.object, message)
        return result

    async def _baseline(self, source: str, config: SyncBack, spec: SyncObject, client: SalesforceClient,
                        started: datetime) -> None:
        """`start: now`: remember the records changed within the overlap as seen (not published), so the
        first real poll publishes only what changes from now on."""
        since = started - timedelta(seconds=config.overlap_seconds)
        seen = [(r["Id"], r["SystemModstamp"], snapshot(spec, r, values_of(spec, r)))
                async for r in changed_records(client, spec, since)]
        newest = max([wire(started), *(stamp for _, stamp, _ in seen)])
        for start in range(0, len(seen), CHUNK):
            await self.sync_log.save_sync_back(SyncBackProgress(source, spec.object, None, seen[start:start + CHUNK]))
        await self.sync_log.save_sync_back(SyncBackProgress(source, spec.object, newest))
        await self.sync_log.save_sync_back(SyncBackProgress(source, deleted_key(spec.object), wire(started)))
        log.info("sync-back %s/%s starts from now (%s)", source, spec.object, newest)

    async def _updates(self, source: str, config: SyncBack, spec: SyncObject, client: SalesforceClient,
                       since: datetime | None, result: PollResult) -> None:
        chunk: list[dict[str, Any]] = []
        async for record in changed_records(client, spec, since):
            chunk.append(record)
            if len(chunk) >= CHUNK:
                await self._publish_chunk(source, config, spec, client, chunk, result)
                chunk = []
                if since is None:
                    log.info("sync-back backfill of %s/%s: %d published so far", source, spec.object,
                             result.published)
        if chunk:
            await self._publish_chunk(source, config, spec, client, chunk, result)

    async def _publish_chunk(self, source: str, config: SyncBack, spec: SyncObject, client: SalesforceClient,
                             records: list[dict[str, Any]], result: PollResult) -> None:
        ids = [r["Id"] for r in records]
        seen = await self.sync_log.seen_records(source, spec.object, ids)
        in_flight = await self._in_flight(config, spec.object)  # before the written values: see _in_flight
        written = await self.sync_log.written_values(spec.object, ids)
        user = config.integration_user_id or await _user_id(client)
        skew = timedelta(seconds=config.overlap_seconds)
        events: list[Event] = []
        outcomes: list[Outcome] = []
        versions: list[tuple[str, str, dict[str, Any]]] = []
        echoes = 0
        for record in records:
            before = seen.get(record["Id"])
            if before is not None and before.modstamp >= record["SystemModstamp"]:
                result.repeats += 1  # inside the overlap: this version was handled already
                continue
            values = values_of(spec, record)
            change = Change(spec.object, record, before.values if before else None)
            changed = changed_fields(values, change.previous)
            version = (change.id, change.modstamp, snapshot(spec, record, values))
            if not changed:
                versions.append(version)
                result.unchanged += 1  # only fields this feed does not publish changed
                continue
            event = update_event(source, spec, change, values, changed)
            if is_echo(record, changed, written.get(change.id), user):
                versions.append(version)
                echoes += 1
                outcomes.append(Outcome.skipped(event, "our own write coming back (same values, integration user)",
                                                error_code=ECHO, action=ACTION, object=spec.object,
                                                operation="publish", record_id=change.id, fields=tuple(changed)))
                continue
            if held_update(record.get("LastModifiedById"), parse_modstamp(str(record["SystemModstamp"])), user,
                           in_flight, skew):
                # not published, its version not kept, the watermark not past it: the next poll judges it again
                result.held += 1
                result.held_from = min(filter(None, (result.held_from, change.modstamp)))
                continue
            versions.append(version)
            events.append(event)
            outcomes.append(Outcome.succeeded(event, record_id=change.id, created=False, action=ACTION,
                                              object=spec.object, operation="publish", fields=tuple(changed)))
        await self.publishers[source].publish(events)  # raises when not acknowledged: nothing below happens
        await self._record(outcomes)
        newest = max(r["SystemModstamp"] for r in records)
        if result.held_from is not None:  # records are read oldest first: an earlier chunk's hold counts too
            newest = min(newest, result.held_from)
        await self.sync_log.save_sync_back(SyncBackProgress(source, spec.object, newest, versions, len(events),
                                                            echoes))
        result.published += len(events)
        result.echoes += echoes

    async def _deletes(self, source: str, config: SyncBack, spec: SyncObject, client: SalesforceClient,
                       since: datetime, started: datetime, result: PollResult) -> None:
        found, covered = await deleted_records(client, spec.object, since, started)
        ids = [i for i, _ in found]
        seen = await self.sync_log.seen_records(source, spec.object, ids) if found else {}
        in_flight = await self._in_flight(config, spec.object) if found else []  # before the written values
        # our own deletes, noted under the 18- or (an app-given Id) 15-character Id
        written = await self.sync_log.written_values(spec.object, ids + [i[:15] for i in ids]) if found else {}
        skew = timedelta(seconds=config.overlap_seconds)
        events: list[Event] = []
        outcomes: list[Outcome] = []
        versions: list[tuple[str, str, dict[str, Any]]] = []
        echoes = 0
        held_from: str | None = None
        for record_id, deleted_date in found:
            before = seen.get(record_id)
            if before is not None and before.modstamp >= deleted_date:
                result.repeats += 1
                continue
            event = delete_event(source, spec, record_id, deleted_date, before.values if before else None)
            version = (record_id, deleted_date, before.values if before else {})
            if is_own_delete(written.get(record_id) or written.get(record_id[:15]), deleted_date, skew):
                versions.append(version)
                echoes += 1
                outcomes.append(Outcome.skipped(event, "our own delete coming back (the push direction deleted it)",
                                                error_code=ECHO, action=ACTION, object=spec.object,
                                                operation="delete", record_id=record_id))
                continue
            if held_delete(record_id, deleted_date, in_flight, skew):
                result.held += 1  # our delete of it is in flight: judged again by the next poll
                held_from = held_from or deleted_date  # `found` is oldest first
                continue
            versions.append(version)
            events.append(event)
            outcomes.append(Outcome.succeeded(event, record_id=record_id, created=False, action=ACTION,
                                              object=spec.object, operation="delete"))
        await self.publishers[source].publish(events)
        await self._record(outcomes)
        if versions:
            await self.sync_log.save_sync_back(SyncBackProgress(source, spec.object, None, versions, len(events),
                                                                echoes))
        if held_from is not None and (covered is None or parse_modstamp(held_from) < parse_modstamp(covered)):
            covered = held_from  # the next window starts (overlap_seconds) before the held delete
        await self.sync_log.save_sync_back(SyncBackProgress(source, deleted_key(spec.object), covered))
        result.deleted += len(events)
        result.echoes += echoes

    async def _in_flight(self, config: SyncBack, obj: str) -> list[InFlight]:
        """Delivery's notes of batches writing to this object now (younger than settle_seconds: an older one
        is a delivery that died mid-write). Read before the written values: delivery removes a note in the
        transaction that records what the batch wrote, so a note gone by now means those values are visible
        to the read that follows, and a change read from Salesforce earlier is either recognised or held."""
        oldest = self.now() - timedelta(seconds=config.settle_seconds)
        return [note for note in await self.sync_log.writes_in_flight(obj) if note.since >= oldest]

    async def _record(self, outcomes: list[Outcome]) -> None:
        await self.sync_log.record(outcomes)
        if self.metrics is not None:
            for outcome in outcomes:
                self.metrics.outcome(outcome)

    async def _note_error(self, source: str, obj: str, message: str) -> None:
        try:
            await self.sync_log.save_sync_back(SyncBackProgress(source, obj, None, error=message[:500]))
        except Exception as exc:  # the sync log itself is down: the log line is all we can leave
            log.error("sync-back could not record its error for %s/%s: %r", source, obj, exc)


def _config(source: ActionFile) -> SyncBack:
    assert source.sync_back is not None
    return source.sync_back


def _objects(source: ActionFile) -> Sequence[SyncObject]:
    return _config(source).objects


async def _user_id(client: SalesforceClient) -> str | None:
    """The connection's own user (from its token's identity URL): changes it made may be our echoes."""
    token = await client.tokens.token()
    return token.user_id
