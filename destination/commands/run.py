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

import uvicorn

from ..config import load_settings
from ..progress import progress_lines
from ..service import build

NAME = "run"
HELP = "serve the ingest API and deliver events to Salesforce"
log = logging.getLogger("destination")


def configure(parser: argparse.ArgumentParser) -> None:
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--ingest-only", action="store_true", help="serve the ingest API only (no delivery)")
    only.add_argument("--consumer-only", action="store_true", help="consume and deliver only (no ingest API)")
    parser.add_argument("--host", default=None, help="HTTP host (default from settings: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default from settings: 8080)")


async def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    host = args.host or settings.http.host
    port = args.port or settings.http.port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        service = await build(settings, stack, actions_dir=Path(args.actions) if args.actions else None,
                              consume=not args.ingest_only)
        await stack.enter_async_context(progress_lines(service.metrics.registry, settings.logging.progress_seconds))
        _settle_garbage_collector()
        tasks: list[asyncio.Task[object]] = []
        server = None
        if not args.consumer_only:
            # no access log: one log line per request costs more CPU than parsing the request (uvicorn's
            # log_level would otherwise set uvicorn.access back to INFO)
            config = uvicorn.Config(service.app(), host=host, port=port, log_level="info", lifespan="off",
                                    access_log=False, log_config=None)
            server = uvicorn.Server(config)
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            tasks.append(asyncio.create_task(server.serve()))
            log.warning("ingest API on http://%s:%s (Segment paths under /v1/, sync log at /v1/sync-log)", host, port)
        if service.consumer is not None:
            tasks.append(asyncio.create_task(service.consumer.run()))
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        log.warning("shutting down: draining what is in flight")
        if server is not None:
            server.should_exit = True
        if service.consumer is not None:
            service.consumer.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if service.consumer is not None:
            await service.consumer.drain()
    return 0


def _settle_garbage_collector() -> None:
    """Move what start-up built (modules, settings, actions, the app) out of the collector's sight, and let the
    youngest generation grow larger: a /v1/batch request allocates thousands of small dicts, and with the
    default threshold (700) the collector would run several times per request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])


_GC_YOUNG = 20_000


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
