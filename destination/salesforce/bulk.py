"""Bulk API 2.0 ingest: create job → upload CSV → close → poll to a terminal state → read the successful,
failed and unprocessed results, and return one RecordResult per input row.

Rows are correlated with results by a carried key — the row's own uploaded cells, which Salesforce echoes
in every result file — never by position. Uploads over the size limit are split into several jobs; a
cancelled run aborts its job.

A job that may have started (its close was sent) is never aborted on an error and never submitted again:
later failures (a rate limit, an outage, a lost response) are retried on that job's state and result
files under the retry policy. When they cannot be read in time an insert's rows are UNCERTAIN_WRITE (the
writer reconciles them by lookup) and other rows RETRY_EXHAUSTED. A job still running after
`job_max_seconds` is aborted; its unprocessed rows fail RETRY_EXHAUSTED (never written, safe to replay).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..retry import RETRY_EXHAUSTED, Attempts
from .errors import ErrorKind, SalesforceApiError, SalesforceError, uncertain
from .results import RecordResult

if TYPE_CHECKING:
    from .client import SalesforceClient

NULL = "#N/A"
MAX_UPLOAD_BYTES = 100_000_000  # Salesforce allows 150 MB base64-encoded per upload; leave headroom
TERMINAL = ("JobComplete", "Failed", "Aborted")
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


def cell(value: Any) -> str:
    """A value as a CSV cell: `#N/A` only where a null is meant; "" means "leave as it is"."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> tuple[bytes, list[tuple[str, ...]]]:
    """RFC 4180 CSV with CRLF line endings, and each row's carried key (its cells as uploaded)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    keys = []
    for row in rows:
        cells = tuple(cell(row[c]) if c in row else "" for c in columns)
        writer.writerow(cells)
        keys.append(cells)
    return buffer.getvalue().encode(), keys


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every column any row uses, in first-seen order."""
    return list(dict.fromkeys(k for row in rows for k in row))


@dataclass
class JobReport:
    """What one job did, for logs and metrics."""

    id: str
    state: str
    processed: int
    failed: int
    error_message: str | None = None


