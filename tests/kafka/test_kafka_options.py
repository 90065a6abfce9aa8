"""Kafka connection settings: TLS and SASL reach aiokafka's producer and consumer, topic creation is opt-in,
and a new group's starting offset is a setting."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from destination.config import KafkaConfig, load_settings
from destination.eventlog.kafka import KafkaEventLog
from destination.eventlog.kafka_options import client_options


def test_plaintext_is_the_default_and_passes_only_the_bootstrap_servers() -> None:
    assert client_options(KafkaConfig(bootstrap_servers="k1:9092,k2:9092")) == {
        "bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "PLAINTEXT"}


async def test_sasl_scram_over_tls_with_a_private_ca_and_a_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("destination.example")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    config = KafkaConfig(bootstrap_servers="broker:9093", security={
        "protocol": "SASL_SSL", "ca_file": tmp_path / "ca.pem", "cert_file": tmp_path / "client.pem",
        "key_file": tmp_path / "client.key", "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "dest",
        "sasl_password": "s3cret"})
    options = client_options(config)
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": "broker:9093", "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "dest",
                       "sasl_plain_password": "s3cret"}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert any("issuer" in c for c in context.get_ca_certs())  # the private CA is the trust anchor
    producer, consumer = AIOKafkaProducer(**client_options(config)), AIOKafkaConsumer(**client_options(config))
    admin = AIOKafkaAdminClient(**client_options(config))  # each client accepts the options
    await producer.stop()  # closed though never started: an unclosed client is a ResourceWarning
    await consumer.stop()
    await admin.close()


def test_settings_refuse_sasl_without_credentials_and_a_certificate_without_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs sasl_username and sasl_password"):
        KafkaConfig(security={"protocol": "SASL_PLAINTEXT", "sasl_username": "dest"})
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        KafkaConfig(security={"protocol": "SSL", "cert_file": tmp_path / "c.pem"})


def test_the_sasl_password_comes_from_the_environment(tmp_path: Path) -> None:
    settings = tmp_path / "destination.yaml"
    settings.write_text("kafka:\n  security: {protocol: SASL_SSL, sasl_mechanism: SCRAM-SHA-512,\n"
                        "             sasl_username: dest, sasl_password: '${KAFKA_PASSWORD}'}\n")
    loaded = load_settings(settings, env={"KAFKA_PASSWORD": "from-env"})
    assert loaded.kafka.security.sasl_password == "from-env"
    assert "from-env" not in settings.read_text()


async def test_topics_are_created_only_when_enabled_with_the_configured_partitions(kafka_bootstrap: str) -> None:
    name = uuid.uuid4().hex[:8]
    off = KafkaConfig(bootstrap_servers=kafka_bootstrap, topic=f"off-{name}", dead_letter_topic=f"offd-{name}",
                      idempotent=False)
    on = KafkaConfig(bootstrap_servers=kafka_bootstrap, topic=f"on-{name}", dead_letter_topic=f"ond-{name}",
                     idempotent=False, create_topics={"enabled": True, "partitions": 3, "replication_factor": 1})
    async with KafkaEventLog(on):
        pass
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        async with KafkaEventLog(off):
            pass
        topics = set(await admin.list_topics())
        assert {f"on-{name}", f"ond-{name}"} <= topics
        assert f"off-{name}" not in topics and f"offd-{name}" not in topics
        described = await admin.describe_topics([f"on-{name}"])
        assert len(described[0]["partitions"]) == 3
    finally:
        await admin.close()


def test_a_new_groups_starting_offset_is_a_setting() -> None:
    assert KafkaConfig().auto_offset_reset == "earliest"
    assert KafkaConfig(auto_offset_reset="latest").auto_offset_reset == "latest"
    with pytest.raises(ValidationError):
        KafkaConfig(auto_offset_reset="middle")


async def test_the_consumer_group_timing_is_a_setting_that_reaches_the_consumer(kafka_bootstrap: str) -> None:
    from destination.eventlog.kafka import KafkaLogConsumer

    defaults = KafkaConfig()
    assert (defaults.session_timeout_ms, defaults.heartbeat_interval_ms, defaults.max_poll_interval_ms,
            defaults.rebalance_timeout_ms) == (10_000, 3_000, 300_000, None)  # aiokafka's own defaults
    with pytest.raises(ValidationError, match="heartbeat_interval_ms must be below"):
        KafkaConfig(session_timeout_ms=3_000, heartbeat_interval_ms=3_000)
    name = uuid.uuid4().hex[:8]
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, topic=f"t-{name}", group_id=f"g-{name}",
                         dead_letter_topic=f"d-{name}", idempotent=False, session_timeout_ms=6_000,
                         heartbeat_interval_ms=1_000, max_poll_interval_ms=60_000,
                         create_topics={"enabled": True, "partitions": 1, "replication_factor": 1})
    reader = KafkaLogConsumer(config, {"web"})
    await reader.start()
    try:
        consumer = reader._consumer
        assert consumer is not None
        assert (consumer._session_timeout_ms, consumer._heartbeat_interval_ms, consumer._max_poll_interval_ms,
                consumer._rebalance_timeout_ms) == (6_000, 1_000, 60_000, 6_000)
    finally:
        await reader.stop()
