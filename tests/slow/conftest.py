"""Slow suites (make test-slow): chaos and bad input at N = 10,000."""

import pytest
from kafka_broker import kafka_bootstrap

__all__ = ["kafka_bootstrap"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.slow)
