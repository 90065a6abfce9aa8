"""Ping-pong for 60 s (make test-slow): push and sync-back on one org and one topic, concurrent edits from
both sides; the system converges (see ping_pong_support.judge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ping_pong_support import judge, ping_pong


async def test_two_way_sync_converges_over_sixty_seconds(tls_emulator: Any, kafka_bootstrap: str,
                                                         tmp_path: Path) -> None:
    result = await ping_pong(tls_emulator, kafka_bootstrap, tmp_path, seconds=60, seed=11)
    assert len(result.edits) >= 100
    judge(result)