class BulkIngest:
    """Bulk API 2.0 ingest jobs through a SalesforceClient."""

    def __init__(self, client: SalesforceClient, *, poll_initial: float = 0.25, poll_max: float = 5.0,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES, job_max_seconds: float = 3600.0) -> None:
        self._client = client
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.max_upload_bytes = max_upload_bytes
        self.job_max_seconds = job_max_seconds
        self.jobs: list[JobReport] = []
        self.created = 0  # jobs created (tests read it)

    async def run(self, obj: str, operation: str, rows: Sequence[dict[str, Any]], *,
                  external_id_field: str | None = None) -> list[RecordResult]:
        """Write `rows` and return one result per row, in input order."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown bulk operation {operation!r}")
        if not rows:
            return []
        columns = columns_of(rows)
        results: list[RecordResult] = []
        for part in self._split(columns, rows):
            results.extend(await self._run_job(obj, operation, columns, part, external_id_field))
        return results

    def _split(self, columns: list[str], rows: Sequence[dict[str, Any]]) -> list[Sequence[dict[str, Any]]]:
        data, _ = to_csv(columns, rows)
        if len(data) <= self.max_upload_bytes or len(rows) == 1:
            return [rows]
        half = len(rows) // 2
        return self._split(columns, rows[:half]) + self._split(columns, rows[half:])

    async def _run_job(self, obj: str, operation: str, columns: list[str], rows: Sequence[dict[str, Any]],
                       external_id_field: str | None) -> list[RecordResult]:
        data, keys = to_csv(columns, rows)
        spec: dict[str, Any] = {"object": obj, "operation": operation, "contentType": "CSV", "lineEnding": "CRLF",
                                "columnDelimiter": "COMMA"}
        if external_id_field:
            spec["externalIdFieldName"] = external_id_field
        job = await self._client.json("POST", "jobs/ingest", json=spec)
        job_id = job["id"]
        self.created += 1
        try:
            await self._upload(job_id, data)
            await self._close(job_id)
        except (asyncio.CancelledError, Exception):
            # Still Open: it can never run, so the caller may submit these rows again in a new job.
            await asyncio.shield(self._abort(job_id))
            raise
        # From here on the job may be running: never abort it on an error, never submit its rows again.
        # (A cancelled run, a shutdown, still aborts it: its events are redelivered and their create intents
        # reconciled then.)
        try:
            info = await self._poll(job_id)
            self.jobs.append(JobReport(job_id, info["state"], int(info.get("numberRecordsProcessed", 0)),
                                       int(info.get("numberRecordsFailed", 0)), info.get("errorMessage")))
            return await self._results(job_id, info, keys)
        except _Unreadable as gone:
            error = gone.error
            if operation == "insert":  # the writer looks these up before anything is sent again
                error = uncertain(f"Bulk job {job_id} was submitted but its results could not be read: "
                                  f"{error.message}")
            return [RecordResult.failed(error) for _ in keys]
        except asyncio.CancelledError:
            await asyncio.shield(self._abort(job_id))
            raise

    async def _upload(self, job_id: str, data: bytes) -> None:
        """PUT the job's data once. A retry of an upload whose answer was lost (a 502, a timeout) is refused
        because the first one landed ("Found multiple contents for job"): the data is there, go on."""
        try:
            await self._client.request("PUT", f"jobs/ingest/{job_id}/batches", content=data,
                                       headers={"Content-Type": "text/csv"})
        except SalesforceApiError as exc:
            if exc.error.code == "BULK_API_ERROR" and "contents for job" in exc.error.message:
                return
            raise

    async def _close(self, job_id: str) -> None:
        """Close the job; when the close fails, whether it took is read from the job (Open: it did not)."""
        try:
            await self._client.json("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
        except SalesforceApiError:
            try:
                info = await self._follow(job_id, lambda: self._client.json("GET", f"jobs/ingest/{job_id}"),
                                          self._client.policy.start())
            except _Unreadable:
                return  # it may have closed: followed (and never resubmitted) like a closed job
            if info["state"] == "Open":
                raise

    async def _poll(self, job_id: str) -> dict[str, Any]:
        """The job's info once it is terminal; aborted (then read again) when it runs past job_max_seconds."""
        delay = self.poll_initial
        running = Attempts(replace(self._client.policy, max_elapsed_seconds=self.job_max_seconds))
        while True:  # each read has its own retry budget: a long job is not a failing one
            info = await self._follow(job_id, lambda: self._client.json("GET", f"jobs/ingest/{job_id}"),
                                      self._client.policy.start())
            if info["state"] in TERMINAL:
                return info
            if not await running.wait(delay):
                await self._abort(job_id)
                info = await self._follow(job_id, lambda: self._client.json("GET", f"jobs/ingest/{job_id}"),
                                          self._client.policy.start())
                if info["state"] not in TERMINAL:
                    raise _Unreadable(SalesforceError(RETRY_EXHAUSTED, f"Bulk job {job_id} still "
                                                      f"{info['state']} after {self.job_max_seconds:.0f} s"))
                info["errorMessage"] = f"aborted after running {self.job_max_seconds:.0f} s: this row was not processed"
                info["unprocessed_code"] = RETRY_EXHAUSTED
                return info
            delay = min(delay * 1.5, self.poll_max)

    async def _abort(self, job_id: str) -> None:
        try:
            await self._client.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "Aborted"})
        except SalesforceApiError:
            pass  # already terminal, or unreachable: an Open job never runs; a running one is followed

    async def _follow(self, job_id: str, read: Callable[[], Awaitable[Any]], attempts: Attempts) -> Any:
        """A read of a submitted job, retried under the policy whatever the failure (rate limit included):
        the job must be followed to its results, never replaced. _Unreadable when the policy is spent."""
        while True:
            try:
                return await read()
            except SalesforceApiError as exc:
                # The client has already retried transient failures; a rate limit is a pause, bounded by time.
                if exc.kind is ErrorKind.RATE_LIMITED and await attempts.wait(self._client.policy.backoff_max_seconds,
                                                                              exc.error):
                    continue
                # A read is safe to repeat: one whose own retries ran out (an outage) is tried again too.
                again = exc.kind in (ErrorKind.TRANSIENT, ErrorKind.AUTH) or exc.error.code == RETRY_EXHAUSTED
                if again and await attempts.retry(exc.error):
                    continue
                attempts.last_error = exc.error
                raise _Unreadable(attempts.exhausted(f"reading Bulk job {job_id}")) from exc

    async def _results(self, job_id: str, info: dict[str, Any], keys: list[tuple[str, ...]]) -> list[RecordResult]:
        waiting: dict[tuple[str, ...], deque[int]] = defaultdict(deque)
        for index, key in enumerate(keys):
            waiting[key].append(index)
        out: list[RecordResult | None] = [None] * len(keys)

        def assign(key: tuple[str, ...], result: RecordResult) -> None:
            queue = waiting.get(key)
            if queue:
                out[queue.popleft()] = result

        attempts = self._client.policy.start()
        for row in await self._follow(job_id, lambda: self._result_rows(job_id, "successfulResults"), attempts):
            created = row.get("sf__Created", "").lower() == "true"
            assign(row["__key"], RecordResult.ok(row.get("sf__Id") or None, created=created))
        for row in await self._follow(job_id, lambda: self._result_rows(job_id, "failedResults"), attempts):
            error = SalesforceError.from_bulk(row.get("sf__Error", ""))
            assign(row["__key"], RecordResult.failed(error, record_id=row.get("sf__Id") or None))
        reason = info.get("errorMessage") or f"job {job_id} ended {info['state']} before processing this row"
        unprocessed = SalesforceError(info.get("unprocessed_code", "BULK_UNPROCESSED"), reason)
        return [r if r is not None else RecordResult.failed(unprocessed) for r in out]

    async def _result_rows(self, job_id: str, kind: str) -> list[dict[str, Any]]:
        response = await self._client.request("GET", f"jobs/ingest/{job_id}/{kind}", headers={"Accept": "text/csv"})
        text = response.content.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header:
            return []
        meta = [i for i, h in enumerate(header) if h.startswith("sf__")]
        data = [i for i, h in enumerate(header) if not h.startswith("sf__")]
        rows = []
        for values in reader:
            if not values:
                continue
            row: dict[str, Any] = {header[i]: values[i] for i in meta}
            row["__key"] = tuple(values[i] for i in data)
            rows.append(row)
        return rows


class _Unreadable(Exception):
    """A submitted job whose state or results could not be read within the retry policy."""

    def __init__(self, error: SalesforceError) -> None:
        super().__init__(error.message)
        self.error = error
