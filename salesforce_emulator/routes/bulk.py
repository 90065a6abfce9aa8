"""Routes: Bulk API 2.0 ingest (`/jobs/ingest`), relative to /services/data/{version}."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import UploadFile

from ..bulk import RESULT_KINDS, BulkJobs, IngestJob, JobRequest
from ..errors import NOT_FOUND, SfError, SfException
from .deps import CurrentSession, State, Version

router = APIRouter()

MULTIPART_MAX_CHARS = 100_000  # data sent inside a multipart create request


class _CreateBody(BaseModel):
    """POST /jobs/ingest body; the values are checked by BulkJobs.create, here only their JSON types."""

    model_config = ConfigDict(extra="ignore")
    object: str | None = None
    operation: str | None = None
    externalIdFieldName: str | None = None
    contentType: str | None = None
    columnDelimiter: str | None = None
    lineEnding: str | None = None
    assignmentRuleId: str | None = None


class _StateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: str | None = None


def _parse_json(raw: bytes | str, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(json.loads(raw or b"null") or {})
    except (ValueError, ValidationError) as exc:
        raise SfException(400, SfError("JSON_PARSER_ERROR", f"Unable to parse the request body: {exc}")) from exc


def _job(jobs: BulkJobs, job_id: str) -> IngestJob:
    job = jobs.get(job_id)
    if job is None:
        raise SfException(404, NOT_FOUND)
    return job


def _check(error: SfError | None) -> None:
    if error is not None:
        raise SfException(400, error)


def _request(body: _CreateBody) -> JobRequest:
    return JobRequest(**{f.name: getattr(body, f.name) for f in fields(JobRequest)})


async def _multipart_create(request: Request) -> tuple[_CreateBody, bytes]:
    """The `job` and `content` parts of a multipart create request."""
    async with request.form() as form:  # closes the parts' spooled files (a large part is a real temp file)
        job_part, content_part = form.get("job"), form.get("content")
        if job_part is None or content_part is None:
            raise SfException(400, SfError("INVALIDJOB", "InvalidJob : A multipart request needs a 'job' part "
                                                         "and a 'content' part"))
        raw_job = await job_part.read() if isinstance(job_part, UploadFile) else job_part
        content = await content_part.read() if isinstance(content_part, UploadFile) else content_part.encode()
    if len(content.decode("utf-8", errors="replace")) > MULTIPART_MAX_CHARS:
        raise SfException(400, SfError("INVALIDJOB", f"InvalidJob : Data in a multipart request is limited to "
                                                     f"{MULTIPART_MAX_CHARS} characters; upload it separately"))
    return _parse_json(raw_job, _CreateBody), content


@router.post("/jobs/ingest")
@router.post("/jobs/ingest/", include_in_schema=False)
async def create_job(request: Request, state: State, version: Version, session: CurrentSession) -> JSONResponse:
    """Create an ingest job (state Open); a multipart request also carries the data and closes the job."""
    multipart = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
    content: bytes | None = None
    if multipart:
        body, content = await _multipart_create(request)
    else:
        body = _parse_json(await request.body(), _CreateBody)
    created = state.bulk.create(_request(body), session.user_id, version, state.org_for(session.user_id))
    if isinstance(created, SfError):
        raise SfException(400, created)
    if content is not None:
        _check(state.bulk.upload(created, content))
        _check(state.bulk.change_state(created, "UploadComplete"))
    return JSONResponse(created.info())


@router.get("/jobs/ingest")
@router.get("/jobs/ingest/", include_in_schema=False)
async def list_jobs(state: State, version: Version, queryLocator: str | None = None, jobType: str | None = None,
                    concurrencyMode: str | None = None) -> JSONResponse:
    """All ingest jobs, 1,000 per page, with a queryLocator for the next page."""
    offset = 0
    if queryLocator:
        _, _, tail = queryLocator.rpartition("-")
        if not tail.isdigit():
            raise SfException(400, SfError("INVALID_QUERY_LOCATOR", "invalid query locator"))
        offset = int(tail)
    jobs, following = state.bulk.page(offset, jobType, concurrencyMode)
    next_url = None
    if following is not None:
        locator = f"{state.ids.new('01g')[:15]}-{following}"
        next_url = f"/services/data/v{version:.1f}/jobs/ingest?queryLocator={locator}"
    return JSONResponse({"done": following is None, "records": [j.info() for j in jobs],
                         "nextRecordsUrl": next_url})


@router.get("/jobs/ingest/{job_id}")
@router.get("/jobs/ingest/{job_id}/", include_in_schema=False)
async def get_job(job_id: str, state: State) -> JSONResponse:
    """Job info with record counts and processing times."""
    return JSONResponse(_job(state.bulk, job_id).info(counts=True))


@router.patch("/jobs/ingest/{job_id}")
@router.patch("/jobs/ingest/{job_id}/", include_in_schema=False)
async def patch_job(job_id: str, request: Request, state: State) -> JSONResponse:
    """Close (UploadComplete) or abort (Aborted) a job."""
    job = _job(state.bulk, job_id)
    body = _parse_json(await request.body(), _StateBody)
    _check(state.bulk.change_state(job, body.state))
    return JSONResponse(job.info())


@router.delete("/jobs/ingest/{job_id}")
@router.delete("/jobs/ingest/{job_id}/", include_in_schema=False)
async def delete_job(job_id: str, state: State) -> Response:
    """Delete a job that is not Open or InProgress."""
    _check(state.bulk.delete(_job(state.bulk, job_id)))
    return Response(status_code=204)


@router.put("/jobs/ingest/{job_id}/batches")
@router.put("/jobs/ingest/{job_id}/batches/", include_in_schema=False)
async def upload_data(job_id: str, request: Request, state: State) -> Response:
    """Upload the job's CSV (once)."""
    job = _job(state.bulk, job_id)
    _check(state.bulk.upload(job, await request.body()))
    return Response(status_code=201)


@router.get("/jobs/ingest/{job_id}/{resource}")
@router.get("/jobs/ingest/{job_id}/{resource}/", include_in_schema=False)
async def job_results(job_id: str, resource: str, state: State) -> Response:
    """successfulResults, failedResults or unprocessedrecords (any case) as CSV."""
    kind = RESULT_KINDS.get(resource.lower())
    job = _job(state.bulk, job_id)
    if kind is None:
        raise SfException(404, NOT_FOUND)
    text = state.bulk.results(job, kind)
    if isinstance(text, SfError):
        raise SfException(400, text)
    return Response(content=text.encode("utf-8"), media_type="text/csv; charset=UTF-8")
