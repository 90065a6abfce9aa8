"""Preview is exact at N = 10,000: the differential test of tests/operator/test_preview_differential.py with
a larger corpus (another seed), so rarer combinations of repeated keys, batches and bad values occur."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preview_support import corpus, preview_then_run, seed_org


async def test_preview_predicts_every_outcome_of_ten_thousand_events(tls_emulator: Any, tmp_path: Path) -> None:
    ids = seed_org(tls_emulator.state.store)
    result = await preview_then_run(tls_emulator, corpus(10_000, ids, seed=1015), tmp_path)
    assert len(result.actual) == 10_000
    assert result.disagreements() == []
