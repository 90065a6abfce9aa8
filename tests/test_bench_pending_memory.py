"""bench/pending_memory: what a pending operation holds, on a real Pipeline whose batcher never flushes."""

from __future__ import annotations

import asyncio

from bench.pending_memory import _hold


def test_a_pending_identify_operation_holds_at_most_600_bytes() -> None:
    """Issue 19's target: the delivery benchmark's identify event waits packed (its JSON and a ticket)."""
    per_op, pending = asyncio.run(_hold(4_000, 2_000, True, False))
    assert pending == 4_000
    assert 200 < per_op <= 600  # its JSON alone is ~230 bytes: something is held, and no more than the target
