"""The scale-out benchmark end to end at a small size: both settings drain every event at about the floor."""

from __future__ import annotations

import pytest

from bench import scaleout


@pytest.mark.timeout(600)
def test_one_and_two_consumers_in_one_group_drain_the_same_backlog_at_the_api_call_floor() -> None:
    result = scaleout.run(4000, 2000)
    for setting in ("one_consumer", "two_consumers"):
        figures = result[setting]
        assert figures["events"] == 4000 and figures["floor"] >= 20
        assert figures["api_calls"] <= 1.3 * figures["floor"] + 5  # a describe, a rebalance's extra batches
    assert result["two_consumers"]["consumers"] == 2 and result["speedup_two_over_one"] > 0
    assert "one consumer:" in result["limit"] and "two consumers:" in result["limit"]
