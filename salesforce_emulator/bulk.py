"""Bulk API 2.0 ingest jobs: creation rules, the state machine, background processing, result files.

Processing runs as an asyncio task on the server's loop, in time slices of a few milliseconds with a
yield between them, so job state can be read (and the job aborted) while it runs. All job mutations
happen on that loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import bulk_csv
from .bulk_rows import RowResult, RowWriter, check_header
from .errors import SfError
from .ids import IdFactory, is_well_formed, to18
from .org import Org
from .store import Store

log = logging.getLogger(__name__)

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
TERMINAL = frozenset({"JobComplete", "Failed", "Aborted"})
DELETABLE = frozenset({"UploadComplete", "JobComplete", "Aborted", "Failed"})
RESULT_KINDS = {"successfulresults": "successful", "failedresults": "failed",
                "unprocessedrecords": "unprocessed"}
PAGE_SIZE = 1000


def _invalid_job(message: str) -> SfError:
    return SfError("INVALIDJOB", f"InvalidJob : {message}")


def _invalid_value(value: str | None, prop: str) -> SfError:
    return SfError("API_ERROR", f"Invalid value: '{value or ''}' supplied for property: '{prop}'")


def _invalid_state(message: str) -> SfError:
    return SfError("INVALIDJOBSTATE", message)


def _sf_time(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass
class JobRequest:
    """The body of POST /jobs/ingest, as sent (every property optional at this point)."""

    object: str | None = None
    operation: str | None = None
    externalIdFieldName: str | None = None
    contentType: str | None = None
    columnDelimiter: str | None = None
    lineEnding: str | None = None
    assignmentRuleId: str | None = None


@dataclass
class IngestJob:
    """One ingest job and everything it has produced so far."""

    id: str
    object: str
    operation: str
    external_id_field: str | None
    column_delimiter: str
    line_ending: str
    assignment_rule_id: str | None
    api_version: float
    created_by_id: str
    created: float
    modstamp: float
    state: str = "Open"
    content: bytes | None = None
    error_message: str | None = None
    parsed: bulk_csv.ParsedCsv | None = None
    results: list[RowResult | None] = field(default_factory=list)
    processing_ms: float = 0.0
    active_ms: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    view: Org | None = field(default=None, repr=False)  # the org as the job's creator sees it

    @property
    def delimiter(self) -> str:
        return bulk_csv.DELIMITERS[self.column_delimiter]

    @property
    def newline(self) -> str:
        return bulk_csv.LINE_ENDINGS[self.line_ending]

    def touch(self, state: str | None = None) -> None:
        """Move to `state` (when given) and stamp systemModstamp."""
        if state:
            self.state = state
        self.modstamp = time.time()

    def info(self, *, counts: bool = False) -> dict[str, Any]:
        """Job info as the create, close and list calls return it; `counts` adds the GET-only fields."""
        body: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": self.created_by_id, "createdDate": _sf_time(self.created),
            "systemModstamp": _sf_time(self.modstamp), "state": self.state,
        }
        if self.external_id_field:
            body["externalIdFieldName"] = self.external_id_field
        if self.assignment_rule_id:
            body["assignmentRuleId"] = self.assignment_rule_id
        body |= {"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": self.api_version,
                 "jobType": "V2Ingest"}
        if self.state == "Open":
            body["contentUrl"] = f"services/data/v{self.api_version:.1f}/jobs/ingest/{self.id}/batches"
        body |= {"lineEnding": self.line_ending, "columnDelimiter": self.column_delimiter}
        if counts:
            done = [r for r in self.results if r is not None]
            body |= {"numberRecordsProcessed": len(done),
                     "numberRecordsFailed": sum(1 for r in done if r.error is not None),
                     "retries": 0, "totalProcessingTime": int(self.processing_ms),
                     "apiActiveProcessingTime": int(self.active_ms), "apexProcessingTime": 0}
            if self.error_message:
                body["errorMessage"] = self.error_message
        return body


class BulkJobs:
    """Ingest jobs by Id, and the rules for creating, uploading to, closing, aborting and deleting them."""

    def __init__(self, store: Store, ids: IdFactory, *, start_delay: float = 0.05, min_progress: float = 0.05,
                 slice_seconds: float = 0.005, max_upload_bytes: int = 150_000_000) -> None:
        self.store = store
        self.ids = ids
        self.start_delay = start_delay  # UploadComplete → InProgress
        self.min_progress = min_progress  # shortest time a job stays InProgress, so pollers can see it
        self.slice_seconds = slice_seconds  # longest stretch of writing before the loop serves requests
        # A real pause, not sleep(0): the sync dependencies of a request run in worker threads, which
        # need the GIL that a busy loop thread would otherwise keep; 1 ms per slice keeps polls ~15 ms.
        self.pause_seconds = 0.001
        self.max_upload_bytes = max_upload_bytes  # counted after base64, as Salesforce counts it
        self.jobs: dict[str, IngestJob] = {}

    def create(self, request: JobRequest, user_id: str, api_version: float,
               view: Org | None = None) -> IngestJob | SfError:
        """Validate a create request (reference 5.1) and open the job; `view` is the org as the creating
        user sees it (an object they cannot see is unknown, rows are written with their permissions)."""
        operation = request.operation
        if operation not in OPERATIONS:
            return _invalid_value(operation, "operation")
        for prop, value, allowed in (("columnDelimiter", request.columnDelimiter, bulk_csv.DELIMITERS),
                                     ("lineEnding", request.lineEnding, bulk_csv.LINE_ENDINGS),
                                     ("contentType", request.contentType, ("CSV",))):
            if value is not None and value not in allowed:
                return _invalid_value(value, prop)
        obj = (view or self.store.org).object(request.object or "")
        if obj is None:
            return _invalid_job(f"Unable to find object: {request.object or ''}")
        ext_field: str | None = None
        if operation == "upsert":
            if not (request.externalIdFieldName or "").strip():
                return _invalid_job(f"External ID was blank for {obj.name}. "
                                    "An External ID must be specified for upsert.")
            fdef = obj.field(request.externalIdFieldName or "")
            if fdef is None or not (fdef.external_id or fdef.name == "Id"):
                return _invalid_job(f"Field name provided, does not match an External ID for {obj.name}")
            ext_field = fdef.name
        now = time.time()
        job = IngestJob(id=self.ids.new("750"), object=obj.name, operation=operation,
                        external_id_field=ext_field, column_delimiter=request.columnDelimiter or "COMMA",
                        line_ending=request.lineEnding or "LF", assignment_rule_id=request.assignmentRuleId,
                        api_version=api_version, created_by_id=user_id, created=now, modstamp=now, view=view)
        self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> IngestJob | None:
        """The job with this 15- or 18-character Id."""
        if not is_well_formed(job_id):
            return None
        return self.jobs.get(to18(job_id))

    def upload(self, job: IngestJob, data: bytes) -> SfError | None:
        """Store the job's CSV: once per job, only while Open, within the size limit."""
        if job.content is not None:
            return SfError("BULK_API_ERROR",
                           f"Found multipe contents for job: <{job.id[:15]}>, please 'Close' / 'Abort' / "
                           "'Delete' the current Job then create a new Job and make sure you only do 'PUT' "
                           "once on a given Job.")
        if job.state != "Open":
            return _invalid_state(f"Job {job.id} is not in the Open state; data can only be uploaded to an "
                                  "Open job")
        if (len(data) + 2) // 3 * 4 > self.max_upload_bytes:
            return SfError("EXCEEDED_QUOTA", f"The upload exceeds the maximum of {self.max_upload_bytes} "
                           "bytes after base64 encoding")
        job.content = data
        job.touch()
        return None

    def change_state(self, job: IngestJob, target: str | None) -> SfError | None:
        """PATCH: close (Open → UploadComplete, then processing starts) or abort a job."""
        if target == "UploadComplete" and job.state == "Open":
            job.touch("UploadComplete")
            job.task = asyncio.get_running_loop().create_task(self._process(job))
            return None
        if target == "Aborted" and job.state in ("Open", "UploadComplete", "InProgress"):
            job.touch("Aborted")
            return None
        if target in ("UploadComplete", "Aborted"):
            return _invalid_state(f"Cannot change the state of job {job.id} from {job.state} to {target}")
        return _invalid_state(f"Invalid state: '{target or ''}'. A job's state can only be set to "
                              "UploadComplete or Aborted")

    def delete(self, job: IngestJob) -> SfError | None:
        """DELETE: allowed in UploadComplete and the terminal states; the job is gone afterwards."""
        if job.state not in DELETABLE:
            return _invalid_state(f"Cannot delete job {job.id} in state {job.state}")
        if job.task is not None and not job.task.done():
            job.task.cancel()
        del self.jobs[job.id]
        return None

    def page(self, offset: int, job_type: str | None = None,
             concurrency_mode: str | None = None) -> tuple[list[IngestJob], int | None]:
        """Jobs in creation order from `offset`: one page and the next offset (None on the last page)."""
        jobs = [j for j in self.jobs.values()
                if job_type in (None, "V2Ingest") and concurrency_mode in (None, "Parallel")]
        jobs.sort(key=lambda j: (j.created, j.id))
        chunk = jobs[offset:offset + PAGE_SIZE]
        following = offset + PAGE_SIZE
        return chunk, (following if following < len(jobs) else None)

    def reset(self) -> None:
        """Forget every job (admin reset)."""
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        self.jobs.clear()

    def results(self, job: IngestJob, kind: str) -> str | SfError:
        """One of the three result files (`kind` from RESULT_KINDS), once the job has stopped."""
        if job.state not in TERMINAL:
            return _invalid_state(f"Results are not available for job {job.id} in state {job.state}")
        parsed = self._parsed(job)
        if parsed is None:
            return ""
        sep, newline = job.delimiter, job.newline
        results = job.results + [None] * (len(parsed.rows) - len(job.results))  # none yet: never started
        pairs = list(zip(parsed.rows, results, strict=True))
        if kind == "unprocessed":
            return bulk_csv.write_raw(parsed.header_raw, [row.raw for row, r in pairs if r is None], newline)
        if kind == "successful":
            rows = [([r.sf_id, "true" if r.created else "false"], row.values)
                    for row, r in pairs if r is not None and r.error is None]
            return bulk_csv.write_results(["sf__Id", "sf__Created"], parsed.header, rows, sep, newline)
        rows = [([r.sf_id, r.error.bulk()], row.values)
                for row, r in pairs if r is not None and r.error is not None]
        return bulk_csv.write_results(["sf__Id", "sf__Error"], parsed.header, rows, sep, newline)

    def _parsed(self, job: IngestJob) -> bulk_csv.ParsedCsv | None:
        """The job's upload split into records (parsed once); None when nothing readable was uploaded."""
        if job.parsed is None and job.content is not None:
            text = bulk_csv.decode(job.content)
            if text is not None:
                job.parsed = bulk_csv.parse(text, job.delimiter)
        return job.parsed

    async def _process(self, job: IngestJob) -> None:
        await asyncio.sleep(self.start_delay)
        if job.state != "UploadComplete":  # aborted (or deleted) while queued
            return
        job.touch("InProgress")
        started = time.monotonic()
        try:
            job.error_message = await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the emulator must not leave clients polling forever
            log.exception("bulk job %s crashed", job.id)
            job.error_message = f"UNKNOWN_EXCEPTION : {type(exc).__name__}: {exc}"
        remaining = self.min_progress - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        job.processing_ms = (time.monotonic() - started) * 1000
        if job.state == "InProgress":
            job.touch("Failed" if job.error_message else "JobComplete")

    async def _run(self, job: IngestJob) -> str | None:
        """Write every row unless the job is aborted; the errorMessage when the whole job fails."""
        await asyncio.to_thread(self._parsed, job)  # a 100 MB file takes a while; keep serving requests
        problem = self._problem(job)
        if problem is not None:
            return problem
        parsed = self._parsed(job)
        assert parsed is not None
        writer = RowWriter(self.store, job.object, job.operation, job.external_id_field, parsed.header,
                           self.store.faults, view=job.view, user_id=job.created_by_id)
        job.results = [None] * len(parsed.rows)
        slice_start = time.monotonic()
        for index, result in enumerate(writer.results(parsed.rows)):
            job.results[index] = result
            now = time.monotonic()
            if now - slice_start >= self.slice_seconds:
                job.active_ms += (now - slice_start) * 1000
                job.touch()
                await asyncio.sleep(self.pause_seconds)
                if job.state != "InProgress":  # aborted: the rest stays unprocessed
                    return None
                slice_start = time.monotonic()
        job.active_ms += (time.monotonic() - slice_start) * 1000
        return None

    def _problem(self, job: IngestJob) -> str | None:
        """Why the whole job cannot be processed (its errorMessage), or None."""
        if job.content is None:
            return "InvalidBatch : No data was uploaded for this job"
        parsed = self._parsed(job)
        if parsed is None:
            return "InvalidBatch : The data is not valid UTF-8"
        if any(ending != job.line_ending for ending in parsed.line_endings):
            return f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is " \
                   f"{job.line_ending}"
        if not parsed.header or parsed.header == [""]:
            return "InvalidBatch : The data has no header row"
        if parsed.header_error:
            return f"InvalidBatch : {parsed.header_error}"
        org = job.view or self.store.org
        obj = org.object(job.object)
        assert obj is not None
        return check_header(org, obj, job.operation, job.external_id_field, parsed.header)
