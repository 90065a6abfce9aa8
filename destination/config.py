"""Settings: `destination.yaml` (with `${VAR}` substitution) overridden by `DESTINATION_*` environment
variables (nested with `__`, e.g. DESTINATION_BATCHING__LINGER_MS=200). Secrets come from the environment
or files, never inline."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .actions.loader import substitute
from .salesforce.connection import AuthMethod, AuthSettings, Connection

_STRICT = ConfigDict(extra="forbid")


class AuthConfig(BaseModel):
    model_config = _STRICT
    method: AuthMethod
    client_id: str
    client_secret: str | None = None
    refresh_token: str | None = None
    username: str | None = None
    password: str | None = None
    private_key_file: Path | None = None
    audience: str | None = None


class ConnectionConfig(BaseModel):
    """One Salesforce org."""

    model_config = _STRICT
    login_url: str = Field(description="https://login.salesforce.com, test.salesforce.com, a My Domain, or the emulator")
    auth: AuthConfig
    api_version: str = "62.0"
    ca_bundle: Path | None = Field(None, description="a CA to trust (the emulator's ca.pem in tests and the demo)")
    allowed_hosts: list[str] = Field(default_factory=list, description="extra hosts beyond Salesforce's own")
    timeout_seconds: float = 60.0

    def connection(self, name: str) -> Connection:
        auth = AuthSettings(**self.auth.model_dump())
        return Connection(login_url=self.login_url, auth=auth, api_version=self.api_version, ca_bundle=self.ca_bundle,
                          allowed_hosts=tuple(self.allowed_hosts), timeout_seconds=self.timeout_seconds, name=name)


class EventLogKind(StrEnum):
    EMBEDDED = "embedded"
    KAFKA = "kafka"


class KafkaConfig(BaseModel):
    model_config = _STRICT
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "segment-events"
    group_id: str = "salesforce-destination"
    dead_letter_topic: str = "segment-events-dlq"
    max_event_bytes: int = Field(1_000_000, ge=1, description="larger messages are dead-lettered")
    idempotent: bool = Field(True, description="idempotent producer (needs a broker with InitProducerId; the "
                             "tansu test broker's memory storage lacks it)")
    topic_sources: dict[str, str] = Field(default_factory=dict, description="topic → source for plain Segment JSON")
    append_timeout_seconds: float = Field(5.0, gt=0, description="an append the broker has not acknowledged by "
                                          "then fails: the ingest API answers 503 (retry) instead of waiting")


class EventLogConfig(BaseModel):
    model_config = _STRICT
    kind: EventLogKind = EventLogKind.EMBEDDED
    path: Path = Path(".destination/events.db")
    partitions: int = Field(8, ge=1)


class BatchingConfig(BaseModel):
    model_config = _STRICT
    rest_size: int = Field(200, ge=1, le=200)
    bulk_size: int = Field(1000, ge=1, le=150_000_000)
    linger_ms: int = Field(500, ge=0)
    max_pending: int = Field(10_000, ge=1, description="operations held before the consumer is paused")
    max_attempts: int = Field(6, ge=1, description="per-record retries of transient failures")


class BudgetConfig(BaseModel):
    model_config = _STRICT
    ceiling: float = Field(0.8, gt=0, le=1, description="share of the daily API allocation delivery may use")
    recheck_seconds: float = Field(30.0, gt=0, description="while paused: how often to re-read /limits")


class HttpConfig(BaseModel):
    model_config = _STRICT
    host: str = "127.0.0.1"
    port: int = 8080
    max_connections: int = Field(2048, ge=1, description="open connections and requests in flight beyond "
                                 "which new ones get 503 (uvicorn's limit_concurrency)")
    header_timeout_seconds: float = Field(10.0, gt=0, description="a connection that has not sent a complete "
                                          "request line and headers by then is closed (slowloris)")
    keep_alive_seconds: float = Field(5.0, gt=0, description="an idle keep-alive connection is closed after this")
    max_header_bytes: int = Field(64 * 1024, ge=1024, description="largest request line and headers; a "
                                  "connection sending more gets 431 and is closed")


class IngestConfig(BaseModel):
    """Limits of the ingest API, so no one client or request can stall or exhaust it (docs/operations.md)."""

    model_config = _STRICT
    max_body_bytes: int = Field(500 * 1024, ge=1024, description="largest request body, as sent and once "
                                "decompressed (Segment's 500 KB); larger ones get 413 while still being read")
    body_timeout_seconds: float = Field(30.0, gt=0, description="a request body not fully received by then "
                                        "gets 408 (a client trickling its body cannot hold a request open)")
    rate_per_key: float = Field(1000.0, ge=0, description="requests per second per write key (token bucket); "
                                "beyond it 429 with Retry-After; 0 turns the limit off")
    burst_per_key: int = Field(2000, ge=1, description="requests a write key may send at once above its rate")
    dedup_window_seconds: float = Field(24 * 3600, gt=0, description="a messageId seen again within this "
                                        "window is acknowledged but not logged twice")
    dedup_max_entries: int = Field(200_000, ge=1, description="messageIds the dedup window holds (about 200 "
                                   "bytes each); beyond it the oldest are forgotten first")


class EmulatorConfig(BaseModel):
    """The bundled emulator, started by `destination run` when no connection is configured."""

    model_config = _STRICT
    enabled: bool = True
    port: int = 8081
    tls_dir: Path = Path(".destination/emulator-tls")
    db: Path | None = Path(".destination/emulator.db")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESTINATION_", env_nested_delimiter="__", extra="forbid")
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    actions_dir: Path = Path("actions")
    event_log: EventLogConfig = Field(default_factory=EventLogConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    sync_log_url: str = "sqlite:///.destination/sync-log.db"
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    emulator: EmulatorConfig = Field(default_factory=EmulatorConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings, file_secret_settings  # the environment overrides the file


def load_settings(path: Path | str | None, env: dict[str, str] | None = None) -> Settings:
    """Settings from a YAML file (embedded defaults when it does not exist) and the environment."""
    data: dict[str, Any] = {}
    if path is not None and Path(path).exists():
        data = yaml.safe_load(substitute(Path(path).read_text(), env)) or {}
    return Settings(**data)
