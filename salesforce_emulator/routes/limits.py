"""Routes: GET /limits — the org's allocations and what remains (§6.4)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from .deps import State, Version

router = APIRouter()

BULK_BATCHES_PER_DAY = 15_000
RECORDS_PER_BULK_BATCH = 10_000  # Bulk 2.0 splits each job's data into internal batches of this size (§5.7)

# Allocations the emulator reports but never consumes: values of a Developer Edition-sized org.
_FIXED = {
    "DailyBulkV2QueryFileStorageMB": 976_562,
    "DailyBulkV2QueryJobs": 10_000,
    "DailyAsyncApexExecutions": 250_000,
    "DailyStreamingApiEvents": 10_000,
    "HourlyPublishedPlatformEvents": 50_000,
    "DataStorageMB": 1024,
    "FileStorageMB": 1024,
    "SingleEmail": 15,
    "MassEmail": 10,
}


def _limit(maximum: int, used: int = 0) -> dict[str, int]:
    return {"Max": maximum, "Remaining": max(maximum - used, 0)}


def bulk_batches_used(jobs: Any) -> int:
    """Internal Bulk 2.0 batches of the jobs the emulator still holds: one per 10,000 rows (at least one a job)."""
    return sum(max(1, math.ceil(len(job.results) / RECORDS_PER_BULK_BATCH))
               for job in jobs.values() if job.content is not None)


@router.get("/limits")
@router.get("/limits/")
async def limits(state: State, version: Version) -> JSONResponse:
    """Max and Remaining per allocation; the Bulk batches key is DailyBulkApiRequests up to v48."""
    usage = state.usage
    batches_key = "DailyBulkApiBatches" if version >= 49 else "DailyBulkApiRequests"
    body = {
        "DailyApiRequests": _limit(usage.daily_max, usage.total),
        batches_key: _limit(BULK_BATCHES_PER_DAY, bulk_batches_used(state.bulk.jobs)),
    }
    body |= {name: _limit(maximum) for name, maximum in _FIXED.items()}
    return JSONResponse(body)
