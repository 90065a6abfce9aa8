"""What a connection to one Salesforce org is: where to log in, how, and which hosts and CA to trust."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

DEFAULT_API_VERSION = "62.0"


class AuthMethod(StrEnum):
    REFRESH_TOKEN = "refresh_token"
    JWT_BEARER = "jwt_bearer"
    CLIENT_CREDENTIALS = "client_credentials"
    PASSWORD = "password"


@dataclass(frozen=True)
class AuthSettings:
    """Credentials for one OAuth flow; only the fields of `method` are used."""

    method: AuthMethod
    client_id: str
    client_secret: str | None = None
    refresh_token: str | None = None
    username: str | None = None
    password: str | None = None  # password + security token, concatenated, for the legacy password flow
    private_key_file: Path | None = None  # PEM RSA key for the JWT bearer flow
    private_key: str | None = None  # the same, inline (from an environment variable)
    audience: str | None = None  # JWT `aud`; derived from the login host when None


@dataclass(frozen=True)
class Connection:
    """One org: login host (production, sandbox or My Domain), auth, API version, transport trust."""

    login_url: str
    auth: AuthSettings
    api_version: str = DEFAULT_API_VERSION
    ca_bundle: Path | None = None  # a CA to trust in addition to nothing else (e.g. the emulator's ca.pem)
    allowed_hosts: tuple[str, ...] = ()  # extra hosts beyond Salesforce's domains, e.g. 127.0.0.1
    timeout_seconds: float = 60.0
    max_attempts: int = 5  # per request, for transient failures
    max_connections: int = 32  # the pool: every connection is kept alive, so none is re-made under load
    name: str = "default"
    extra_headers: dict[str, str] = field(default_factory=dict)
