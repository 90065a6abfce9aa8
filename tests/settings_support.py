"""Settings files pointing at a TLS emulator, for command tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def settings_file(tmp_path: Path, emulator: Any, extra: str = "", *, event_log: str | None = None) -> Path:
    """A destination.yaml: the emulator connection, the shipped actions, logs in `tmp_path`."""
    config = tmp_path / "destination.yaml"
    event_log = event_log or f"{{path: {tmp_path / 'events.db'}}}"
    config.write_text(f"""connections:
  default:
    login_url: {emulator.url}
    auth: {{method: client_credentials, client_id: emulator-client, client_secret: emulator-secret}}
    ca_bundle: {emulator.ca_pem}
    allowed_hosts: [127.0.0.1]
actions_dir: {REPO / 'actions'}
sync_log_url: sqlite:///{tmp_path / 'sync.db'}
event_log: {event_log}
batching: {{linger_ms: 50}}
{extra}""")
    return config
