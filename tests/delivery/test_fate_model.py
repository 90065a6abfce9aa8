"""Model-based: random streams through the real pipeline against the emulator with random faults; every
(event, action[, record]) ends in exactly one outcome, nothing is committed before it, and the org equals
the reference model (tests/fate_model.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fate_model import generate, run_case
from sf_support import connection_for

CASES = int(os.environ.get("FATE_CASES", "30"))


@pytest.mark.timeout(900)
async def test_random_streams_under_faults_keep_every_event_fate_and_the_org_right(tls_emulator: Any,
                                                                                  tmp_path: Path) -> None:
    failures = {}
    for seed in range(CASES):
        case = generate(seed)
        problems = await run_case(case, tls_emulator, connection_for(tls_emulator), tmp_path)
        if problems:
            failures[seed] = (case.mode, case.on_many, case.faults, case.synclog_failures, case.crash_after,
                              problems[:6])
    assert not failures, "\n".join(f"seed {s}: {v}" for s, v in failures.items())
