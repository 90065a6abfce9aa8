"""Ping-pong (short): push and sync-back on one org and one topic with concurrent edits from both sides
converge — nothing published twice, no echo of our own writes, API calls bounded, the final value follows
most_recent. tests/slow runs the same for 60 s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ping_pong_support import judge, ping_pong


async def test_two_way_sync_with_concurrent_edits_converges(tls_emulator: Any, kafka_bootstrap: str,
                                                            tmp_path: Path) -> None:
    result = await ping_pong(tls_emulator, kafka_bootstrap, tmp_path, seconds=6)
    assert len(result.edits) >= 10 and {side for side, _ in result.edits} == {"app", "person"}
    judge(result)
