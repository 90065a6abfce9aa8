"""Assemble a running destination from settings: event log, sync log, Salesforce clients (or the bundled
emulator), delivery pipeline, consumer, and the HTTP app (ingest, sync-log API, metrics, health)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from .actions.loader import load_dir
from .actions.model import ActionFile
from .budget import Budget
from .config import ConnectionConfig, EventLogKind, Settings
from .consume import Consumer
from .deliver import Delivery
from .eventlog.base import EventLog, LogConsumer
from .eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from .ingest.app import Ingest
from .ingest.keys import WriteKeys
from .metrics import Metrics
from .outcomes import Status
from .pipeline import Pipeline
from .salesforce.client import SalesforceClient
from .synclog import open_sync_log
from .synclog.base import SyncLog, SyncLogFilter
from .synclog.filters import parse_time
from .web.docs import serve_docs

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
                                        "client_secret": "emulator-secret"},  # type: ignore[arg-type]
                                  ca_bundle=running.ca_pem, allowed_hosts=["127.0.0.1"])
    return running, connection


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

    def app(self) -> FastAPI:
        """The HTTP app: Segment ingest, /v1/sync-log, /metrics, /healthz, /readyz, /docs."""
        app = FastAPI(title="Salesforce event destination", docs_url=None, redoc_url=None)
        serve_docs(app)  # Swagger UI from packaged files, not a CDN
        ingest = Ingest(WriteKeys(self.sources), self.event_log)
        app.include_router(ingest.router)
        from .ingest.outbound import Outbound

        self.outbound = Outbound(WriteKeys(self.sources), self.event_log, self.sync_log)
        app.include_router(self.outbound.router)
        sync_log = self.sync_log

        @app.get("/v1/sync-log")
        async def sync_log_rows(status: Status | None = None, object: str | None = None,
                                source: str | None = None, record_id: str | None = None,
                                error_code: str | None = None, search: str | None = None,
                                since: str | None = None, until: str | None = None,
                                limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
            where = SyncLogFilter(status=status, object=object, source=source, record_id=record_id,
                                  error_code=error_code, search=search, since=parse_time(since), until=parse_time(until))
            rows = await sync_log.rows(where, limit=limit)
            counts = await sync_log.counts(where)
            return JSONResponse({"counts": {k.value: v for k, v in counts.items()},
                                 "rows": [r.to_json() for r in rows]})

        @app.post("/v1/preview")
        async def preview_events(body: dict[str, Any]) -> JSONResponse:
            """Dry run: `{"source": "...", "events": [...]}` → would create / update / skip / fail; no writes."""
            from .events import Event
            from .preview import preview

            if self.pipeline is None:
                return JSONResponse({"code": "unavailable", "message": "no delivery in this process"}, 503)
            source = body.get("source")
            events = body.get("events")
            if source not in self.sources or not isinstance(events, list):
                return JSONResponse({"code": "invalid_request", "message": "give a known `source` and `events`"},
                                    400)
            report = await preview(self.sources, self.pipeline.delivery,
                                   [Event(source, e) for e in events if isinstance(e, dict)],
                                   samples=int(body.get("samples", 5)))
            return JSONResponse(report.to_json())

        @app.get("/metrics")
        async def metrics() -> Response:
            for name, client in self.clients.items():
                if client.usage.fraction is not None:
                    self.metrics.budget_used.labels(name).set(client.usage.fraction)
            return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

        from .web.pages import router as pages

        def instance_url() -> str:
            client = next(iter(self.clients.values()), None)
            token = getattr(client.tokens, "_token", None) if client else None
            if token is not None:
                return token.instance_url
            conn = next(iter(self.settings.connections.values()), None)
            return conn.login_url if conn else (self.emulator.url if self.emulator else "")

        app.include_router(pages(sync_log, self.sources, instance_url))

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz")
        async def readyz() -> JSONResponse:
            ready = self.pipeline is not None or self.consumer is None
            return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

        return app


async def open_pipeline(settings: Settings, sources: dict[str, ActionFile], stack: AsyncExitStack,
                        purpose: str) -> Pipeline:
    """A pipeline writing to the configured connections, for commands that deliver without the event log
    (backfill, replay); its sync log and clients close with the stack."""
    if not settings.connections:
        raise SystemExit(f"{purpose} writes to Salesforce: configure a connection in destination.yaml")
    sync_log = await stack.enter_async_context(open_sync_log(settings.sync_log_url))
    clients = {name: await stack.enter_async_context(SalesforceClient(conn.connection(name)))
               for name, conn in settings.connections.items()}
    budget = Budget(settings.budget.ceiling, settings.budget.recheck_seconds)
    return Pipeline(sources, Delivery(clients, sync_log=sync_log, budget=budget), sync_log,
                    batching=settings.batching)


async def build(settings: Settings, stack: AsyncExitStack, *, actions_dir: Path | None = None,
                consume: bool = True) -> Service:
    """Open everything the settings name; the stack closes it all in reverse order."""
    sources = load_dir(actions_dir or settings.actions_dir)
    metrics = Metrics()
    sync_log = await stack.enter_async_context(open_sync_log(settings.sync_log_url))
    event_log: EventLog
    consumer_source: LogConsumer
    if settings.event_log.kind is EventLogKind.KAFKA:
        from .eventlog.kafka import KafkaEventLog, KafkaLogConsumer

        event_log = KafkaEventLog(settings.kafka)
        consumer_source = KafkaLogConsumer(settings.kafka, set(sources))
    else:
        event_log = SqliteEventLog(settings.event_log.path, settings.event_log.partitions)
        consumer_source = SqliteLogConsumer(settings.event_log.path)
    await stack.enter_async_context(event_log)
    service = Service(settings, sources, event_log, sync_log, metrics)
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
            client = SalesforceClient(conn.connection(name))
            service.clients[name] = client
            stack.push_async_callback(client.aclose)
        budget = Budget(settings.budget.ceiling, settings.budget.recheck_seconds)
        delivery = Delivery(service.clients, sync_log=sync_log, budget=budget,
                            max_attempts=settings.batching.max_attempts)
        service.pipeline = Pipeline(sources, delivery, sync_log, batching=settings.batching, metrics=metrics)
        await consumer_source.start()
        stack.push_async_callback(consumer_source.stop)
        service.consumer = Consumer(consumer_source, service.pipeline)
    return service
