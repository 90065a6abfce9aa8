"""Client tests run against a real emulator over HTTPS, trusting only the emulator's CA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sf_support import connection_for

from destination.salesforce.client import SalesforceClient


@pytest.fixture
async def sf(tls_emulator: Any) -> AsyncIterator[SalesforceClient]:
    """A client on the TLS emulator with fast backoff for tests."""
    async with SalesforceClient(connection_for(tls_emulator), backoff_initial=0.01, backoff_max=0.05) as client:
        yield client
