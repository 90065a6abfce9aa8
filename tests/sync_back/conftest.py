"""Sync-back tests: a Kafka broker (tansu) for the published changes."""

from kafka_broker import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
