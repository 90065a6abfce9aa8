"""Kafka tests: a real broker (tansu) for the session, the emulator over HTTPS, a real client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kafka_broker import kafka_bootstrap, persistent_broker
from sf_support import connection_for

from destination.budget import Budget
from destination.deliver import Delivery
from destination.salesforce.client import SalesforceClient


@pytest.fixture
async def delivery(tls_emulator: Any) -> AsyncIterator[Delivery]:
    async with SalesforceClient(connection_for(tls_emulator), backoff_initial=0.01, backoff_max=0.05) as client:
        client.bulk.poll_initial = 0.05
        yield Delivery({"default": client}, budget=Budget(recheck_seconds=0.2), backoff_seconds=0.01)

__all__ = ["kafka_bootstrap", "persistent_broker"]
