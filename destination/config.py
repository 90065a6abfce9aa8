"""Settings: `destination.yaml` (with `${VAR}` substitution) overridden by `DESTINATION_*` environment
variables (nested with `__`, e.g. DESTINATION_BATCHING__LINGER_MS=200). Secrets come from the environment
or files, never inline."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .actions.loader import ConfigError, ConfigProblem, substitute, yaml_problem
from .actions.loader import _locate as locate
from .actions.loader import _positions as positions_of
from .retry import RetryPolicy
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
    max_connections: int = Field(32, ge=1, le=256, description="HTTPS connections to this org held open and reused "
                                 "(all kept alive between requests, so a busy writer makes no new TLS handshakes); "
                                 "about the number of requests in flight at once: one batch per object and "
                                 "operation kind, plus lookups, Bulk polling and sync-back")

    def connection(self, name: str) -> Connection:
        auth = AuthSettings(**self.auth.model_dump())
        return Connection(login_url=self.login_url, auth=auth, api_version=self.api_version, ca_bundle=self.ca_bundle,
                          allowed_hosts=tuple(self.allowed_hosts), timeout_seconds=self.timeout_seconds, name=name,
                          max_connections=self.max_connections)


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
    # consumer-group timing (aiokafka's defaults): how soon a member that died without leaving (SIGKILL, a
    # lost node) is dropped and its partitions go to the others
    session_timeout_ms: int = Field(10_000, ge=1, description="a member the group coordinator hears no "
                                    "heartbeat from for this long is dropped and its partitions reassigned")
    heartbeat_interval_ms: int = Field(3_000, ge=1, description="how often a member heartbeats; below a third of "
                                       "session_timeout_ms")
    max_poll_interval_ms: int = Field(300_000, ge=1, description="a member that does not read for this long leaves "
                                      "the group (its partitions are reassigned)")
    rebalance_timeout_ms: int | None = Field(None, ge=1, description="how long the coordinator waits for members "
                                             "to rejoin during a rebalance (null: session_timeout_ms); a broker "
                                             "that waits this long for a dead member stalls the group as long")

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> KafkaConfig:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("kafka.heartbeat_interval_ms must be below kafka.session_timeout_ms")
        return self


class EventLogConfig(BaseModel):
    model_config = _STRICT
    kind: EventLogKind = EventLogKind.EMBEDDED
    path: Path = Path(".destination/events.db")
    partitions: int = Field(8, ge=1)


class BatchingConfig(BaseModel):
    model_config = _STRICT
    rest_size: int = Field(200, ge=1, le=200)
    bulk_size: int = Field(1000, ge=1, le=150_000_000)
    linger_ms: int = Field(500, ge=0, description="a batch that is not full is written after this long")
    window_ms: int = Field(0, ge=0, description="a full batch is held up to this long (from its first event) "
                           "while the batcher has room, so later events of its records join its write (60000 "
                           "writes records whose events arrive far apart once); 0 writes it at once")
    max_pending: int = Field(60_000, ge=1, description="operations held before the consumer is paused")
    max_attempts: int | None = Field(None, ge=1, description="deprecated: use retry.max_attempts (when set, it "
                                     "overrides it)")


class RetryConfig(BaseModel):
    """The one retry policy: every retry or wait (requests, records, rate-limit and budget pauses, Bulk
    polling, token refresh) is bounded by attempts and by a maximum total time; then RETRY_EXHAUSTED."""

    model_config = _STRICT
    max_attempts: int = Field(15, ge=1, description="sends of one request or record before it fails with "
                              "RETRY_EXHAUSTED (pauses for the API allowance are not sends)")
    max_elapsed_seconds: float = Field(300.0, gt=0, description="time from the first send of a request or "
                                       "record, waits and pauses included, after which it fails with "
                                       "RETRY_EXHAUSTED; covers a Salesforce outage of up to this long")
    backoff_initial_seconds: float = Field(0.5, gt=0, description="wait after the first failure; doubles "
                                           "after each further one, jittered (between half and all of it)")
    backoff_max_seconds: float = Field(30.0, gt=0, description="cap on one backoff wait")
    bulk_job_max_seconds: float = Field(3600.0, gt=0, description="how long a Bulk job may run before it is "
                                        "aborted (its processed rows keep their results; the rest fail "
                                        "RETRY_EXHAUSTED)")

    def policy(self, max_attempts: int | None = None) -> RetryPolicy:
        """The policy these settings describe (`max_attempts` overrides, for the deprecated setting)."""
        return RetryPolicy(max_attempts=max_attempts or self.max_attempts, max_elapsed_seconds=self.max_elapsed_seconds,
                           backoff_initial_seconds=self.backoff_initial_seconds,
                           backoff_max_seconds=self.backoff_max_seconds)


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
    allowed_hosts: list[str] = Field(default_factory=list, description="names the `Host` header may carry (besides "
                                     "localhost, 127.0.0.1, ::1 and `host`); others get 400 (DNS rebinding). "
                                     "`*` accepts any (only behind a proxy that checks it)")
    operator_listen: str | None = Field(None, pattern=r"^\[?[A-Za-z0-9.:\-]+\]?:[0-9]{1,5}$",
                                        description="host:port of a separate listener for the operator endpoints "
                                        "(sync log, preview, metrics, docs); the main port then serves ingest only")


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


class RetentionConfig(BaseModel):
    """How long stored rows are kept (docs/operations.md, "Retention"); 0 or null keeps them forever. A
    delivering process prunes in the background, in bounded chunks."""

    model_config = _STRICT
    sync_log_days: float | None = Field(30.0, ge=0, description="sync-log rows (outcomes) last updated longer "
                                        "ago are deleted, except failed ones (see dead_letter_days)")
    dead_letter_days: float | None = Field(90.0, ge=0, description="dead letters, and failed sync-log rows (what "
                                           "`replay` re-drives), are kept this long; at least sync_log_days")
    event_log_days: float | None = Field(7.0, ge=0, description="embedded event log: events appended longer ago "
                                         "are deleted once committed (Kafka topics: the broker's retention.ms)")
    interval_seconds: float = Field(3600.0, gt=0, description="time between two pruning runs (the first runs "
                                    "at start)")
    batch_rows: int = Field(1000, ge=1, le=100_000, description="rows deleted per transaction")

    @model_validator(mode="after")
    def _dead_letters_outlive_outcomes(self) -> RetentionConfig:
        sync_log, dead_letters = self.sync_log_days or None, self.dead_letter_days or None
        if dead_letters is not None and (sync_log is None or dead_letters < sync_log):
            raise ValueError("dead_letter_days must be at least sync_log_days (0 or null = forever): failed "
                             "outcomes and dead letters are what replay needs")
        return self


class Scope(StrEnum):
    """What an operator token may do; each scope includes the ones before it."""

    READ = "read"  # sync log (API and page), preview, metrics, docs
    REPLAY = "replay"  # re-drive events
    ADMIN = "admin"  # everything, including state-changing endpoints added later


class OperatorTokenConfig(BaseModel):
    """One operator token: where its value is (a file or an environment variable), or only its SHA-256."""

    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9_.@\-]+$", description="who holds it (shown in logs, never the token)")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the token")
    token_file: Path | None = Field(None, description="a file holding the token (mode 0600)")
    token_env: str | None = Field(None, description="an environment variable holding the token")
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.READ])

    @model_validator(mode="after")
    def _one_source(self) -> OperatorTokenConfig:
        if sum(x is not None for x in (self.sha256, self.token_file, self.token_env)) != 1:
            raise ValueError("give exactly one of sha256, token_file, token_env")
        return self


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


class ReadinessConfig(BaseModel):
    """What /readyz needs beyond the state the parts keep (docs/operations.md, "Health and readiness")."""

    model_config = _STRICT
    token_recheck_seconds: float = Field(30.0, gt=0, description="while a connection holds no usable Salesforce "
                                         "token (none yet, or the last request was refused), one is requested this "
                                         "often in the background (never per probe)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESTINATION_", env_nested_delimiter="__", extra="forbid")
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    actions_dir: Path = Path("actions")
    event_log: EventLogConfig = Field(default_factory=EventLogConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    sync_log_url: str = "sqlite:///.destination/sync-log.db"
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    emulator: EmulatorConfig = Field(default_factory=EmulatorConfig)
    operator_tokens: list[OperatorTokenConfig] = Field(
        default_factory=list, description="tokens for the operator endpoints; none configured = those endpoints "
        "refuse everyone")
    operator_token_file: Path | None = Field(None, description="shortcut for one operator token with all scopes "
                                             "(named `token-file`), read from this file "
                                             "(DESTINATION_OPERATOR_TOKEN_FILE in deployments)")
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    readiness: ReadinessConfig = Field(default_factory=ReadinessConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings, file_secret_settings  # the environment overrides the file


def load_settings(path: Path | str | None, env: dict[str, str] | None = None) -> Settings:
    """Settings from a YAML file (embedded defaults when it does not exist) and the environment. Problems are
    a ConfigError naming the file, line and key, never the value (it may be a password)."""
    data: dict[str, Any] = {}
    positions: dict[tuple[Any, ...], tuple[int, int]] = {}
    file = str(path) if path is not None else "settings"
    raw: str | None = None
    if path is not None:
        try:
            raw = Path(path).read_text()
        except FileNotFoundError:
            raw = None  # embedded defaults
        except OSError as exc:  # e.g. the service user may not read it: a config problem, not a traceback
            raise ConfigError([ConfigProblem(file, None, None, "", f"cannot be read: {exc.strerror}")]) from None
    if raw is not None:
        text = substitute(raw, env)
        try:
            node = yaml.compose(text)
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError([_yaml_problem(file, raw, exc)]) from None
        if not isinstance(data, dict):
            raise ConfigError([ConfigProblem(file, 1, 1, "", "the settings file is a mapping of keys")])
        positions = positions_of(node) if node is not None else {}
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            line, column, where = locate(positions, tuple(error["loc"]))
            where = where or ".".join(str(p) for p in error["loc"])
            problems.append(ConfigProblem(file, line, column, where, error["msg"].removeprefix("Value error, ")))
        raise ConfigError(problems) from None


def _yaml_problem(file: str, raw: str, exc: yaml.YAMLError) -> ConfigProblem:
    """A YAML error without the offending text: PyYAML's message quotes the line, which may hold a secret."""
    mark = getattr(exc, "problem_mark", None)
    problem = yaml_problem(exc)
    key = ""
    if mark is not None:
        lines = raw.splitlines()
        line_text = lines[mark.line] if mark.line < len(lines) else ""
        key = line_text.split(":", 1)[0].strip().lstrip("- ") if ":" in line_text else ""
    return ConfigProblem(file, mark.line + 1 if mark else None, mark.column + 1 if mark else None, key,
                         f"not valid YAML: {problem}")
