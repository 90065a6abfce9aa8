"""Serve an emulator from inside another process (the embedded demo, tests): uvicorn in a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from .app import create_app
from .state import EmulatorState
from .tls import ensure_certificates


class EmulatorServer(uvicorn.Server):
    """uvicorn's server, stopped without its polling: uvicorn looks at `should_exit` every 0.1 s and then
    waits a fixed 0.1 s for connections to close, which made each stop take ~0.15 s (the test suite starts
    and stops hundreds of emulators). `stop()` wakes the loop at once; closing waits only while a
    connection is still open (up to the same 0.1 s)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown (0.54), its fixed 0.1 s wait for connections turned into a wait while any is open."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 0.1
        while self.server_state.connections and time.monotonic() < deadline:  # noqa: ASYNC110 - a set, no event
            await asyncio.sleep(0.005)
        try:
            await asyncio.wait_for(self._wait_tasks_to_complete(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    def stop(self) -> None:
        """From another thread: exit now."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)


@dataclass
class EmbeddedEmulator:
    state: EmulatorState
    url: str
    ca_pem: Path | None
    server: EmulatorServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


def serve_in_thread(state: EmulatorState, *, host: str = "127.0.0.1", port: int = 8081,
                    tls_dir: Path | None = None, log_level: str = "warning") -> EmbeddedEmulator:
    """Start serving `state`; HTTPS with a local CA in `tls_dir` when given. Returns once it listens."""
    ssl: dict[str, str] = {}
    ca_pem = None
    if tls_dir is not None:
        paths = ensure_certificates(tls_dir)
        ssl = {"ssl_certfile": str(paths.cert_pem), "ssl_keyfile": str(paths.key_pem)}
        ca_pem = paths.ca_pem
    config = uvicorn.Config(create_app(state), host=host, port=port, log_level=log_level, lifespan="off",
                            log_config=None, **ssl)  # its log lines go through the host process's handlers  # type: ignore[arg-type]
    server = EmulatorServer(config)
    thread = threading.Thread(target=server.run, name="salesforce-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the emulator did not start on {host}:{port}")
        time.sleep(0.01)
    scheme = "https" if tls_dir is not None else "http"
    return EmbeddedEmulator(state, f"{scheme}://{host}:{port}", ca_pem, server, thread)
