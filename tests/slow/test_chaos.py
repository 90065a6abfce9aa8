"""Chaos: N events while the destination is SIGKILLed 5 times and the emulator injects 5% 503s, 5%
UNABLE_TO_LOCK_ROW, token expiry every 30 s and one REQUEST_LIMIT_EXCEEDED window — on the embedded log,
and on Kafka (a tansu broker with persistent storage) with one broker SIGKILL + restart as well. Every
event must end with exactly one terminal outcome, none lost, no duplicate records, and the org must equal
the state the event sequence implies."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chaos_support import DestinationProcess, send_until_accepted
from kafka_broker import Broker
from running_emulator import free_port

from destination.outcomes import Status
from destination.synclog import open_sync_log

N = int(os.environ.get("CHAOS_EVENTS", "10000"))
USERS = max(N // 5, 1)
BATCH = 100

ACTIONS = """source: chaos
write_keys: [chaos-key]
actions:
  - name: leads
    when: type = "identify" and traits.email exists
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields:
      Email: $.traits.email
      LastName: {path: $.traits.last_name, default: Chaos}
      Company: Chaos Inc
      Title: $.traits.title
"""


def _event(i: int) -> dict[str, Any]:
    user = i % USERS
    return {"type": "identify", "userId": f"user{user}", "messageId": f"chaos-{i}",
            "traits": {"email": f"user{user}@chaos.example", "title": f"t{i}"}}


async def _skip_reasons(tmp_path: Path) -> set[str]:
    from destination.synclog.base import SyncLogFilter

    async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        rows = await log.rows(SyncLogFilter(status=Status.SKIPPED), limit=N)
    assert all(r.record_id for r in rows)
    return {(r.reason or "").split(":")[0] for r in rows}


def _run(tls_emulator: Any, tmp_path: Path, event_log: str, *, broker: Broker | None = None) -> Counter[str]:
    """Send N events through a destination killed 5 times (and, given a broker, kill and restart the broker
    once, between the third and fourth kill); check every outcome and the org. Returns what the sender saw
    (HTTP statuses and connection errors) per attempt."""
    actions = tmp_path / "actions"
    actions.mkdir()
    (actions / "chaos.yaml").write_text(ACTIONS)
    port = free_port()
    config = tmp_path / "destination.yaml"
    config.write_text(f"""connections:
  default:
    login_url: {tls_emulator.url}
    auth: {{method: client_credentials, client_id: emulator-client, client_secret: emulator-secret}}
    ca_bundle: {tls_emulator.ca_pem}
    allowed_hosts: [127.0.0.1]
actions_dir: {actions}
sync_log_url: sqlite:///{tmp_path / 'sync.db'}
{event_log}
batching: {{linger_ms: 200, max_attempts: 12}}
budget: {{recheck_seconds: 1}}
""")
    tls_emulator.state.faults.update({"error_503_rate": 0.05, "lock_error_rate": 0.05,
                                      "token_lifetime_seconds": 30, "seed": 20261124})
    destination = DestinationProcess(config, port, tmp_path / "destination.log")
    began = time.monotonic()
    destination.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    sent = threading.Event()
    seen: Counter[str] = Counter()
    halfway, broker_down = threading.Event(), threading.Event()

    def sender() -> None:
        for start in range(0, N, BATCH):
            if broker is not None and start == (N // BATCH // 2) * BATCH:
                halfway.set()  # the second half goes out while the broker is down: wait for that
                broker_down.wait(deadline - time.monotonic())
            send_until_accepted(url, "chaos-key", [_event(i) for i in range(start, min(start + BATCH, N))], deadline,
                                seen=seen)
        sent.set()

    thread = threading.Thread(target=sender)
    thread.start()
    rng = random.Random(7)
    for kill in range(5):
        time.sleep(rng.uniform(1.5, 3.0))
        destination.kill()
        if kill == 2:
            tls_emulator.state.faults.update({"limit_exceeded_for_seconds": 3})  # one REQUEST_LIMIT_EXCEEDED window
        time.sleep(0.3)
        destination.start()
        if kill == 2 and broker is not None:
            _poll(halfway.is_set, deadline, "the sender never got halfway")
            _restart_broker(broker, broker_down, seen, deadline)
    thread.join()
    assert sent.is_set()

    async def counts() -> dict[Status, int]:
        async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
            return await log.counts()

    sent_after = time.monotonic() - began
    while time.monotonic() < deadline and sum(asyncio.run(counts()).values()) < N:
        time.sleep(1)
    time.sleep(2)
    destination.stop()
    final = asyncio.run(counts())
    leads = tls_emulator.state.store.records("Lead")
    print(f"\nchaos ({'kafka, 1 broker restart' if broker else 'embedded'}): {N} events, {destination.kills} SIGKILLs, "
          f"outcomes { {k.value: v for k, v in final.items()} }, {len(leads)} Leads, "
          f"API calls {tls_emulator.state.usage.total}, {time.monotonic() - began:.1f} s (all sent after {sent_after:.1f} s); "
          f"sender saw {dict(seen)}")
    assert sum(final.values()) == N, final  # exactly one terminal outcome per event: none lost, none doubled
    assert final.get(Status.FAILED, 0) == 0, final
    # a write that landed just before a SIGKILL (outcome not yet recorded) is redelivered and finds the
    # record already right: its one outcome is `skipped NOTHING_TO_CHANGE`, with the record Id
    assert asyncio.run(_skip_reasons(tmp_path)) <= {"NOTHING_TO_CHANGE"}
    by_email: dict[str, list[dict[str, Any]]] = {}
    for lead in leads:
        by_email.setdefault(lead["Email"], []).append(lead)
    assert len(leads) == USERS and all(len(v) == 1 for v in by_email.values())  # no duplicate records
    expected = {f"user{u}@chaos.example": f"t{max(i for i in range(u, N, USERS))}" for u in range(USERS)}
    assert {email: rows[0]["Title"] for email, rows in by_email.items()} == expected
    return seen


def _restart_broker(broker: Broker, down_event: threading.Event, seen: Counter[str], deadline: float) -> None:
    """SIGKILL the broker, keep it down while the sender keeps trying (at least 3 s and until ingest has
    refused a batch), and start it again on the same port with the same storage."""
    refused = seen["503"]
    broker.kill()
    down = time.monotonic()
    down_event.set()
    _poll(lambda: time.monotonic() - down >= 3 and seen["503"] > refused, deadline, "ingest never answered 503")
    broker.start()


def _poll(condition: Callable[[], bool], deadline: float, what: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.05)


@pytest.mark.timeout(600)
def test_no_event_is_lost_and_no_record_duplicated_under_kills_and_faults(tls_emulator: Any, tmp_path: Path) -> None:
    _run(tls_emulator, tmp_path, f"event_log: {{path: {tmp_path / 'events.db'}}}")


@pytest.mark.timeout(600)
def test_kafka_no_event_is_lost_under_kills_faults_and_a_broker_restart(tls_emulator: Any, tmp_path: Path,
                                                                        persistent_broker: Broker) -> None:
    seen = _run(tls_emulator, tmp_path, f"""event_log: {{kind: kafka}}
kafka: {{bootstrap_servers: "{persistent_broker.bootstrap}", idempotent: false,
        create_topics: {{enabled: true, replication_factor: 1}}}}""", broker=persistent_broker)
    assert seen["503"] > 0  # while the broker was down, ingest refused with a retryable 503 (never a 200)
    assert set(seen) <= {"200", "503", "unreachable"}, seen
