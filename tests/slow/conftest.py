"""Slow suites (make test-slow): chaos and bad input at N = 10,000."""

from pathlib import Path

import pytest
from kafka_broker import kafka_bootstrap, persistent_broker

__all__ = ["kafka_bootstrap", "persistent_broker"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests slow (the hook sees every collected item, so filter by path)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)
