"""The process log: JSON lines, level, repeated errors collapsed with a count, a progress line from a running
destination, and a settings error as one located line with exit code 2."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from running_emulator import RunningEmulator, free_port
from settings_support import settings_file

from destination.actions.loader import ConfigError
from destination.config import LoggingConfig, load_settings
from destination.eventlog.base import Partition
from destination.logs import RepeatFilter, setup_logging
from destination.metrics import Metrics
from destination.progress import progress_line, read_totals

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_root_logger() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_format_writes_one_parseable_object_per_line(capsys: pytest.CaptureFixture[str],
                                                         restore_root_logger: None) -> None:
    setup_logging(LoggingConfig(format="json", level="info"))
    log = logging.getLogger("destination.test")
    log.info("delivered %d events\nto %s", 3, "Lead", extra={"source": "web-app"})
    log.debug("not at INFO")
    try:
        raise ValueError("broken")
    except ValueError:
        log.exception("batch failed")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO" and first["logger"] == "destination.test"
    assert first["message"] == "delivered 3 events\nto Lead" and first["source"] == "web-app"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second["level"] == "ERROR" and "ValueError: broken" in second["exception"]


def test_level_setting_hides_lower_levels_and_reads_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   restore_root_logger: None) -> None:
    os.environ["DESTINATION_LOGGING__LEVEL"] = "warning"
    os.environ["DESTINATION_LOGGING__FORMAT"] = "json"
    try:
        config = load_settings(tmp_path / "none.yaml").logging
    finally:
        del os.environ["DESTINATION_LOGGING__LEVEL"], os.environ["DESTINATION_LOGGING__FORMAT"]
    assert (config.level, config.format) == ("WARNING", "json")
    setup_logging(config)
    logging.getLogger("destination").info("hidden")
    logging.getLogger("destination").warning("shown")
    assert [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines()] == ["shown"]


def _outage(filter_: RepeatFilter, seconds: float, count: int, start: float) -> list[logging.LogRecord]:
    """`count` connection errors spread over `seconds`, as aiokafka logs them while the broker is down."""
    passed = []
    for i in range(count):
        at = start + seconds * i / count
        kind = i % 3
        if kind == 0:
            record = logging.makeLogRecord({"name": "aiokafka.client", "levelno": logging.ERROR, "levelname": "ERROR",
                                            "msg": 'Unable connect to "%s:%s": %s',
                                            "args": ("127.0.0.1", 9092, f"[Errno 111] Connect call failed {i}"),
                                            "created": at})
        elif kind == 1:
            record = logging.makeLogRecord({"name": "aiokafka.client", "levelno": logging.ERROR, "levelname": "ERROR",
                                            "msg": "Unable to update metadata from %s", "args": ([1],), "created": at})
        else:
            record = logging.makeLogRecord({"name": "aiokafka.consumer.group_coordinator", "levelno": logging.ERROR,
                                            "levelname": "ERROR", "msg": "Error sending %s to node %s [%s]",
                                            "args": ("HeartbeatRequest", 1, "NodeNotReadyError"), "created": at})
        if filter_.filter(record):
            passed.append(record)
    return passed


def test_a_broker_outage_of_787_errors_in_35_s_becomes_a_handful_of_lines_with_counts() -> None:
    summaries: list[logging.LogRecord] = []
    repeats = RepeatFilter(30.0, sink=summaries.append)
    start = time.time() - 35
    passed = _outage(repeats, 35.0, 787, start)
    repeats.flush()  # the end of the process (or the timer) reports what is still counted
    assert len(passed) == 3  # the first of each kind
    assert 3 <= len(summaries) <= 6
    assert sum(getattr(s, "repeated", 0) for s in summaries) + len(passed) == 787
    text = summaries[0].getMessage()
    assert "repeated" in text and "times in the last" in text
    assert {s.name for s in summaries} == {"aiokafka.client", "aiokafka.consumer.group_coordinator"}


def test_an_error_after_a_quiet_window_is_logged_at_once_again() -> None:
    summaries: list[logging.LogRecord] = []
    repeats = RepeatFilter(1.0, sink=summaries.append)
    record = {"name": "aiokafka.client", "levelno": logging.ERROR, "levelname": "ERROR",
              "msg": "Unable to update metadata from %s", "args": ([1],)}
    start = time.time() - 10
    assert repeats.filter(logging.makeLogRecord({**record, "created": start}))
    assert repeats.filter(logging.makeLogRecord({**record, "created": start + 5}))  # no repeat in its window
    assert summaries == []
    # info lines are never collapsed
    info = {**record, "levelno": logging.INFO, "levelname": "INFO"}
    assert all(repeats.filter(logging.makeLogRecord({**info, "created": start + 6})) for _ in range(3))


def test_the_timer_reports_the_count_when_the_outage_has_ended(restore_root_logger: None,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LoggingConfig(format="json", repeat_window_seconds=0.5))
    log = logging.getLogger("aiokafka.client")
    for _ in range(50):
        log.error("Unable connect to node with id %s: %s", 1, "Connect call failed")
    deadline = time.monotonic() + 5
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(lines) < 2:
        time.sleep(0.1)
        lines += [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line.get("repeated") for line in lines] == [None, 49]
    assert lines[1]["message"].startswith("Unable connect to node with id 1: Connect call failed … repeated 49 times")


def test_progress_line_reports_the_interval_and_totals_from_the_metrics() -> None:
    metrics = Metrics()
    before = read_totals(metrics.registry)
    assert before.lag is None
    metrics.accepted("web-app", 3)
    for _ in range(2):
        metrics.consumed("web-app")
    metrics.outcomes.labels("succeeded", "Lead", "").inc(2)
    metrics.outcomes.labels("failed", "Lead", "REQUIRED_FIELD_MISSING").inc()
    metrics.batch("rest:upsert", 3)
    metrics.lag({Partition("events", 0): 4, Partition("events", 1): 6})
    after = read_totals(metrics.registry)
    text, fields = progress_line(after.minus(before), after, 60.0)
    assert text == ("progress, last 60 s: 3 events accepted, 2 consumed, 3 outcomes (failed 1, succeeded 2), "
                    "1 Salesforce API calls; consumer lag 10; since start: 3 events accepted, 2 consumed, 3 outcomes")
    assert fields["outcomes"] == {"failed": 1, "succeeded": 2} and fields["consumer_lag"] == 10


def test_a_running_destination_logs_progress_lines_as_json(tmp_path: Path, tls_emulator: RunningEmulator) -> None:
    config = settings_file(tmp_path, tls_emulator, "logging: {format: json, progress_seconds: 1}\n")
    port = free_port()
    log_path = tmp_path / "destination.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "destination", "--config", str(config), "run",
                                    "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        event = {"type": "identify", "userId": "u1", "messageId": "progress-1",
                 "traits": {"email": "progress@example.com", "last_name": "Progress"}}
        assert httpx.post(f"{url}/v1/identify", json=event, auth=("web-app-demo-key", "")).status_code == 200
        progress: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
            progress = [line for line in lines if line["logger"] == "destination.progress"]
            if any(p["progress"]["outcomes_since_start"].get("succeeded") for p in progress):
                break
            time.sleep(0.2)
        assert progress, log_path.read_text()
        last = progress[-1]["progress"]
        assert last["events_accepted_since_start"] == last["events_consumed_since_start"] == 1 and last["outcomes_since_start"] == {"succeeded": 1}
        assert last["api_calls_since_start"] >= 1
        assert all(line.startswith("{") for line in log_path.read_text().splitlines()), "every line is JSON"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _settings_errors_are_located() -> bool:
    """Settings errors become a located ConfigError in load_settings on the `access` branch (not yet merged
    here): until then this file's config-error test cannot pass."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        bad = Path(folder) / "bad.yaml"
        bad.write_text("batching: {linger_ms: -5}\n")
        try:
            load_settings(bad)
        except ConfigError:
            return True
        except Exception:
            return False
    return False


@pytest.mark.skipif(not _settings_errors_are_located(), reason="needs load_settings → ConfigError (access branch)")
def test_a_settings_error_is_one_line_naming_file_and_key_and_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("batching:\n  linger_ms: -5\nconnections: {}\n")
    secret = tmp_path / "secret.yaml"
    secret.write_text("kafka:\n  security: {protocol: SASL_SSL, sasl_username: u, sasl_password: hunter2-secret}\n"
                      "  bootstrap_servers: 7\n")
    for command in (["run"], ["check", "--offline"]):
        result = subprocess.run([sys.executable, "-m", "destination", "--config", str(bad), *command],
                                capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"{bad}:") and "batching.linger_ms" in lines[0]
        # the value is left out; the path itself may contain "-5" (pytest-507), so look only past it
        assert "-5" not in lines[0][len(str(bad)):]
    result = subprocess.run([sys.executable, "-m", "destination", "--config", str(secret), "run"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "kafka.bootstrap_servers" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
