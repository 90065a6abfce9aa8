"""Acknowledgement: which input offsets may be committed, given which events have outcomes (step 8).

Events of one partition finish out of order (batches per object and mode run side by side); an offset
may be committed only when it and every offset before it are done, so a crash never skips an event.
Offsets are read in increasing order per partition, so everything below the lowest in-flight offset
is done; gaps (compaction, transaction markers) need no special case.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)  # a partition (eventlog.base.Partition in the consume loop)


@dataclass(slots=True)
class _Partition:
    pending: set[int] = field(default_factory=set)
    highest_done: int = -1
    committed: int = -1          # the next offset to read, as last committed


class OffsetTracker(Generic[P]):
    """Tracks in-flight offsets per partition; `committable()` gives the offsets safe to commit."""

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}

    def started(self, partition: P, offset: int) -> None:
        """An event was read and is now in flight (call in read order)."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _Partition(committed=offset)
        state.pending.add(offset)

    def finished(self, partition: P, offset: int) -> None:
        """The event at this offset has its outcome recorded (ignored for a partition revoked since)."""
        state = self._partitions.get(partition)
        if state is None:
            return
        state.pending.discard(offset)
        if offset > state.highest_done:
            state.highest_done = offset

    def in_flight(self, partition: P | None = None) -> int:
        """Number of events read but without an outcome (in one partition, or in all)."""
        if partition is not None:
            state = self._partitions.get(partition)
            return len(state.pending) if state else 0
        return sum(len(s.pending) for s in self._partitions.values())

    def committable(self) -> dict[P, int]:
        """Per partition whose position moved, the offset to commit (Kafka semantics: next to read)."""
        moved: dict[P, int] = {}
        for partition, state in self._partitions.items():
            safe = min(state.pending) if state.pending else state.highest_done + 1
            if safe > state.committed:
                moved[partition] = safe
        return moved

    def committed(self, offsets: dict[P, int]) -> None:
        """Record that these offsets were committed to the log."""
        for partition, offset in offsets.items():
            state = self._partitions.get(partition)
            if state is not None:
                state.committed = max(state.committed, offset)

    def forget(self, partition: P) -> None:
        """The partition was revoked in a rebalance: its new owner resumes from the last commit."""
        self._partitions.pop(partition, None)
