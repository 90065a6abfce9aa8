"""Settings files pointing at a TLS emulator, for command tests; an operator token (all scopes) for the
operator endpoints they call."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OPERATOR_TOKEN = "test-operator-token-0123456789abcdefghijklmnop"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
OPERATOR_SHA256 = hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest()


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
operator_tokens: [{{name: tests, sha256: {OPERATOR_SHA256}, scopes: [admin]}}]
{extra}""")
    return config
