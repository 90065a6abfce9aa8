"""Kafka event log: an idempotent producer with acks=all (key = userId / anonymousId / groupId, source in a
header), and a consumer group with manual commits and a rebalance listener."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from ..actions.codegen import maker
from ..config import KafkaConfig
from ..events import Event
from ..health import Health
from ..ingest.segment import BadRequest, read_logged
from .base import EventLog, LogConsumer, LogRecord, LogUnavailable, Partition, record_identity
from .kafka_options import client_options, group_options
from .kafka_partition import partition_of

log = logging.getLogger("destination.kafka")
_UNREACHABLE = (KafkaError, OSError, TimeoutError)  # what aiokafka raises while the broker is away
SOURCE_HEADER = "source"
#: Event(source, body, checked), slot by slot: a frozen dataclass's __init__ sets each field through
#: object.__setattr__, three times the cost, once per record read
_event = maker(Event)


async def ensure_topics(config: KafkaConfig) -> None:
    """Create the event and dead-letter topics when they do not exist (only when `create_topics.enabled`)."""
    creation = config.create_topics
    if not creation.enabled:
        return
    admin = AIOKafkaAdminClient(**client_options(config))
    try:
        await admin.start()  # inside the try: a failed start leaves the client's connections to close
        for topic in (config.topic, config.dead_letter_topic):
            try:
                await admin.create_topics([NewTopic(topic, num_partitions=creation.partitions,
                                                    replication_factor=creation.replication_factor)])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


class KafkaEventLog(EventLog):
    """Appends are acknowledged by all in-sync replicas before the ingest API answers 200."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._producer: AIOKafkaProducer | None = None
        self.appends = Health()
        self._append_failed_at = 0.0  # wall clock, as aiokafka's metadata times
        self._brokers = BrokerWatch()

    async def open(self) -> None:
        await ensure_topics(self.config)
        self._producer = AIOKafkaProducer(**client_options(self.config), acks="all",
                                          enable_idempotence=self.config.idempotent, linger_ms=2,
                                          max_batch_size=1_000_000)
        try:
            await self._producer.start()
        except BaseException:
            await self.close()  # a failed start (broker away) leaves the producer and its connections open
            raise

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def append(self, events: Sequence[Event]) -> None:
        """Raises when the broker has not acknowledged every event within `append_timeout_seconds` (it is
        down or unreachable): the ingest API then answers 503 and the client retries. A send abandoned here
        may still land later; that copy is a redelivery, which the sync log absorbs by messageId."""
        await self._acknowledged([(e.source, e.partition_key, orjson.dumps(e.body)) for e in events])

    async def append_encoded(self, source: str, bodies: Sequence[bytes], keys: Sequence[str]) -> None:
        await self._acknowledged([(source, key, body) for body, key in zip(bodies, keys, strict=True)])

    async def _acknowledged(self, records: list[tuple[str, str, bytes]]) -> None:
        """Send (source, ordering key, value) records; raises LogUnavailable as `append` says."""
        try:
            async with asyncio.timeout(self.config.append_timeout_seconds):
                await self._append(records)
        except _UNREACHABLE as exc:
            self.appends.failure(f"the broker did not acknowledge the last append: {exc!r}")
            self._append_failed_at = time.time()
            raise LogUnavailable(f"the broker did not acknowledge the append: {exc!r}") from exc
        self.appends.success()

    def readiness(self) -> str | None:
        """Started; the producer's last metadata request to the brokers succeeded (aiokafka makes one whenever
        a connection breaks); no append failed since the last that succeeded (within the hold)."""
        if self._producer is None:
            return "the Kafka producer is not started"
        client = self._producer.client
        problem = self._brokers.problem(client)
        if problem is None and self._brokers.answered_since(client, self._append_failed_at):
            self.appends.success()  # the brokers answered after the failed append: no longer held against it
        return problem or self.appends.failing()

    async def _append(self, records: list[tuple[str, str, bytes]]) -> None:
        assert self._producer is not None, "open() first"
        producer, topic = self._producer, self.config.topic
        known = producer.client.cluster.partitions_for_topic(topic)
        partitions = sorted(known) if known else None  # None: aiokafka waits for metadata and partitions
        futures = []
        for source, ordering_key, value in records:
            key = ordering_key.encode() or None
            partition = partition_of(key, partitions) if key is not None and partitions else None
            futures.append(await producer.send(topic, value=value, key=key, partition=partition,
                                               headers=[(SOURCE_HEADER, source.encode())]))
        # each future resolves with its batch, so awaiting them in turn suspends about once per batch;
        # gather would add an outer future and a done-callback per message
        try:
            for future in futures:
                await future
        except BaseException:
            for future in futures:
                future.add_done_callback(_retrieve)
            raise


