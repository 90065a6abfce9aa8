"""`destination run` as a real process: started on a port and waited for, SIGKILLed or stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


class DestinationProcess:
    def __init__(self, config: Path, port: int, log: Path, args: tuple[str, ...] = ()) -> None:
        self.config = config
        self.args = args
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as handle:  # the child has its own descriptor; ours closes once it is started
            self.process = subprocess.Popen([sys.executable, "-m", "destination", "--config", str(self.config), "run",
                                             "--port", str(self.port), *self.args], stdout=handle,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"destination exited with {self.process.returncode} while starting; see {self.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"destination did not start; see {self.log}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def memory_kb(self, field: str = "VmHWM") -> int:
        """A figure of /proc/<pid>/status in kB: VmHWM (peak resident set) by default, or VmRSS."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise KeyError(field)


def ingest_only(tmp: Path, extra: str = "") -> DestinationProcess:
    """`destination run --ingest-only` (not started yet) on a free port: the shipped actions, logs in `tmp`,
    `extra` YAML appended to its destination.yaml."""
    from running_emulator import free_port

    repo = Path(__file__).resolve().parents[1]
    config = tmp / "destination.yaml"
    config.write_text(f"actions_dir: {repo / 'actions'}\nsync_log_url: sqlite:///{tmp / 'sync.db'}\n"
                      f"event_log: {{path: {tmp / 'events.db'}}}\n{extra}")
    return DestinationProcess(config, free_port(), tmp / "run.log", ("--ingest-only",))
