"""A Kafka event log or consumer whose broker cannot be reached fails to start and leaves nothing open: the
clients it created are stopped (an unclosed aiokafka client is a ResourceWarning, and sockets it holds leak)."""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.errors import KafkaConnectionError
from running_emulator import free_port

from destination.config import KafkaConfig
from destination.eventlog.kafka import KafkaEventLog, KafkaLogConsumer


def _unreachable() -> KafkaConfig:
    name = uuid.uuid4().hex[:8]
    return KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", topic=f"events-{name}",
                       group_id=f"g-{name}", dead_letter_topic=f"dlq-{name}", idempotent=False)


async def _resource_warnings_of_a_failed_start(start: Callable[[], Awaitable[None]]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KafkaConnectionError):
            await start()
        del start  # the only reference to the log or consumer and so to its clients
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def test_an_event_log_whose_broker_is_away_fails_to_open_and_closes_its_producer() -> None:
    assert await _resource_warnings_of_a_failed_start(KafkaEventLog(_unreachable()).open) == []


async def test_a_consumer_whose_broker_is_away_fails_to_start_and_closes_its_clients() -> None:
    assert await _resource_warnings_of_a_failed_start(KafkaLogConsumer(_unreachable(), {"web"}).start) == []
