"""Serve an emulator from inside another process (the embedded demo, tests): uvicorn in a thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from .app import create_app
from .state import EmulatorState
from .tls import ensure_certificates


@dataclass
class EmbeddedEmulator:
    state: EmulatorState
    url: str
    ca_pem: Path | None
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
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
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="salesforce-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the emulator did not start on {host}:{port}")
        time.sleep(0.01)
    scheme = "https" if tls_dir is not None else "http"
    return EmbeddedEmulator(state, f"{scheme}://{host}:{port}", ca_pem, server, thread)
