"""`destination run` as a real process: `--operator-token-file` makes a 0600 token file and prints the token
once (never to the log); an `operator_listen` listener serves the operator endpoints while the main port serves
ingest only; `--ingest-only` 404s the operator paths."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from running_emulator import free_port
from settings_support import settings_file


@contextmanager
def _running(config: Path, port: int, *extra: str, wait_port: int | None = None,
             env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """The process's stdout and stderr (filled in when it has stopped)."""
    process = subprocess.Popen([sys.executable, "-m", "destination", "--config", str(config), "run", "--port",
                                str(port), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{wait_port or port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield output
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
        output += [out.decode(), err.decode()]


def test_a_local_token_is_made_once_and_the_operator_listener_is_separate(tls_emulator: Any, tmp_path: Path) -> None:
    port, op_port = free_port(), free_port()
    config = settings_file(tmp_path, tls_emulator, f"http: {{operator_listen: '127.0.0.1:{op_port}'}}\n")
    token_file = tmp_path / "data" / "operator-token"
    with _running(config, port, "--operator-token-file", str(token_file), wait_port=op_port) as first:
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and len(token) >= 32
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"http://127.0.0.1:{op_port}/v1/sync-log", headers=bearer).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{op_port}/v1/sync-log").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/v1/sync-log", headers=bearer).status_code == 404
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", headers=bearer).status_code == 404
        r = httpx.post(f"http://127.0.0.1:{port}/v1/identify", auth=("web-app-demo-key", ""),
                       json={"userId": "u", "traits": {"email": "a@x.example"}})
        assert r.status_code == 200
        assert httpx.post(f"http://127.0.0.1:{op_port}/v1/identify", auth=("web-app-demo-key", ""),
                          json={"userId": "u"}).status_code == 401
    stdout, stderr = first
    assert stdout.count(token) == 1 and token not in stderr  # printed once, never logged
    with _running(config, port, "--operator-token-file", str(token_file), wait_port=op_port) as second:
        assert httpx.get(f"http://127.0.0.1:{op_port}/metrics",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert token not in "".join(second) and token_file.read_text().strip() == token


def test_ingest_only_does_not_serve_the_sync_log(tls_emulator: Any, tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "operator-token"
    with _running(settings_file(tmp_path, tls_emulator), port, "--ingest-only", "--operator-token-file",
                  str(token_file)):
        bearer = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        for path in ("/v1/sync-log", "/sync-log", "/metrics", "/docs", "/openapi.json"):
            assert httpx.get(f"http://127.0.0.1:{port}{path}", headers=bearer).status_code == 404, path
        assert httpx.post(f"http://127.0.0.1:{port}/v1/preview", headers=bearer, json={}).status_code == 404
        r = httpx.post(f"http://127.0.0.1:{port}/v1/track", auth=("web-app-demo-key", ""),
                       json={"userId": "u", "event": "E"})
        assert r.status_code == 200


def test_no_secret_reaches_the_log_the_sync_log_the_metrics_or_the_page(tls_emulator: Any, tmp_path: Path) -> None:
    import os
    import secrets

    port = free_port()
    write_key = f"wk-{secrets.token_hex(12)}"
    config = settings_file(tmp_path, tls_emulator)
    token_file = tmp_path / "operator-token"
    env = {**os.environ, "WEB_APP_WRITE_KEY": write_key}
    served: list[str] = []
    with _running(config, port, "--operator-token-file", str(token_file), env=env) as output:
        token = token_file.read_text().strip()
        bearer = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{base}/v1/identify", json={"writeKey": write_key, "userId": "u1", "traits": {
            "email": "s@x.example", "last_name": "S"}}).status_code == 200
        assert httpx.post(f"{base}/v1/track", auth=(write_key, ""), json={
            "userId": "u1", "event": "Order Completed", "properties": {"order_id": "o1", "total": "lots"},
            "writeKey": write_key}).status_code == 200
        assert httpx.post(f"{base}/v1/track", auth=(token, ""), json={"userId": "u", "event": "E"}).status_code == 401
        assert httpx.get(f"{base}/v1/sync-log", headers={"Authorization": f"Bearer {write_key}"}).status_code == 401
        for _ in range(300):
            body = httpx.get(f"{base}/v1/sync-log", headers=bearer).json()
            if len(body["rows"]) >= 2:
                break
            time.sleep(0.1)
        served += [httpx.get(f"{base}{p}", headers=bearer).text for p in ("/v1/sync-log", "/metrics", "/sync-log")]
        served += [httpx.get(f"{base}/sync-log/{row['id']}", headers=bearer).text for row in body["rows"]]
        assert len(body["rows"]) >= 2 and any(r["status"] == "failed" for r in body["rows"])
    stored = (tmp_path / "sync.db").read_bytes()
    out, err = output
    log_output = out.replace(token, "<printed once>", 1) + err
    for secret in (write_key, token, "emulator-secret"):
        for where, text in (("log", log_output), ("served", "".join(served)), ("sync log file", stored.decode("latin-1"))):
            assert secret not in text, (secret, where)


def test_a_consumer_only_process_serves_its_metrics_on_the_operator_listener(tls_emulator: Any, tmp_path: Path) -> None:
    port, op_port = free_port(), free_port()
    config = settings_file(tmp_path, tls_emulator, f"http: {{operator_listen: '127.0.0.1:{op_port}'}}\n")
    token_file = tmp_path / "operator-token"
    with _running(config, port, "--consumer-only", "--operator-token-file", str(token_file), wait_port=op_port):
        bearer = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        assert httpx.get(f"http://127.0.0.1:{op_port}/metrics", headers=bearer).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{op_port}/metrics").status_code == 401
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            raise AssertionError("a consumer-only process opened the main port")
        except httpx.ConnectError:
            pass
