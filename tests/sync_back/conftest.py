"""Sync-back tests: a Kafka broker (tansu) for the published changes; PostgreSQL for the sync log variant."""

from kafka_broker import kafka_bootstrap
from postgres_server import postgres_server_url, postgres_url

__all__ = ["kafka_bootstrap", "postgres_server_url", "postgres_url"]
