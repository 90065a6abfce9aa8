"""End-to-end tests: a broker for the Kafka variant."""

from kafka_broker import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
