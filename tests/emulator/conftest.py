"""Fixtures for emulator tests: an authenticated REST client against a running emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_rest import rest_client


@pytest.fixture
def rest(emulator: Any) -> Iterator[httpx.Client]:
    """REST client (API v62.0) for the `emulator` fixture."""
    with rest_client(emulator) as client:
        yield client
