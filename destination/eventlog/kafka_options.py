"""How we connect to Kafka: TLS and SASL from settings, as aiokafka's client options (one place for the
producer, the consumer, the dead-letter producer and the admin client)."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from ..config import KafkaConfig


def client_options(config: KafkaConfig) -> dict[str, Any]:
    """aiokafka keyword arguments for `config`: bootstrap servers, security protocol, TLS context, SASL."""
    security = config.security
    options: dict[str, Any] = {"bootstrap_servers": config.bootstrap_servers,
                               "security_protocol": security.protocol.value}
    if security.protocol.value in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(config)
    if security.protocol.value in ("SASL_PLAINTEXT", "SASL_SSL"):
        options.update(sasl_mechanism=security.sasl_mechanism.value, sasl_plain_username=security.sasl_username,
                       sasl_plain_password=security.sasl_password)
    return options


def group_options(config: KafkaConfig) -> dict[str, Any]:
    """aiokafka consumer keyword arguments for the consumer-group timing in `config`."""
    return {"session_timeout_ms": config.session_timeout_ms, "heartbeat_interval_ms": config.heartbeat_interval_ms,
            "max_poll_interval_ms": config.max_poll_interval_ms,
            "rebalance_timeout_ms": config.rebalance_timeout_ms or config.session_timeout_ms}


def tls_context(config: KafkaConfig) -> ssl.SSLContext:
    """Verifies the brokers against `ca_file` (or the system CAs) and their host names; presents a client
    certificate when `cert_file` is set (mutual TLS)."""
    security = config.security
    context = create_ssl_context(cafile=security.ca_file, certfile=security.cert_file, keyfile=security.key_file,
                                 password=security.key_password)
    context.check_hostname = security.check_hostname
    return context
