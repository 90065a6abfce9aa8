"""Model-based fate check at scale (make test-slow): 300 random cases in process, and cases through a real
`destination run` process that is SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from chaos_support import DestinationProcess
from fate_model import generate, run_case, run_case_killed
from running_emulator import free_port
from sf_support import connection_for

CASES = int(os.environ.get("FATE_CASES_SLOW", "300"))
KILLED = int(os.environ.get("FATE_KILLED_CASES", "12"))


def _report(failures: dict[int, Any]) -> str:
    return "\n".join(f"seed {s}: {v}" for s, v in failures.items())


@pytest.mark.timeout(3600)
async def test_three_hundred_random_streams_keep_every_event_fate_and_the_org_right(tls_emulator: Any,
                                                                                   tmp_path: Path) -> None:
    failures = {}
    for seed in range(1000, 1000 + CASES):
        case = generate(seed)
        problems = await run_case(case, tls_emulator, connection_for(tls_emulator), tmp_path)
        if problems:
            failures[seed] = (case.mode, case.on_many, case.faults, problems[:6])
    assert not failures, _report(failures)


@pytest.mark.timeout(1800)
async def test_random_streams_survive_a_sigkill_of_the_destination_process(tls_emulator: Any,
                                                                           tmp_path: Path) -> None:
    failures = {}
    for seed in range(5000, 5000 + KILLED):
        case = generate(seed)
        problems = await run_case_killed(case, tls_emulator, tmp_path, DestinationProcess, free_port())
        if problems:
            failures[seed] = (case.mode, case.on_many, case.faults, problems[:6])
    assert not failures, _report(failures)
