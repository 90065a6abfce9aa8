"""The consume step alone, in process: the delivery benchmark's events as aiokafka hands them over (records of a
producer's topic: no receivedAt, the source in a header) → KafkaLogConsumer.fetch (decode, normalise) → route
(trigger, generated mapper). Prints CPU µs per event (process_time, median of the runs, the garbage collector
set as `destination run` sets it) for the decode, the route and both.
`python -m bench.consume_step [--events N] [--runs N]`; PYTHONPATH=<tree> measures another checkout."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord, TopicPartition

from destination.actions.loader import load_text
from destination.commands.run import _settle_garbage_collector
from destination.config import KafkaConfig
from destination.eventlog.base import LogRecord
from destination.eventlog.kafka import KafkaLogConsumer
from destination.route import route

from .delivery_run import ACTIONS, _events

TOPIC = "events"
_TP = TopicPartition(TOPIC, 0)


class _Fetched:
    """aiokafka's consumer as `fetch` uses it (getmany), over records held in memory: the broker and aiokafka's
    own unpacking are left out, so what is measured is this project's code."""

    def __init__(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self.records = records
        self.at = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        del timeout_ms
        chunk = self.records[self.at:self.at + max_records]
        self.at += max_records
        return {_TP: chunk} if chunk else {}


def _records(n: int) -> list[ConsumerRecord[bytes, bytes]]:
    """What KafkaEventLog.append writes for the backlog_kafka_rest_near events, as aiokafka reads it back."""
    out = []
    for offset, event in enumerate(_events(n, n // 2, "near")):
        value, key = orjson.dumps(event.body), event.partition_key.encode()
        out.append(ConsumerRecord(TOPIC, 0, offset, 1_764_700_000_000 + offset // 50, 0, key, value, None, len(key),
                                  len(value), (("source", event.source.encode()),)))
    return out


async def _fetch_all(reader: KafkaLogConsumer) -> list[LogRecord]:
    out: list[LogRecord] = []
    while batch := await reader.fetch(500, wait_seconds=0.2):  # the consume loop's fetch size
        out += batch
    return out


def _once(reader: KafkaLogConsumer, sources: dict[str, Any], n: int) -> tuple[float, float]:
    reader._consumer = _Fetched(_records(n))  # aiokafka duck-typed: only getmany is used
    reader._read_from.clear()
    gc.collect()  # the previous run's records gone before the clock starts
    started = time.process_time()
    records = asyncio.run(_fetch_all(reader))
    decoded = time.process_time()
    ops = 0
    for record in records:
        assert record.event is not None, record.problem
        ops += len(route(sources, record.event))
    routed = time.process_time()
    assert ops == n
    return (decoded - started) / n * 1e6, (routed - decoded) / n * 1e6


def run(n: int = 40_000, runs: int = 5) -> dict[str, Any]:
    sources = {"bench": load_text(ACTIONS.format(mode="rest"), "bench.yaml")}
    reader = KafkaLogConsumer(KafkaConfig(bootstrap_servers="127.0.0.1:9", idempotent=False), sources)
    _once(reader, sources, min(n, 2000))  # warm: the action compiled, caches filled
    _settle_garbage_collector()  # the collector as `destination run` sets it
    results = [_once(reader, sources, n) for _ in range(runs)]
    decode = statistics.median(r[0] for r in results)
    routing = statistics.median(r[1] for r in results)
    total = statistics.median(r[0] + r[1] for r in results)
    return {"benchmark": "consume_step", "events": n, "runs": runs, "decode_cpu_us_per_event": round(decode, 2),
            "route_cpu_us_per_event": round(routing, 2), "cpu_us_per_event": round(total, 2),
            "each_run_us": [round(r[0] + r[1], 2) for r in results]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.consume_step")
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.runs)))
