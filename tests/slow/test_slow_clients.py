"""The slow-client measurement (issue 16): while 50 slow connections trickle request heads and bodies at the
real `destination run --ingest-only`, a well-behaved client's p99 stays within 2x its normal p99."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest
from destination_process import DestinationProcess, ingest_only
from slow_clients import latencies, p99, slow_connections


@pytest.fixture(scope="module")
def ingest_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DestinationProcess]:
    process = ingest_only(tmp_path_factory.mktemp("slowloris"))  # the default limits
    process.start()
    yield process
    process.stop()


@pytest.mark.timeout(600)
async def test_fifty_slow_connections_keep_a_well_behaved_clients_p99_within_twice_normal(
        ingest_process: DestinationProcess) -> None:
    port = ingest_process.port
    await latencies(port, 50)  # warm up
    normal, attacked = [], []
    for _ in range(5):  # interleaved rounds, so a change in the machine's load affects both alike
        normal.append(p99(await latencies(port, 300)))
        async with slow_connections(port, 50):
            attacked.append(p99(await latencies(port, 300)))
    print(f"p99 normal {[round(x * 1000, 1) for x in normal]} ms, "
          f"with 50 slow connections {[round(x * 1000, 1) for x in attacked]} ms")
    assert statistics.median(attacked) <= 2 * statistics.median(normal), (normal, attacked)
