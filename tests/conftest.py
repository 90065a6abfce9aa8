"""Shared fixtures: a real emulator on a loopback socket (HTTP, or HTTPS with its own CA)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from running_emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    USERNAME,
    RunningEmulator,
    free_port,
    start_emulator,
)

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "PASSWORD", "USERNAME", "RunningEmulator", "free_port", "start_emulator"]


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """A fresh default-org emulator over plain HTTP on loopback."""
    running = start_emulator()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One emulator CA and server certificate for the whole test session."""
    return tmp_path_factory.mktemp("emulator-tls")


@pytest.fixture
def tls_emulator(tls_dir: Path) -> Iterator[RunningEmulator]:
    """A fresh default-org emulator over HTTPS; `ca_pem` is the CA to trust."""
    running = start_emulator(tls_dir=tls_dir)
    yield running
    running.stop()
