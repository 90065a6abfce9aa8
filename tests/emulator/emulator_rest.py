"""An authenticated REST client against a running emulator (used by the emulator tests' fixtures)."""

from __future__ import annotations

from typing import Any

import httpx

API = "/services/data/v62.0"
USERNAME = "admin@emulator.test"


def rest_client(emulator: Any, version: str = "62.0") -> httpx.Client:
    """An httpx client on /services/data/vNN.N with a valid session of the default admin user."""
    token = emulator.state.tokens.issue(USERNAME, "emulator-client").token
    return httpx.Client(base_url=f"{emulator.url}/services/data/v{version}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)

