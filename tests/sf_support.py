"""Connections to a TLS emulator for client tests: its CA bundle and 127.0.0.1 allowed explicitly."""

from __future__ import annotations

from typing import Any

from destination.salesforce.connection import AuthMethod, AuthSettings, Connection

CLIENT_ID = "emulator-client"
CLIENT_SECRET = "emulator-secret"


def connection_for(emulator: Any, auth: AuthSettings | None = None, **kw: Any) -> Connection:
    """A connection to a TLS emulator: its CA bundle and 127.0.0.1 allowed explicitly."""
    auth = auth or AuthSettings(AuthMethod.CLIENT_CREDENTIALS, CLIENT_ID, CLIENT_SECRET)
    return Connection(login_url=emulator.url, auth=auth, ca_bundle=emulator.ca_pem, allowed_hosts=("127.0.0.1",),
                      **kw)
