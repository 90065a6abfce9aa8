"""Settings: `destination.yaml` (with `${VAR}` substitution) overridden by `DESTINATION_*` environment
variables (nested with `__`, e.g. DESTINATION_BATCHING__LINGER_MS=200). Secrets come from the environment
or files, never inline."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
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


class KafkaProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSecurityConfig(BaseModel):
    """TLS and SASL towards the brokers (the same for the producer, consumers and the admin client)."""

    model_config = _STRICT
    protocol: KafkaProtocol = KafkaProtocol.PLAINTEXT
    ca_file: Path | None = Field(None, description="CA bundle the brokers' certificates are checked against "
                                 "(default: the system CAs)")
    cert_file: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    key_file: Path | None = Field(None, description="the client certificate's private key (PEM)")
    key_password: str | None = Field(None, description="the key's passphrase; from the environment")
    check_hostname: bool = True
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    sasl_username: str | None = None
    sasl_password: str | None = Field(None, description="from the environment (${KAFKA_PASSWORD}), never inline")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurityConfig:
        if self.protocol in (KafkaProtocol.SASL_PLAINTEXT, KafkaProtocol.SASL_SSL) and \
                not (self.sasl_username and self.sasl_password):
            raise ValueError(f"protocol {self.protocol.value} needs sasl_username and sasl_password")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS)")
        return self


class TopicCreationConfig(BaseModel):
    """Whether the destination creates its topics at start (off: a platform team usually owns topics)."""

    model_config = _STRICT
    enabled: bool = False
    partitions: int = Field(8, ge=1, description="bounds how many consumers of one group can share the work")
    replication_factor: int = Field(3, ge=1)


class KafkaConfig(BaseModel):
    model_config = _STRICT
    bootstrap_servers: str = "127.0.0.1:9092"
    security: KafkaSecurityConfig = Field(default_factory=KafkaSecurityConfig)
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="where a consumer group without committed offsets starts: earliest (no event "
        "ingested before the group's first start is missed) or latest (a new or renamed group does not replay "
        "the topic's history into Salesforce)")
    create_topics: TopicCreationConfig = Field(default_factory=TopicCreationConfig)
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


class EmulatorConfig(BaseModel):
    """The bundled emulator, started by `destination run` when no connection is configured."""

    model_config = _STRICT
    enabled: bool = True
    port: int = 8081
    tls_dir: Path = Path(".destination/emulator-tls")
    db: Path | None = Path(".destination/emulator.db")


class LoggingConfig(BaseModel):
    """What the process logs and how (docs/operations.md, "Logs")."""

    model_config = _STRICT
    format: Literal["text", "json"] = Field("text", description="text lines, or JSON lines (one object per line: "
                                            "time, level, logger, message, exception, extra fields)")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    repeat_window_seconds: float = Field(30.0, gt=0, description="a warning or error repeated (same logger and "
                                         "message template) is logged once, then once per window with a count")
    progress_seconds: float = Field(60.0, ge=0, description="how often a delivering process logs a progress "
                                    "line (events in, outcomes by status, API calls, consumer lag); 0 = never")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


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
    emulator: EmulatorConfig = Field(default_factory=EmulatorConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

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
