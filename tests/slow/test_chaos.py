"""Chaos: N events while the destination is SIGKILLed 5 times and the emulator injects 5% 503s, 5%
UNABLE_TO_LOCK_ROW, token expiry every 30 s and one REQUEST_LIMIT_EXCEEDED window. Every event must end
with exactly one terminal outcome, none lost, no duplicate records, and the org must equal the state the
event sequence implies."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from chaos_support import DestinationProcess, send_until_accepted
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


def test_no_event_is_lost_and_no_record_duplicated_under_kills_and_faults(tls_emulator: Any, tmp_path: Path) -> None:
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
event_log: {{path: {tmp_path / 'events.db'}}}
batching: {{linger_ms: 200, max_attempts: 12}}
budget: {{recheck_seconds: 1}}
""")
    tls_emulator.state.faults.update({"error_503_rate": 0.05, "lock_error_rate": 0.05,
                                      "token_lifetime_seconds": 30, "seed": 20261124})
    destination = DestinationProcess(config, port, tmp_path / "destination.log")
    destination.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    sent = threading.Event()

    def sender() -> None:
        for start in range(0, N, BATCH):
            send_until_accepted(url, "chaos-key", [_event(i) for i in range(start, min(start + BATCH, N))], deadline)
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
    thread.join()
    assert sent.is_set()

    async def counts() -> dict[Status, int]:
        async with open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
            return await log.counts()

    while time.monotonic() < deadline and sum(asyncio.run(counts()).values()) < N:
        time.sleep(1)
    time.sleep(2)
    destination.stop()
    final = asyncio.run(counts())
    print(f"\nchaos: {N} events, {destination.kills} SIGKILLs, outcomes {dict(final)}, "
          f"API calls {tls_emulator.state.usage.total}")
    assert sum(final.values()) == N, final  # exactly one terminal outcome per event: none lost, none doubled
    assert final.get(Status.FAILED, 0) == 0, final
    # a write that landed just before a SIGKILL (outcome not yet recorded) is redelivered and finds the
    # record already right: its one outcome is `skipped NOTHING_TO_CHANGE`, with the record Id
    assert asyncio.run(_skip_reasons(tmp_path)) <= {"NOTHING_TO_CHANGE"}
    leads = tls_emulator.state.store.records("Lead")
    by_email: dict[str, list[dict[str, Any]]] = {}
    for lead in leads:
        by_email.setdefault(lead["Email"], []).append(lead)
    assert len(leads) == USERS and all(len(v) == 1 for v in by_email.values())  # no duplicate records
    expected = {f"user{u}@chaos.example": f"t{max(i for i in range(u, N, USERS))}" for u in range(USERS)}
    assert {email: rows[0]["Title"] for email, rows in by_email.items()} == expected
