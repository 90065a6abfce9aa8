"""Assemble a running destination from settings: event log, sync log, Salesforce clients (or the bundled
emulator), delivery pipeline, consumer, and the HTTP app (ingest, sync-log API, metrics, health) behind the
access guard (write keys for ingest, operator tokens for the rest: destination/access.py)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .access import AccessGuard, OperatorTokens, Policy, Sessions, TokenProblem, allowed_host_names
from .actions.loader import load_dir
from .actions.model import ActionFile
from .budget import Budget
from .config import ConnectionConfig, EventLogKind, OperatorTokenConfig, Scope, Settings
from .consume import Consumer
from .deliver import Delivery
from .eventlog.base import EventLog, LogConsumer
from .eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from .events import Event
from .ingest.app import Ingest, IngestFastPath
from .ingest.body import BodyLimit
from .ingest.keys import WriteKeys
from .ingest.outbound import PATH as OUTBOUND_PATH
from .metrics import Metrics
from .outcomes import Status
from .pipeline import Pipeline
from .readiness import Readiness, readiness, watching_tokens
from .salesforce.client import SalesforceClient
from .synclog import open_sync_log
from .synclog.base import SyncLog, SyncLogRow
from .synclog.filters import MAX_OFFSET, MAX_PAGE_SIZE, BadFilter, filter_from
from .web.docs import serve_docs

T = TypeVar("T")
log = logging.getLogger("destination")


def start_bundled_emulator(settings: Settings) -> tuple[Any, ConnectionConfig]:
    """The embedded demo's Salesforce: the emulator over HTTPS on a local port, with its own CA."""
    try:
        from salesforce_emulator.server import serve_in_thread
        from salesforce_emulator.state import build_state
    except ImportError as exc:  # installed without the [emulator] extra
        raise SystemExit(f"no Salesforce connection is configured and the bundled emulator is not installed "
                         f"({exc.name} is missing): configure `connections` in destination.yaml, or install "
                         f"'salesforce-event-destination[emulator]' for the embedded demo") from None

    emu = settings.emulator
    state = build_state(db_path=emu.db)
    running = serve_in_thread(state, port=emu.port, tls_dir=emu.tls_dir)
    connection = ConnectionConfig(login_url=running.url,
                                  auth={"method": "client_credentials", "client_id": "emulator-client",
                                        "client_secret": "emulator-secret"},
                                  ca_bundle=running.ca_pem, allowed_hosts=["127.0.0.1"])
    return running, connection


async def bad_filter(request: Request, exc: BadFilter) -> Response:
    """A sync-log query parameter that cannot be used: 422 naming it (the page gets it as text)."""
    if request.url.path.startswith("/v1/"):
        return JSONResponse({"code": "invalid_filter", "message": str(exc)}, status_code=422)
    return PlainTextResponse(f"Invalid filter: {exc}", status_code=422)


