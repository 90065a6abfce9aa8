"""A store that cannot be reached at start is one clear line and exit 1 (systemd and Kubernetes restart it),
never a 50-line traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from destination.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_postgresql_sync_log_at_start_is_one_line_and_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "destination.yaml"
    settings.write_text(f"sync_log_url: postgresql://destination:pw-not-printed@127.0.0.1:{_closed_port()}/x\n"
                        f"event_log: {{path: {tmp_path / 'events.db'}}}\nemulator: {{enabled: false}}\n")
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(settings), "run", "--ingest-only"])
    message = str(stop.value.code)
    assert "sync log" in message and "pw-not-printed" not in message, message
    assert len(message.splitlines()) == 1 and "Traceback" not in capsys.readouterr().err
