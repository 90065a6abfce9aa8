"""A real broker outage: while tansu is down, a consumer-only destination's log stays a handful of lines per
window — each repeated aiokafka error once, then `… repeated N times in the last 2 s` — instead of hundreds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka_broker import Broker
from running_emulator import RunningEmulator
from settings_support import settings_file

OUTAGE_SECONDS = 10.0
WINDOW = 2.0


def _outage_log(tmp_path: Path, emulator: RunningEmulator, window: float) -> list[str]:
    """The log lines a consumer-only destination writes while its broker is SIGKILLed for OUTAGE_SECONDS."""
    broker = Broker()
    broker.start()
    config = settings_file(tmp_path, emulator, f"""kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotent: false,
        create_topics: {{enabled: true, partitions: 2, replication_factor: 1}}}}
logging: {{repeat_window_seconds: {window}, progress_seconds: 0}}
""", event_log="{kind: kafka}")
    log = tmp_path / "consumer.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "destination", "--config", str(config), "run",
                                    "--consumer-only"], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                   env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while "destination.kafka: assigned partitions" not in log.read_text():  # joined (not aiokafka's own line)
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        before = len(log.read_text().splitlines())
        broker.kill()
        time.sleep(OUTAGE_SECONDS)
        # SIGKILL: only the lines written during the outage count here (with the broker down, SIGTERM's drain
        # waits on the group coordinator: a separate matter)
        process.kill()
        process.wait(timeout=30)
        return log.read_text().splitlines()[before:]
    finally:
        if process.poll() is None:
            process.kill()
        broker.stop()


@pytest.mark.timeout(120)
def test_a_broker_outage_logs_each_repeated_error_once_per_window_with_a_count(
        tmp_path: Path, tls_emulator: RunningEmulator) -> None:
    lines = _outage_log(tmp_path, tls_emulator, WINDOW)
    warnings = [line for line in lines if re.search(r" (WARNING|ERROR) aiokafka", line)]
    summaries = [line for line in warnings if "… repeated" in line]
    firsts = [line for line in warnings if "… repeated" not in line]
    repeated = sum(int(m.group(1)) for line in summaries if (m := re.search(r"repeated (\d+) times", line)))
    print(f"\nbroker down {OUTAGE_SECONDS:.0f} s: {len(warnings)} aiokafka warning/error lines "
          f"({len(firsts)} first, {len(summaries)} summaries standing for {repeated} more)")
    assert repeated > 0, "\n".join(lines)  # aiokafka did repeat itself, and the repeats were counted
    # one line per message kind, plus at most one summary per kind per window (and one at exit)
    kinds = {re.sub(r"\d+", "N", line.split(": ", 1)[1].split(" … ")[0])[:60] for line in firsts}
    assert len(summaries) <= len(kinds) * (OUTAGE_SECONDS / WINDOW + 2), "\n".join(warnings)
    assert len(warnings) < len(firsts) + repeated, "the log is shorter than what happened"