@dataclass
class Service:
    settings: Settings
    sources: dict[str, ActionFile]
    event_log: EventLog
    sync_log: SyncLog
    metrics: Metrics
    clients: dict[str, SalesforceClient] = field(default_factory=dict)
    pipeline: Pipeline | None = None
    consumer: Consumer | None = None
    emulator: Any = None
    outbound: Any = None
    tokens: OperatorTokens = field(default_factory=OperatorTokens)
    sessions: Sessions | None = None
    bind_host: str | None = None  # the address the main listener binds (a name the Host header may carry)
    serves_ingest: bool = True  # False for `run --consumer-only`: its event log takes no appends, /readyz skips it
    sync_back: Any = None  # the change feed (destination/sync_back/runner.py) when a source has `sync_back`

    def app(self, *, ingest: bool = True, operator: bool = True) -> FastAPI:
        """The HTTP app behind the access guard: Segment ingest and Outbound Messages (write keys, outbound
        secrets) and the operator endpoints — /v1/sync-log, the page, /v1/preview, /metrics, /docs
        (operator tokens); /healthz and /readyz are open. `ingest=False` or `operator=False` leaves one
        side out (a separate operator listener; `--ingest-only`)."""
        app = FastAPI(title="Salesforce event destination", docs_url=None, redoc_url=None,
                      openapi_url="/openapi.json" if operator else None)
        if operator:
            serve_docs(app)  # Swagger UI from packaged files, not a CDN
        app.add_exception_handler(BadFilter, bad_filter)  # type: ignore[arg-type]
        segment = Ingest(WriteKeys(self.sources), self.event_log, limits=self.settings.ingest,
                         metrics=self.metrics) if ingest else None
        if segment is not None:  # the innermost middleware (added first): inside the body limit and access guard
            app.add_middleware(IngestFastPath, ingest=segment)
        app.add_middleware(BodyLimit, max_bytes=self.settings.ingest.max_body_bytes)
        if self.sessions is None:
            self.sessions = Sessions(self.tokens)
        ingest_paths: set[str] = set()
        if segment is not None:
            from .ingest.outbound import Outbound, OutboundAccess

            ingest_router = segment.router
            app.include_router(ingest_router)
            ingest_paths = {route.path for route in ingest_router.routes}  # type: ignore[attr-defined]
            self.outbound = Outbound(OutboundAccess(self.sources), self.event_log, self.sync_log,
                                     metrics=self.metrics, own_users=self._own_users)
            app.include_router(self.outbound.router)
        if operator:
            self._operator_routes(app)

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz")
        async def readyz() -> JSONResponse:
            """200 `{"ready": true, "checks": {...}}` when every part this process runs can work now; 503 with
            the failing checks' reasons otherwise (destination/readiness.py)."""
            answer = self.readiness()
            return JSONResponse(answer.to_json(), status_code=200 if answer.ready else 503)

        policy = Policy(frozenset(ingest_paths), (OUTBOUND_PATH,) if ingest else (), operator=operator, ingest=ingest)
        http = self.settings.http
        listen = [http.operator_listen.rpartition(":")[0].strip("[]")] if http.operator_listen else []
        hosts = allowed_host_names([*http.allowed_hosts, *listen], self.bind_host or http.host)
        app.add_middleware(AccessGuard, policy=policy, sessions=self.sessions, hosts=hosts)
        return app

    def readiness(self) -> Readiness:
        """The checks of this process's kind: ingest (`serves_ingest`) → the event log; delivery (a consumer)
        → the consume loop, the sync log and the Salesforce tokens."""
        delivering = self.consumer is not None
        return readiness(event_log=self.event_log if self.serves_ingest else None, consumer=self.consumer,
                         pipeline=self.pipeline if delivering else None, clients=self.clients if delivering else None)

    def _own_users(self) -> set[str]:
        """The Ids of the users our connections act as (known once a token was fetched)."""
        tokens = [c.tokens.current for c in self.clients.values()]
        return {t.user_id for t in tokens if t is not None and t.user_id}

    def _operator_routes(self, app: FastAPI) -> None:
        """The endpoints for operators (the guard asks for a token with the right scope)."""
        sync_log = self.sync_log
        assert self.sessions is not None

        @app.get("/v1/sync-log")
        async def sync_log_rows(status: Status | None = None, object: str | None = None,
                                source: str | None = None, record_id: str | None = None,
                                error_code: str | None = None, search: str | None = None,
                                since: str | None = None, until: str | None = None,
                                limit: int = Query(100, ge=1, le=MAX_PAGE_SIZE),
                                offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> JSONResponse:
            """Outcomes, newest first, a page at a time: `next_offset` asks for the next page (null: last page)."""
            where = filter_from({"status": status, "object": object, "source": source, "record_id": record_id,
                                 "error_code": error_code, "search": search, "since": since, "until": until})
            rows = await sync_log.rows(where, limit=limit, offset=offset)
            counts = await sync_log.counts(where)
            return JSONResponse({"counts": {k.value: v for k, v in counts.items()},
                                 "rows": [r.to_json() for r in rows],
                                 "next_offset": offset + len(rows) if len(rows) == limit else None})

        @app.post("/v1/preview")
        async def preview_events(body: dict[str, Any]) -> JSONResponse:
            """Dry run: `{"source": "...", "events": [...]}` → would create / update / skip / fail; no writes."""
            from .preview import preview

            if self.pipeline is None:
                return JSONResponse({"code": "unavailable", "message": "no delivery in this process"}, 503)
            source = body.get("source")
            events = body.get("events")
            if source not in self.sources or not isinstance(events, list):
                return JSONResponse({"code": "invalid_request", "message": "give a known `source` and `events`"},
                                    400)
            samples = body.get("samples", 5)
            if type(samples) is not int or not 0 <= samples <= 100:
                return JSONResponse({"code": "invalid_request", "message": "`samples`: an integer from 0 to 100"},
                                    400)
            report = await preview(self.sources, self.pipeline.delivery,
                                   [Event(source, e) for e in events if isinstance(e, dict)], samples=samples,
                                   batching=self.settings.batching)
            return JSONResponse(report.to_json(outcomes=bool(body.get("outcomes"))))

        @app.get("/metrics")
        async def metrics() -> Response:
            for name, client in self.clients.items():
                if client.usage.fraction is not None:
                    self.metrics.budget_used.labels(name).set(client.usage.fraction)
            return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

        from .web.auth import router as login_router
        from .web.pages import router as pages

        def instance_url() -> str:
            client = next(iter(self.clients.values()), None)
            token = getattr(client.tokens, "_token", None) if client else None
            if token is not None:
                return token.instance_url
            conn = next(iter(self.settings.connections.values()), None)
            return conn.login_url if conn else (self.emulator.url if self.emulator else "")

        async def replay(row: SyncLogRow, operator: str) -> None:
            assert self.pipeline is not None
            log.warning("operator %s replays sync-log row %s (%s / %s)", operator, row.id, row.source, row.action)
            await self.pipeline.submit(Event(row.source, row.event), only={row.action})

        @app.post("/v1/sync-log/{row_id}/replay", status_code=202)
        async def replay_row(request: Request, row_id: int) -> JSONResponse:
            """Re-drive one outcome's event through its action (scope `replay`); the row updates when done."""
            row = await sync_log.row(row_id)
            if row is None:
                return JSONResponse({"code": "not_found", "message": "no such sync-log row"}, 404)
            if self.pipeline is None:
                return JSONResponse({"code": "unavailable", "message": "no delivery in this process"}, 503)
            await replay(row, request.state.operator.name)
            return JSONResponse({"replayed": row_id}, 202)

        app.include_router(pages(sync_log, self.sources, instance_url, self.sessions,
                                 replay if self.pipeline is not None else None))
        app.include_router(login_router(self.sessions))


async def open_pipeline(settings: Settings, sources: dict[str, ActionFile], stack: AsyncExitStack,
                        purpose: str) -> Pipeline:
    """A pipeline writing to the configured connections, for commands that deliver without the event log
    (backfill, replay); its sync log and clients close with the stack."""
    if not settings.connections:
        raise SystemExit(f"{purpose} writes to Salesforce: configure a connection in destination.yaml")
    sync_log = await stack.enter_async_context(open_sync_log(settings.sync_log_url))
    clients = {name: await stack.enter_async_context(client_for(settings, conn, name))
               for name, conn in settings.connections.items()}
    budget = Budget(settings.budget.ceiling, settings.budget.recheck_seconds)
    return Pipeline(sources, Delivery(clients, sync_log=sync_log, budget=budget), sync_log,
                    batching=settings.batching)


async def start_sync_back(settings: Settings, sources: dict[str, ActionFile], clients: dict[str, SalesforceClient],
                          sync_log: SyncLog, budget: Budget, stack: AsyncExitStack, metrics: Metrics) -> Any:
    """The change feed of every source with `sync_back`, its publishers open (they close with the stack);
    it shares the connections and the API budget with delivery."""
    from .sync_back.publish import publisher_for
    from .sync_back.runner import SyncBackRunner

    publishers = {}
    for name, source in sources.items():
        if source.sync_back is not None:
            publisher = publisher_for(source.sync_back, settings.kafka)
            await publisher.open()
            stack.push_async_callback(publisher.close)
            publishers[name] = publisher
    return SyncBackRunner(sources, clients, sync_log, publishers, budget=budget, metrics=metrics)


def client_for(settings: Settings, conn: ConnectionConfig, name: str) -> SalesforceClient:
    """A client for one connection, retrying under the settings' retry policy."""
    client = SalesforceClient(conn.connection(name), policy=settings.retry.policy(settings.batching.max_attempts))
    client.bulk.job_max_seconds = settings.retry.bulk_job_max_seconds
    return client


def operator_tokens(settings: Settings, sources: dict[str, ActionFile]) -> OperatorTokens:
    """The configured operator tokens; SystemExit naming the entry (never the value) when one is unusable or
    is also a write key (the two kinds of credential are never interchangeable)."""
    configs = list(settings.operator_tokens)
    if settings.operator_token_file is not None:
        configs.append(OperatorTokenConfig(name="token-file", token_file=settings.operator_token_file,
                                           scopes=[Scope.ADMIN]))
    try:
        tokens = OperatorTokens.from_config(configs)
    except TokenProblem as exc:
        raise SystemExit(f"operator_tokens: {exc}") from None
    for name, source in sources.items():
        if any(tokens.identify(key) for key in source.write_keys):
            raise SystemExit(f"source {name!r}: a write key is also an operator token; give them different values")
    if not tokens:
        log.warning("no operator tokens configured: the sync log, preview, metrics and docs refuse every caller")
    return tokens


async def build(settings: Settings, stack: AsyncExitStack, *, actions_dir: Path | None = None,
                consume: bool = True) -> Service:
    """Open everything the settings name; the stack closes it all in reverse order."""
    sources = load_dir(actions_dir or settings.actions_dir)
    metrics = Metrics()
    sync_log = await _open_at_start("sync log", stack, open_sync_log(settings.sync_log_url))
    event_log: EventLog
    consumer_source: LogConsumer
    if settings.event_log.kind is EventLogKind.KAFKA:
        from .eventlog.kafka import KafkaEventLog, KafkaLogConsumer

        event_log = KafkaEventLog(settings.kafka)
        consumer_source = KafkaLogConsumer(settings.kafka, set(sources))
    else:
        event_log = SqliteEventLog(settings.event_log.path, settings.event_log.partitions)
        consumer_source = SqliteLogConsumer(settings.event_log.path, partitions=settings.event_log.partitions)
    await _open_at_start("event log", stack, event_log)
    service = Service(settings, sources, event_log, sync_log, metrics, tokens=operator_tokens(settings, sources))
    connections = dict(settings.connections)
    if not connections and consume:
        if not settings.emulator.enabled:
            raise SystemExit("no Salesforce connection configured and the bundled emulator is disabled")
        service.emulator, connections["default"] = await asyncio.to_thread(start_bundled_emulator, settings)
        stack.callback(service.emulator.stop)
        log.warning("NO SALESFORCE CONNECTION CONFIGURED: writes go to the bundled emulator at %s "
                    "(records: %s/__admin/records/Lead)", service.emulator.url, service.emulator.url)
    if consume:
        for name, conn in connections.items():
            client = client_for(settings, conn, name)
            service.clients[name] = client
            stack.push_async_callback(client.aclose)
        await stack.enter_async_context(watching_tokens(service.clients, settings.readiness.token_recheck_seconds))
        budget = Budget(settings.budget.ceiling, settings.budget.recheck_seconds)
        synced = {o.object.lower() for s in sources.values() if s.sync_back for o in s.sync_back.objects}
        delivery = Delivery(service.clients, sync_log=sync_log, budget=budget, echo_objects=frozenset(synced))
        if synced:
            service.sync_back = await start_sync_back(settings, sources, service.clients, sync_log, budget, stack,
                                                      metrics)
        service.pipeline = Pipeline(sources, delivery, sync_log, batching=settings.batching, metrics=metrics)
        try:
            await consumer_source.start()
        except _store_errors() as exc:
            raise SystemExit(_start_failure("event log consumer", exc)) from None
        stack.push_async_callback(consumer_source.stop)
        service.consumer = Consumer(consumer_source, service.pipeline)
    return service


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store or broker raises when it is unreachable or refuses us (not a bug of ours); evaluated only
    when start-up fails, so the drivers are not imported for nothing."""
    import sqlite3

    import asyncpg
    from aiokafka.errors import KafkaError

    return OSError, asyncio.TimeoutError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError


def _start_failure(what: str, exc: BaseException) -> str:
    """One line for the operator; the exception's text (the drivers never quote a password), not the URL."""
    return f"{what} could not be opened at start ({type(exc).__name__}: {exc}); exiting so the supervisor retries"


async def _open_at_start(what: str, stack: AsyncExitStack, part: AbstractAsyncContextManager[T]) -> T:
    """Enter a store's context, turning an unreachable store into SystemExit (one line, exit 1)."""
    try:
        return await stack.enter_async_context(part)
    except _store_errors() as exc:
        raise SystemExit(_start_failure(what, exc)) from None
