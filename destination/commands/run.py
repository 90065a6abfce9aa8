"""`destination run`: ingest + consumer + delivery in one process (or one of them for split deployments).
With no configuration it starts on embedded defaults: SQLite event log and sync log, the shipped
actions, and the bundled Salesforce emulator."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import uvicorn

from ..access import ensure_local_token
from ..config import OperatorTokenConfig, Scope, load_settings
from ..ingest.connections import uvicorn_options
from ..progress import progress_lines
from ..retention import Retention, pruning
from ..service import Service, build

NAME = "run"
HELP = "serve the ingest API and deliver events to Salesforce"
log = logging.getLogger("destination")


def configure(parser: argparse.ArgumentParser) -> None:
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--ingest-only", action="store_true", help="serve the ingest API only (no delivery)")
    only.add_argument("--consumer-only", action="store_true", help="consume and deliver only (no ingest API)")
    parser.add_argument("--host", default=None, help="HTTP host (default from settings: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default from settings: 8080)")
    parser.add_argument("--operator-token-file", type=Path, default=None,
                        help="a local operator token (all scopes): created with a random value and printed once "
                        "when the file does not exist (mode 0600), read from it otherwise")


def _local_token(path: Path, url: str) -> OperatorTokenConfig:
    """The `--operator-token-file` token; a new one is printed once (to the terminal, never to the log)."""
    token = ensure_local_token(path)
    if token is not None:
        print(f"\nOperator token (all scopes), shown once and saved in {path} (mode 0600):\n\n    {token}\n\n"
              f"curl -H \"Authorization: Bearer $(cat {path})\" {url}/v1/sync-log\n", flush=True)
    return OperatorTokenConfig(name="local", token_file=path, scopes=[Scope.ADMIN])


def _listeners(service: Service, args: argparse.Namespace, host: str, port: int) -> list[tuple[str, int, Any, str]]:
    """(host, port, app, what it serves) per HTTP listener: the main one (ingest, and the operator endpoints
    unless they have their own listener or this is `--ingest-only`), and the operator listener when configured."""
    operator_listen = service.settings.http.operator_listen
    out: list[tuple[str, int, Any, str]] = []
    if not args.consumer_only:
        both = not args.ingest_only and operator_listen is None
        out.append((host, port, service.app(operator=both),
                    "ingest API and operator endpoints (sync log at /sync-log)" if both else "ingest API"))
    if operator_listen is not None:
        op_host, _, op_port = operator_listen.rpartition(":")
        out.append((op_host.strip("[]"), int(op_port), service.app(ingest=False),
                    "operator endpoints (sync log at /sync-log)"))
    return out


async def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    host = args.host or settings.http.host
    port = args.port or settings.http.port
    if args.operator_token_file is not None:
        settings.operator_tokens.append(_local_token(args.operator_token_file, f"http://{host}:{port}"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        service = await build(settings, stack, actions_dir=Path(args.actions) if args.actions else None,
                              consume=not args.ingest_only)
        service.bind_host = host
        service.serves_ingest = not args.consumer_only
        listeners = _listeners(service, args, host, port)
        await stack.enter_async_context(progress_lines(service.metrics.registry, settings.logging.progress_seconds))
        if service.consumer is not None:  # a delivering process owns the sync log and the log's commits
            retention = Retention(settings.retention, service.sync_log, service.event_log, service.metrics)
            await stack.enter_async_context(pruning(retention, settings.retention.interval_seconds))
        _settle_garbage_collector()
        tasks: list[asyncio.Task[object]] = []
        servers = []
        for l_host, l_port, app, serves in listeners:
            # no access log: one log line per request costs more CPU than parsing the request (uvicorn's
            # log_level would otherwise set uvicorn.access back to INFO)
            config = uvicorn.Config(app, host=l_host, port=l_port, log_level="info", lifespan="off",
                                    access_log=False, log_config=None, **uvicorn_options(settings.http))
            server = uvicorn.Server(config)
            servers.append(server)
            tasks.append(asyncio.create_task(server.serve()))
            log.warning("%s on http://%s:%s", serves, l_host, l_port)
        if service.consumer is not None:
            tasks.append(asyncio.create_task(service.consumer.run()))
        if service.sync_back is not None:
            tasks.append(asyncio.create_task(service.sync_back.run()))
            log.warning("sync-back: polling %s", ", ".join(f"{s}/{o.object}" for s, f in service.sources.items()
                                                           if f.sync_back for o in f.sync_back.objects))
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        for task in failed:  # a part that died is a failure to report, never a quiet exit 0
            log.error("stopping: %s failed", getattr(task.get_coro(), "__qualname__", task.get_name()),
                      exc_info=task.exception())
        log.warning("shutting down: draining what is in flight")
        for server in servers:
            server.should_exit = True
        if service.consumer is not None:
            service.consumer.stop()
        if service.sync_back is not None:
            service.sync_back.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if service.consumer is not None:
            await service.consumer.drain()
    return 1 if failed else 0


def _settle_garbage_collector() -> None:
    """Move what start-up built (modules, settings, actions, the app) out of the collector's sight, let the
    youngest generation grow larger (a /v1/batch request allocates thousands of small dicts, and with the
    default threshold, 700, the collector would run several times per request), and collect the middle
    generation ten times less often than the default.

    Why the middle one: pending operations are the young objects that survive (the batcher holds them for
    its window), and each middle collection walks all of them again only to find them alive — 70-85 ms
    each, about 5 us per event of a delivery run (bench: BENCH_GC=1), for almost nothing collected. Every
    100 young collections, most of those operations have been written and freed before it comes. Cycles
    (an exception's traceback, mostly) that outlive a young collection wait longer to be freed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, _GC_MIDDLE, gc.get_threshold()[2])


_GC_YOUNG = 20_000
_GC_MIDDLE = 100  # young collections per middle one (the default is 10)


def run(args: argparse.Namespace) -> int:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(serve(args))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard]): `uvicorn.Server.serve()` runs on whatever loop it is given,
    so without this the ingest API would run on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return None
    return uvloop.new_event_loop
