"""Fixtures for emulator tests: an authenticated REST client against a running emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

API = "/services/data/v62.0"
USERNAME = "admin@emulator.test"


def rest_client(emulator: Any, version: str = "62.0") -> httpx.Client:
    """An httpx client on /services/data/vNN.N with a valid session of the default admin user."""
    token = emulator.state.tokens.issue(USERNAME, "emulator-client").token
    return httpx.Client(base_url=f"{emulator.url}/services/data/v{version}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def rest(emulator: Any) -> Iterator[httpx.Client]:
    """REST client (API v62.0) for the `emulator` fixture."""
    with rest_client(emulator) as client:
        yield client
