"""A thin Bulk API 2.0 ingest client for the emulator tests: plain HTTP calls, no retries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

VERSION = "v62.0"
TERMINAL = {"JobComplete", "Failed", "Aborted"}


@dataclass
class BulkApi:
    """Calls /services/data/v62.0/jobs/ingest on a running emulator."""

    http: httpx.Client

    @classmethod
    def connect(cls, emulator: Any) -> BulkApi:
        token = emulator.state.tokens.issue("admin@emulator.test", "emulator-client").token
        client = httpx.Client(base_url=f"{emulator.url}/services/data/{VERSION}/jobs/ingest",
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return cls(client)

    def __enter__(self) -> BulkApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()  # its pooled connections to the emulator

    def create(self, **body: Any) -> httpx.Response:
        return self.http.post("", json=body)

    def job(self, **body: Any) -> str:
        r = self.create(**body)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def upload(self, job_id: str, data: str | bytes) -> httpx.Response:
        content = data.encode() if isinstance(data, str) else data
        return self.http.put(f"/{job_id}/batches", content=content, headers={"Content-Type": "text/csv"})

    def patch(self, job_id: str, state: str) -> httpx.Response:
        return self.http.patch(f"/{job_id}", json={"state": state})

    def info(self, job_id: str) -> dict[str, Any]:
        r = self.http.get(f"/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait(self, job_id: str, timeout: float = 20) -> dict[str, Any]:
        """Poll until the job reaches a terminal state; the states seen along the way are in `_seen`."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            info = self.info(job_id)
            if not seen or seen[-1] != info["state"]:
                seen.append(info["state"])
            if info["state"] in TERMINAL:
                info["_seen"] = seen
                return info
            assert time.monotonic() < deadline, f"job stuck in {info['state']}"
            time.sleep(0.005)

    def run(self, data: str | bytes, **body: Any) -> tuple[str, dict[str, Any]]:
        """Create, upload, close and wait: (job id, final job info)."""
        job_id = self.job(**body)
        assert self.upload(job_id, data).status_code == 201
        assert self.patch(job_id, "UploadComplete").status_code == 200
        return job_id, self.wait(job_id)

    def result(self, job_id: str, kind: str) -> str:
        r = self.http.get(f"/{job_id}/{kind}/")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=UTF-8"
        return r.text