def _retrieve(future: asyncio.Future[object]) -> None:
    """Mark the outcome of an abandoned send as seen (no "exception was never retrieved" noise)."""
    if not future.cancelled():
        future.exception()


METADATA_RECHECK_SECONDS = 5.0


class BrokerWatch:
    """Whether the brokers look reachable to an aiokafka client: its last metadata request succeeded. aiokafka
    makes one whenever a connection breaks, and keeps the times (private attributes, read defensively:
    missing ones read as healthy). After a failed one it asks again only after metadata_max_age_ms (5 min),
    so while it is failing a new one is asked for in the background, at most every METADATA_RECHECK_SECONDS
    (never per probe): a broker that is back is seen within seconds, by readiness and by the client."""

    def __init__(self) -> None:
        self._asked = 0.0

    @staticmethod
    def answered_since(client: Any, since: float) -> bool:
        """Whether a metadata request succeeded after `since` (wall-clock seconds)."""
        return bool(since) and getattr(getattr(client, "cluster", None), "_last_successful_refresh_ms", 0) > since * 1000

    def problem(self, client: Any) -> str | None:
        cluster = getattr(client, "cluster", None)
        tried = getattr(cluster, "_last_refresh_ms", 0)
        succeeded = getattr(cluster, "_last_successful_refresh_ms", 0)
        if tried <= succeeded:
            return None
        if time.monotonic() - self._asked >= METADATA_RECHECK_SECONDS:
            self._asked = time.monotonic()
            client.force_metadata_update().add_done_callback(_retrieve)
        return f"the brokers did not answer the last metadata request ({time.time() - tried / 1000:.0f} s ago)"


def _partition(tp: TopicPartition) -> Partition:
    return Partition(tp.topic, tp.partition)


def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The fetch position of a partition held, when known, without a request (consumer.position() may make
    one): aiokafka's partition state, read defensively."""
    try:
        state = consumer._subscription.subscription.assignment.state_value(tp)
        return int(state.position) if state is not None and state.has_valid_position else None
    except AttributeError:  # no assignment right now, or another aiokafka layout
        return None


