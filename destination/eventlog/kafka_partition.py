"""The Kafka producer's key → partition choice, computed once per append instead of by aiokafka per message.

Same answer as aiokafka's `DefaultPartitioner` (and the Java client's): murmur2 of the key bytes, positive,
modulo the number of partitions, indexing the topic's partitions sorted by id. aiokafka's murmur2 is
byte-by-byte Python (5-10 µs a key) and its send() rebuilds the topic's partition lists for every message;
this one reads 32-bit words and remembers recent keys (a user sends many events).
"""

from __future__ import annotations

import functools
import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@functools.lru_cache(maxsize=64)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


@functools.lru_cache(maxsize=65_536)
def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as aiokafka.partitioner.murmur2."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length // 4
    if whole:
        for k in _words(whole).unpack_from(data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            k = (k * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    extra = length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition of a key among the topic's partitions (sorted by id)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
