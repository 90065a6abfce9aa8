"""A real emulator on a loopback socket (HTTP, or HTTPS with its own CA), for tests and benchmarks."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from salesforce_emulator.server import EmulatorServer, serve_in_thread
from salesforce_emulator.state import EmulatorState, build_state

CLIENT_ID = "emulator-client"
CLIENT_SECRET = "emulator-secret"
USERNAME = "admin@emulator.test"
PASSWORD = "emulator"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningEmulator:
    """An emulator served by uvicorn in a background thread."""

    state: EmulatorState
    url: str
    server: EmulatorServer
    thread: threading.Thread
    ca_pem: Path | None = None

    def token(self) -> str:
        """A fresh access token through the client_credentials grant."""
        r = httpx.post(f"{self.url}/services/oauth2/token",
                       data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                             "client_secret": CLIENT_SECRET},
                       verify=ssl.create_default_context(cafile=self.ca_pem) if self.ca_pem else True)
        r.raise_for_status()
        return r.json()["access_token"]

    def stop(self) -> None:
        self.server.stop()  # wakes at once (see salesforce_emulator.server.EmulatorServer)
        self.thread.join(timeout=10)


def start_emulator(state: EmulatorState | None = None, *, tls_dir: Path | None = None) -> RunningEmulator:
    """Start an emulator on a free port; HTTPS with a generated CA when tls_dir is given."""
    running = serve_in_thread(state or build_state(), port=free_port(), tls_dir=tls_dir)
    return RunningEmulator(state=running.state, url=running.url, server=running.server, thread=running.thread,
                           ca_pem=running.ca_pem)


@contextmanager
def started(state: EmulatorState | None = None, *, tls_dir: Path | None = None) -> Iterator[RunningEmulator]:
    """Run an emulator for the duration of a `with` block."""
    running = start_emulator(state, tls_dir=tls_dir)
    try:
        yield running
    finally:
        running.stop()