class _Listener(ConsumerRebalanceListener):  # aiokafka ships no type hints: an Any base
    def __init__(self, owner: KafkaLogConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        self.owner.forget(revoked)
        if self.owner.on_revoked is not None and revoked:
            await self.owner.on_revoked([_partition(tp) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))
        self.owner.forget(assigned)  # read from their committed offsets again
        if self.owner.on_assigned is not None and assigned:
            await self.owner.on_assigned([_partition(tp) for tp in assigned])


class KafkaLogConsumer(LogConsumer):
    """A member of the consumer group; plain Segment JSON from any producer is accepted (source from the
    `source` header, else from the topic → source map)."""

    def __init__(self, config: KafkaConfig, known_sources: Collection[str]) -> None:
        self.config = config
        self.known_sources = set(known_sources)
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self.fetches = Health()
        self._brokers = BrokerWatch()
        # per partition held, the offset the lag counts from: what this reader committed, else the first offset
        # it read since it got the partition (its committed offset then)
        self._committed: dict[TopicPartition, int] = {}
        self._read_from: dict[TopicPartition, int] = {}
        self._stopped = False

    async def start(self) -> None:
        await ensure_topics(self.config)
        try:
            await self._start_clients()
        except BaseException:
            await self.stop()  # a failed start (broker away) leaves the clients started so far open
            raise

    async def _start_clients(self) -> None:
        topics = [self.config.topic, *[t for t in self.config.topic_sources if t != self.config.topic]]
        self._consumer = AIOKafkaConsumer(**client_options(self.config), **group_options(self.config),
                                          group_id=self.config.group_id, enable_auto_commit=False,
                                          auto_offset_reset=self.config.auto_offset_reset, max_poll_records=1000)
        await self._consumer.start()
        # subscribed after start: start() would otherwise wait for the group join (seconds, and longer while
        # the group still counts a killed member), holding up the process — the ingest API included
        self._consumer.subscribe(topics, listener=_Listener(self))
        self._dlq = AIOKafkaProducer(**client_options(self.config), acks="all",
                                     enable_idempotence=self.config.idempotent)
        await self._dlq.start()

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """Partitions that move (revoked, or assigned anew): their lag counts from their committed offsets."""
        for tp in partitions:
            self._committed.pop(tp, None)
            self._read_from.pop(tp, None)

    async def stop(self) -> None:
        self._stopped = True
        if self._consumer is not None:
            await self._consumer.stop()
        if self._dlq is not None:
            await self._dlq.stop()

    async def fetch(self, max_records: int = 500, wait_seconds: float = 0.5) -> list[LogRecord]:
        assert self._consumer is not None
        try:
            batches = await self._consumer.getmany(timeout_ms=int(wait_seconds * 1000), max_records=max_records)
        except _UNREACHABLE as exc:
            self.fetches.failure(f"the last fetch failed: {exc!r}")
            raise LogUnavailable(f"fetch failed: {exc!r}") from exc
        self.fetches.success()
        out = []
        for tp, messages in batches.items():
            if messages and tp not in self._committed:
                self._read_from.setdefault(tp, int(messages[0].offset))
            partition = _partition(tp)
            topic_source = self.config.topic_sources.get(tp.topic, "")
            out.extend([self._decode(partition, topic_source, message) for message in messages])
        return out

    def _decode(self, partition: Partition, topic_source: str, message: ConsumerRecord) -> LogRecord:
        """One record as read (`topic_source`: the source its topic maps to, "" for none)."""
        raw: bytes = message.value or b""
        offset = int(message.offset)
        named = b""
        for key, value in message.headers or ():  # the last `source` header counts, as a dict of them would
            if key == SOURCE_HEADER:
                named = value or b""
        source = named.decode() or topic_source
        if len(raw) > self.config.max_event_bytes:
            return LogRecord(partition, offset, None, raw[:1000], f"message larger than {self.config.max_event_bytes} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return LogRecord(partition, offset, None, raw, f"invalid JSON: {exc}")
        if not isinstance(body, dict):
            return LogRecord(partition, offset, None, raw, "an event must be a JSON object")
        if source not in self.known_sources:
            return LogRecord(partition, offset, None, raw, f"unknown source {source!r}")
        # the record's Kafka timestamp (the producer's send time, or the broker's with LogAppendTime) is stored
        # with it: a redelivery reads the same identity and receivedAt
        timestamp = message.timestamp if message.timestamp is not None and message.timestamp >= 0 else None
        # the identity is only used for an event without a messageId (read_logged's test for one)
        identity = "" if body.get("messageId") else record_identity(partition, offset, timestamp)
        try:
            body, checked = read_logged(body, identity, timestamp)
        except BadRequest as exc:  # what the HTTP API would refuse with a 400
            return LogRecord(partition, offset, None, raw, f"{exc.code}: {exc}")
        return LogRecord(partition, offset, _event(source, body, checked), raw)

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.commit({TopicPartition(p.topic, p.number): OffsetAndMetadata(o, "")
                                         for p, o in offsets.items()})
        except _UNREACHABLE as exc:  # includes CommitFailedError after a rebalance
            raise LogUnavailable(f"commit failed: {exc!r}") from exc
        held = self._consumer.assignment()
        for p, o in offsets.items():
            tp = TopicPartition(p.topic, p.number)
            if tp in held:
                self._committed[tp] = o

    def readiness(self) -> str | None:
        """Started and not stopped; the consumer's last metadata request to the brokers succeeded (it makes
        them as it fetches, joins and heartbeats, so a broker outage shows within seconds); no fetch failed
        since the last that succeeded. Looking for the group coordinator, or joining, counts as ready."""
        if self._consumer is None or self._stopped:
            return "the Kafka consumer is not running"
        return self._brokers.problem(self._consumer._client) or self.fetches.failing()

    async def lag(self) -> dict[Partition, int]:
        """High watermark (from the last fetch response) minus the committed offset, per partition held."""
        consumer = self._consumer
        if consumer is None or self._stopped:
            return {}
        out: dict[Partition, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            base = self._committed.get(tp, self._read_from.get(tp))
            if base is None:  # nothing read yet since it was assigned: it reads from its committed offset
                base = _position(consumer, tp)
            if highwater is not None and base is not None:
                out[_partition(tp)] = max(int(highwater) - base, 0)
        return out

    async def dead_letter(self, record: LogRecord, reason: str) -> None:
        assert self._dlq is not None
        await self._dlq.send_and_wait(self.config.dead_letter_topic, value=record.raw,
                                      headers=[("reason", reason.encode()[:1000]),
                                               ("origin", f"{record.partition}/{record.offset}".encode())])

