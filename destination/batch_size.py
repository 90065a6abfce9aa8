"""Adaptive write sizes per object: a write call that the customer's org fails as a whole (a trigger or flow
hitting an Apex governor limit: CPU time, SOQL queries, DML rows) is split in halves until the failure is
isolated, and later calls for that object shrink to the size that failed, halved (multiplicative decrease);
every call that goes through grows the size back by a step (additive increase) until it no longer limits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .salesforce.errors import SalesforceError
from .salesforce.results import RecordResult

log = logging.getLogger("destination.batch_size")

ORG_BATCH_CODES = frozenset({"CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "CANNOT_EXECUTE_FLOW_TRIGGER"})
# Governor-limit messages: the whole transaction failed because of how much it carried, not one record.
_LIMIT_MARKERS = ("System.LimitException", "Apex CPU time limit exceeded", "Too many SOQL queries",
                  "Too many DML", "Too many query rows")


def org_batch_error(error: SalesforceError | None) -> bool:
    """Whether a record's error is a batch-level failure caused by the org's own automation."""
    return error is not None and error.code in ORG_BATCH_CODES and any(m in error.message for m in _LIMIT_MARKERS)


def batch_failed(results: Sequence[RecordResult]) -> list[int]:
    """Indexes of the records that failed with one and the same org batch-level error (none when fewer than 2)."""
    failed = [i for i, r in enumerate(results) if not r.success and org_batch_error(r.error)]
    if len(failed) < 2:
        return []
    first = results[failed[0]].error
    return [i for i in failed if results[i].error == first]


class BatchSizes:
    """The current largest write per (object, operation, mode); None = not limited."""

    def __init__(self, growth_steps: int = 10) -> None:
        self.growth_steps = growth_steps  # successful calls to grow back from a halving to the size that failed
        self._size: dict[tuple[str, str, str], int] = {}
        self._step: dict[tuple[str, str, str], int] = {}

    def size(self, key: tuple[str, str, str]) -> int | None:
        return self._size.get(key)

    def shrink(self, key: tuple[str, str, str], failed_size: int) -> None:
        """A call of `failed_size` records failed as a whole: halve (never below 1)."""
        size = max(1, min(failed_size, self._size.get(key, failed_size)) // 2)
        self._size[key] = size
        self._step[key] = max(1, failed_size // self.growth_steps)
        log.warning("%s %s: the org failed a call of %d records as a whole; writing at most %d per call",
                    key[0], key[1], failed_size, size)

    def grow(self, key: tuple[str, str, str]) -> None:
        """A call went through: add a step; once the size is twice what failed, stop limiting."""
        size = self._size.get(key)
        if size is None:
            return
        step = self._step.get(key, 1)
        size += step
        if size >= step * self.growth_steps * 2:
            del self._size[key]
            self._step.pop(key, None)
            log.info("%s %s: write size no longer limited", key[0], key[1])
            return
        self._size[key] = size
