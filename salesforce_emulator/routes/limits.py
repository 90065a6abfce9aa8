"""Routes: GET /limits — the org's allocations and what remains (§6.4)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from .deps import State, Version

router = APIRouter()


@router.get("/limits")
@router.get("/limits/")
async def limits(state: State, version: Version) -> JSONResponse:
    usage = state.usage
    daily = {"Max": usage.daily_max, "Remaining": max(usage.daily_max - usage.total, 0)}
    jobs = len(state.bulk.jobs)
    batches_key = "DailyBulkApiBatches" if version >= 49 else "DailyBulkApiRequests"
    return JSONResponse({
        "DailyApiRequests": daily,
        batches_key: {"Max": 15000, "Remaining": max(15000 - jobs, 0)},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        "SingleEmail": {"Max": 15, "Remaining": 15},
    })
