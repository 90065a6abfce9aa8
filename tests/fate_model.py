"""Model-based check of every event's fate (issue "Every event's fate, exactly").

A seeded generator makes a random stream over a small key space — identify / group / track over two
sources, repeated and missing messageIds, `on_many_matches` fail / newest / all, a parent (Account) and its
children (Opportunity), REST or Bulk — and runs it through the real data path (embedded event log →
Consumer → Pipeline → Delivery → SQLite sync log) against the emulator with random faults (503s, row
locks, short-lived tokens, responses lost after the write applied, whole-call trigger errors above a record
count, an outage of the org, a sync log that fails some writes, a crash of the consumer mid-stream; and, in
make test-slow, a SIGKILL of a real `destination run` process).

After each case the invariants are checked against a pure reference model:
- every (event, action[, record]) has exactly one terminal outcome, with the status the model predicts;
- no offset was ever committed beyond an event without its outcomes;
- the org holds exactly the records the model predicts (no duplicates), with the last value per field in
  stream order, or by event time where the field is `most_recent`;
- rows saying `created` = records created.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from destination.actions.loader import load_text
from destination.budget import Budget
from destination.config import BatchingConfig
from destination.consume import Consumer
from destination.deliver import Delivery
from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.events import Event
from destination.outcomes import Outcome, Status
from destination.pipeline import Pipeline
from destination.retry import RetryPolicy
from destination.salesforce.client import SalesforceClient
from destination.synclog import open_sync_log
from destination.synclog.base import SyncLog

EMAILS = [f"p{i}@fate.example" for i in range(4)]
GROUPS = ["g0", "g1", "g2"]
BASE_TIME = datetime(2026, 11, 1, tzinfo=UTC)

APP = """source: app
actions:
  - name: leads
    when: type = "identify" and traits.email exists
    object: Lead
    operation: upsert
    match: {{any: {{Email: $.traits.email}}}}
    mode: {mode}
    fields:
      Email: $.traits.email
      LastName: $.traits.last_name
      Company: $.traits.company
      Title: {{path: $.traits.title, policy: most_recent}}
  - name: accounts
    when: type = "group"
    object: Account
    operation: upsert
    match: {{any: {{External_Id__c: $.groupId}}}}
    mode: {mode}
    # group calls come from different users, so from different partitions: only event time orders them
    fields: {{Name: {{path: $.traits.name, policy: most_recent}}, External_Id__c: $.groupId}}
  - name: orders
    when: type = "track" and event = "Order"
    object: Opportunity
    operation: create
    mode: {mode}
    idempotency_field: External_Id__c   # how a create interrupted by a crash is found again
    fields: {{Name: $.properties.order, StageName: Prospecting, CloseDate: "2026-12-31"}}
    lookups:
      AccountId:
        object: Account
        match: {{any: {{External_Id__c: $.properties.group}}}}
  - name: cases
    when: type = "track" and event = "Help"
    object: Case
    operation: create
    mode: {mode}
    idempotency_field: External_Id__c
    fields: {{Subject: $.properties.subject}}
"""

CRM = """source: crm
actions:
  - name: contacts
    when: type = "identify" and traits.email exists
    object: Contact
    operation: update
    match: {{any: {{Email: $.traits.email}}}}
    on_many_matches: {on_many}
    mode: {mode}
    fields: {{Department: $.traits.dept}}
"""


@dataclass
class Case:
    """One generated stream and the conditions it runs under."""

    seed: int
    mode: str
    on_many: str
    contacts: dict[str, int]                  # seeded Contacts per e-mail (0, 1 or 2)
    events: list[tuple[str, dict[str, Any]]]  # (source, body), in stream order; repeats are adjacent
    faults: dict[str, Any]
    synclog_failures: int                      # how many sync-log writes fail (disk full) at the start
    crash_after: int | None                    # crash the consumer after this many outcomes (then restart)


def generate(seed: int, *, events: int = 40) -> Case:
    """A random case from a seed (the same seed gives the same case)."""
    rng = random.Random(seed)
    case = Case(seed=seed, mode=rng.choice(["rest", "rest", "bulk"]),
                on_many=rng.choice(["fail", "newest", "all"]),
                contacts={e: rng.choice([0, 1, 2]) for e in EMAILS}, events=[],
                faults=_faults(rng), synclog_failures=rng.choice([0, 0, 0, 2, 5]),
                crash_after=rng.choice([None, None, rng.randint(3, events)]))
    stamps = rng.sample(range(1, 24 * 60), events)
    for i in range(events):
        when = (BASE_TIME + timedelta(minutes=stamps[i])).isoformat().replace("+00:00", "Z")
        body = _body(rng, i, seed) | {"timestamp": when, "context": {"fate": i}}  # finds its rows
        source = "crm" if body["type"] == "identify" and rng.random() < 0.35 else "app"
        roll = rng.random()
        if roll < 0.2:
            body.pop("messageId")  # identity comes from the event log position
        case.events.append((source, body))
        if roll > 0.92 and "messageId" in body:
            case.events.append((source, dict(body)))  # redelivered right away, same messageId
    return case


def _faults(rng: random.Random) -> dict[str, Any]:
    faults: dict[str, Any] = {"seed": rng.randint(0, 10**6)}
    if rng.random() < 0.6:
        faults["error_503_rate"] = rng.choice([0.03, 0.08])
    if rng.random() < 0.4:
        faults["lock_error_rate"] = rng.choice([0.03, 0.08])
    if rng.random() < 0.2:
        faults["token_lifetime_seconds"] = 1
    if rng.random() < 0.3:
        faults["lost_response_rate"] = rng.choice([0.03, 0.08])
    if rng.random() < 0.2:
        faults["trigger_error_above"] = rng.choice([2, 4])  # calls with more records fail whole
    if rng.random() < 0.15:
        faults["outage_seconds"] = 1.5  # every data call refused with 503 for this long, mid-stream
    return faults


def _body(rng: random.Random, i: int, seed: int) -> dict[str, Any]:
    email = rng.choice(EMAILS)
    user = email.split("@")[0]
    kind = rng.random()
    base: dict[str, Any] = {"messageId": f"f{seed}-{i}"}
    if kind < 0.5:
        traits: dict[str, Any] = {"email": email, "last_name": f"L{i}", "company": f"C{i}", "dept": f"D{i}"}
        if rng.random() < 0.3:
            traits.pop("dept")
        if rng.random() < 0.7:
            traits["title"] = f"T{i}"
        return base | {"type": "identify", "userId": user, "traits": traits}
    if kind < 0.7:
        group = rng.choice(GROUPS)
        # any member sends a workspace's group calls, so they land on different partitions: only event time
        # orders them (Account Name is most_recent; seed 1157 once ended with an older name: a value written by a
        # delivery that died before recording its time, tests/delivery/test_most_recent_interrupted.py)
        return base | {"type": "group", "userId": user, "groupId": group, "traits": {"name": f"N{i}"}}
    if kind < 0.85:
        group = rng.choice(GROUPS)
        return base | {"type": "track", "userId": user, "event": "Order",
                       "properties": {"order": f"O{i}", "group": group}}
    return base | {"type": "track", "userId": user, "event": "Help", "properties": {"subject": f"S{i}"}}


# --- the reference model -------------------------------------------------------------------------------

@dataclass
class Expected:
    """What the org and the sync log must hold after a case."""

    leads: dict[str, dict[str, str]] = field(default_factory=dict)      # email → field values
    accounts: dict[str, str] = field(default_factory=dict)              # External_Id__c → Name
    cases: Counter[str] = field(default_factory=Counter)                # Subjects
    orders: dict[str, str | None] = field(default_factory=dict)         # Opportunity Name → group (or None)
    departments: dict[str, str | None] = field(default_factory=dict)    # contact key "email#n" → Department
    rows: Counter[tuple[int, str]] = field(default_factory=Counter)     # (event index, action) → outcome rows
    statuses: dict[tuple[int, str], set[str]] = field(default_factory=dict)  # allowed statuses / error codes


def expect(case: Case) -> Expected:
    """The pure reference model: final org state and outcome rows from the stream alone."""
    out = Expected()
    titles: dict[str, tuple[str, str]] = {}
    group_times: dict[str, str] = {}
    groups_seen: set[str] = set()
    departments: dict[str, str | None] = {}
    ok = {"succeeded", "skipped"}
    for index, (source, body) in unique_events(case.events):
        kind = body["type"]
        if kind == "identify" and source == "app":
            traits = body["traits"]
            lead = out.leads.setdefault(traits["email"], {})
            lead.update(LastName=traits["last_name"], Company=traits["company"])
            if "title" in traits:
                best = titles.get(traits["email"])
                if best is None or body["timestamp"] > best[0]:
                    titles[traits["email"]] = (body["timestamp"], traits["title"])
            out.rows[(index, "leads")] = 1
            out.statuses[(index, "leads")] = ok
        elif kind == "identify":
            email = body["traits"]["email"]
            n = case.contacts[email]
            key = (index, "contacts")
            if n == 0:
                out.rows[key], out.statuses[key] = 1, {"failed:NOT_FOUND"}
            elif n == 2 and case.on_many == "fail":
                out.rows[key], out.statuses[key] = 1, {"failed:MULTIPLE_MATCHES"}
            else:
                out.rows[key], out.statuses[key] = (2 if n == 2 and case.on_many == "all" else 1), ok
                if "dept" in body["traits"]:
                    targets = range(n) if case.on_many == "all" else [n - 1]  # n-1: the newest seeded
                    for c in targets:
                        departments[f"{email}#{c}"] = body["traits"]["dept"]
        elif kind == "group":
            newest = group_times.get(body["groupId"])
            if newest is None or body["timestamp"] > newest:
                group_times[body["groupId"]] = body["timestamp"]
                out.accounts[body["groupId"]] = body["traits"]["name"]
            groups_seen.add(body["groupId"])
            out.rows[(index, "accounts")] = 1
            out.statuses[(index, "accounts")] = ok
        elif body["event"] == "Order":
            group = body["properties"]["group"]
            out.orders[body["properties"]["order"]] = group if group in groups_seen else None
            out.rows[(index, "orders")] = 1
            out.statuses[(index, "orders")] = {"succeeded"}
        else:
            out.cases[body["properties"]["subject"]] += 1
            out.rows[(index, "cases")] = 1
            out.statuses[(index, "cases")] = {"succeeded"}
    for email, (_, title) in titles.items():
        out.leads[email]["Title"] = title
    for email, n in case.contacts.items():
        for c in range(n):
            out.departments[f"{email}#{c}"] = departments.get(f"{email}#{c}", f"seed{c}")
    return out


def unique_events(events: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[int, tuple[str, dict[str, Any]]]]:
    """The stream without adjacent redeliveries of a messageId, each with its index in the full stream."""
    out = []
    for i, (source, body) in enumerate(events):
        if i and "messageId" in body and events[i - 1] == (source, body):
            continue
        out.append((i, (source, body)))
    return out


# --- running a case through the real pipeline ------------------------------------------------------------

class FlakySyncLog:
    """The real SQLite sync log, whose first `failures` record() calls fail as a full disk would."""

    def __init__(self, inner: SyncLog, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        await self._inner.record(outcomes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CheckedConsumer(SqliteLogConsumer):
    """The embedded log's consumer, which checks at every commit that each event below the committed offset
    has its outcome rows (nothing acknowledged before its outcomes)."""

    def __init__(self, path: Path, sync_log: SyncLog) -> None:
        super().__init__(path)
        self.sync_log = sync_log
        self.read: dict[int, list[tuple[int, str, str]]] = {}
        self.violations: list[str] = []

    async def fetch(self, max_records: int = 500, wait_seconds: float = 0.5) -> list[Any]:
        records = await super().fetch(max_records, wait_seconds)
        for r in records:
            if r.event is not None:
                self.read.setdefault(r.partition, []).append((r.offset, r.event.source, r.event.message_id))
        return records

    async def commit(self, offsets: dict[int, int]) -> None:
        for partition, upto in offsets.items():
            for offset, source, message_id in self.read.get(partition, []):
                if offset < upto and not await self.sync_log.rows(_by_message(source, message_id), limit=1):
                    self.violations.append(f"offset {partition}/{offset} ({message_id}) committed without outcome")
        await super().commit(offsets)


def _by_message(source: str, message_id: str) -> Any:
    from destination.synclog.base import SyncLogFilter

    return SyncLogFilter(source=source, message_id=message_id)


async def run_case(case: Case, emulator: Any, connection: Any, workdir: Path) -> list[str]:
    """Run one case; returns the broken invariants (empty when the case holds)."""
    emulator.state.store.reset()
    emulator.state.faults.update(_CLEAR)
    contact_ids = _seed_contacts(emulator, case)
    sources = {"app": load_text(APP.format(mode=case.mode), "app.yaml"),
               "crm": load_text(CRM.format(mode=case.mode, on_many=case.on_many), "crm.yaml")}
    events_path, sync_url = workdir / f"events-{case.seed}.db", f"sqlite:///{workdir / f'sync-{case.seed}.db'}"
    async with SqliteEventLog(events_path) as event_log:
        await event_log.append([Event(source, body) for source, body in case.events])
    emulator.state.faults.update({k: v for k, v in case.faults.items() if k != "outage_seconds"})
    outage = asyncio.create_task(_outage(emulator, case.faults.get("outage_seconds", 0)))
    problems: list[str] = []
    policy = RetryPolicy(max_attempts=60, max_elapsed_seconds=30, backoff_initial_seconds=0.01,
                         backoff_max_seconds=0.1)  # outlasts every fault the generator injects
    async with open_sync_log(sync_url) as real_log, SalesforceClient(connection, policy=policy) as client:
        client.bulk.poll_initial = 0.02
        sync_log: Any = FlakySyncLog(real_log, case.synclog_failures)
        crash_after = case.crash_after
        for _life in range(2):  # a crash, then a restart on the same logs
            delivery = Delivery({"default": client}, sync_log=sync_log, budget=Budget(recheck_seconds=0.2),
                                backoff_seconds=0.01)
            pipeline = Pipeline(sources, delivery, sync_log,
                                batching=BatchingConfig(linger_ms=20, rest_size=8, bulk_size=8, max_attempts=20))
            source = CheckedConsumer(events_path, real_log)
            await source.start()
            consumer = Consumer(source, pipeline, commit_interval=0.05, fetch_size=7)
            task = asyncio.create_task(consumer.run())
            finished = await _wait_for_outcomes(real_log, case, crash_after)
            if crash_after is not None and not finished:
                # the process dies: nothing drained, nothing more committed, every task of it stopped where
                # it is (its linger timer too, which would otherwise flush old events after the restart)
                dying = [task, *pipeline.batcher._tasks]
                if pipeline.batcher._timer is not None:
                    dying.append(pipeline.batcher._timer)
                for part in dying:
                    part.cancel()
                await asyncio.gather(*dying, return_exceptions=True)
                problems += source.violations
                await source.stop()
                crash_after = None
                continue
            # Outcome rows alone do not say the last life is done: an event redelivered after the crash
            # already has the rows its first delivery recorded while its second write is still queued or in
            # flight. Stopping then would judge the org between the rewrite of an older value and the newer
            # one behind it (seed 1179: LastName 'L27' for 'L28'), so the org is read only once every event
            # of the log is written and committed, after the shutdown a `destination run` does (stop, drain).
            committed = finished and await _wait_until_committed(source)
            consumer.stop()
            await asyncio.wait_for(task, 30)
            try:
                await asyncio.wait_for(consumer.drain(), 30)
            except TimeoutError:
                problems.append("the last life did not drain within 30 s")
            problems += source.violations
            await source.stop()
            if not finished:
                problems.append("not every event got its outcomes within the time limit")
            elif not committed:
                problems.append("not every event was committed within the time limit")
            break
        rows = await real_log.rows(limit=10_000)
    await outage
    emulator.state.faults.update(_CLEAR)
    return problems + compare(case, expect(case), rows, emulator, contact_ids)


_CLEAR = {"error_503_rate": 0, "lock_error_rate": 0, "token_lifetime_seconds": None, "lost_response_rate": 0,
          "trigger_error_above": None}


async def _outage(emulator: Any, seconds: float) -> None:
    """The org refuses every data call for `seconds`, starting shortly after the stream does."""
    if seconds:
        await asyncio.sleep(0.2)
        before = emulator.state.faults.error_503_rate
        emulator.state.faults.update({"error_503_rate": 1.0})
        await asyncio.sleep(seconds)
        emulator.state.faults.update({"error_503_rate": before})


async def _wait_for_outcomes(sync_log: SyncLog, case: Case, crash_after: int | None) -> bool:
    """True once every event has its outcome rows; False at a crash point or after 60 s."""
    want = sum(expect(case).rows.values())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        have = sum((await sync_log.counts()).values())
        if crash_after is not None and have >= crash_after:
            return False
        if have >= want:
            await asyncio.sleep(0.1)  # and nothing more arrives
            return sum((await sync_log.counts()).values()) >= want
        await asyncio.sleep(0.02)
    return False


async def _wait_until_committed(source: SqliteLogConsumer, seconds: float = 30) -> bool:
    """True once every partition's committed offset is at the end of the log: each event this life read is
    written, recorded and acknowledged, and nothing of it is left in the batcher or in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if not any((await source.lag()).values()):
            return True
        await asyncio.sleep(0.02)
    return False


def _seed_contacts(emulator: Any, case: Case) -> dict[str, str]:
    """Contacts seeded per case; key "email#n", n in creation order (the last is the newest)."""
    ids = {}
    for email, n in case.contacts.items():
        for c in range(n):
            result = emulator.state.store.insert("Contact", {"LastName": f"C{c}", "Email": email,
                                                             "Department": f"seed{c}"})
            ids[f"{email}#{c}"] = result.id
    return ids


def compare(case: Case, want: Expected, rows: Sequence[Any], emulator: Any, contact_ids: dict[str, str]
            ) -> list[str]:
    """The invariants, as a list of what does not hold (created rows = records created for every object, after
    crashes, SIGKILLs and lost answers too: creates and upserts are reconciled through their intents)."""
    problems: list[str] = []
    store = emulator.state.store
    index_of = {body["context"]["fate"]: i for i, (_, body) in unique_events(case.events)}
    got: Counter[tuple[int, str]] = Counter()
    for row in rows:
        key = (index_of.get(row.event.get("context", {}).get("fate"), -1), row.action)
        got[key] += 1
        status = row.status.value if row.status is not Status.FAILED else f"failed:{row.error_code}"
        allowed = want.statuses.get(key)
        if allowed is not None and status not in allowed and row.status.value not in allowed:
            problems.append(f"event {key}: {status} ({row.message}), expected one of {sorted(allowed)}")
    if got != want.rows:
        diff = {k: (got.get(k, 0), want.rows.get(k, 0)) for k in set(got) | set(want.rows)
                if got.get(k, 0) != want.rows.get(k, 0)}
        problems.append(f"outcome rows (got, want) differ: {dict(sorted(diff.items())[:8])}")
    leads = store.records("Lead")
    by_email = Counter(r["Email"] for r in leads)
    if sorted(by_email) != sorted(want.leads) or any(n > 1 for n in by_email.values()):
        problems.append(f"Leads by e-mail {dict(by_email)}, want one each of {sorted(want.leads)}")
    for lead in leads:
        for name, value in want.leads.get(lead["Email"], {}).items():
            if lead.get(name) != value:
                problems.append(f"Lead {lead['Email']}.{name} = {lead.get(name)!r}, want {value!r}")
    accounts = store.records("Account")
    got_accounts = Counter(a.get("External_Id__c") for a in accounts)
    if set(got_accounts) != set(want.accounts) or any(n > 1 for n in got_accounts.values()):
        problems.append(f"Accounts {dict(got_accounts)}, want one each of {sorted(want.accounts)}")
    for account in accounts:
        if want.accounts.get(account.get("External_Id__c")) not in (None, account.get("Name")):
            problems.append(f"Account {account.get('External_Id__c')}.Name = {account.get('Name')!r}, "
                            f"want {want.accounts[account['External_Id__c']]!r}")
    subjects = Counter(c.get("Subject") for c in store.records("Case"))
    if subjects != want.cases:
        problems.append(f"Cases {dict(subjects)}, want {dict(want.cases)}")
    account_of = {a["Id"]: a.get("External_Id__c") for a in accounts}
    opportunities = store.records("Opportunity")
    names = Counter(o.get("Name") for o in opportunities)
    if names != Counter(list(want.orders)):
        problems.append(f"Opportunities {dict(names)}, want one each of {sorted(want.orders)}")
    for opp in opportunities:
        group = want.orders.get(opp.get("Name"))
        if group is not None and account_of.get(opp.get("AccountId")) != group:
            problems.append(f"Opportunity {opp.get('Name')} has AccountId {opp.get('AccountId')}, want {group}'s")
    for key, department in want.departments.items():
        record = store.get(contact_ids[key])
        value = record[1].get("Department") if record else None
        if value != department:
            problems.append(f"Contact {key}.Department = {value!r}, want {department!r}")
    created = Counter(row.object for row in rows if row.created)
    actual = {"Lead": len(leads), "Account": len(accounts), "Case": sum(subjects.values()),
              "Opportunity": len(opportunities)}
    for obj, n in actual.items():
        if created.get(obj, 0) != n:
            problems.append(f"{created.get(obj, 0)} rows say a {obj} was created; {n} were")
    return problems



async def run_case_killed(case: Case, emulator: Any, workdir: Path, process_factory: Any, port: int) -> list[str]:
    """Run one case through a real `destination run` process that is SIGKILLed once mid-stream (after
    `case.crash_after` outcomes, or half of them) and started again; returns the broken invariants."""
    emulator.state.store.reset()
    emulator.state.faults.update(_CLEAR)
    contact_ids = _seed_contacts(emulator, case)
    actions = workdir / f"actions-{case.seed}"
    actions.mkdir()
    (actions / "app.yaml").write_text(APP.format(mode=case.mode))
    (actions / "crm.yaml").write_text(CRM.format(mode=case.mode, on_many=case.on_many))
    events_path, sync_path = workdir / f"events-{case.seed}.db", workdir / f"sync-{case.seed}.db"
    async with SqliteEventLog(events_path) as event_log:
        await event_log.append([Event(source, body) for source, body in case.events])
    config = workdir / f"destination-{case.seed}.yaml"
    config.write_text(f"""connections:
  default:
    login_url: {emulator.url}
    auth: {{method: client_credentials, client_id: emulator-client, client_secret: emulator-secret}}
    ca_bundle: {emulator.ca_pem}
    allowed_hosts: [127.0.0.1]
actions_dir: {actions}
sync_log_url: sqlite:///{sync_path}
event_log: {{path: {events_path}}}
batching: {{linger_ms: 20, rest_size: 8, bulk_size: 8, max_attempts: 20}}
budget: {{recheck_seconds: 0.5}}
""")
    emulator.state.faults.update({k: v for k, v in case.faults.items() if k != "outage_seconds"})
    process = process_factory(config, port, workdir / f"destination-{case.seed}.log")
    want = sum(expect(case).rows.values())
    kill_at = case.crash_after or max(1, want // 2)
    problems: list[str] = []
    async with open_sync_log(f"sqlite:///{sync_path}") as log:
        process.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            killed = False
            while loop.time() < deadline:
                have = sum((await log.counts()).values())
                if not killed and have >= kill_at:
                    process.kill()
                    killed = True
                    process.start()
                # and, as in run_case, once the restarted process has written and committed what it reads again
                if have >= want and killed and await _log_committed(events_path):
                    await asyncio.sleep(0.5)
                    break
                await asyncio.sleep(0.02)
            else:
                problems.append("not every event got its outcomes and was committed within the time limit")
        finally:
            process.stop()
        rows = await log.rows(limit=10_000)
    emulator.state.faults.update(_CLEAR)
    return problems + compare(case, expect(case), rows, emulator, contact_ids)


async def _log_committed(events_path: Path) -> bool:
    """Whether the destination's consumer has committed every event of the embedded log (read afresh: the
    process that commits is another one)."""
    reader = SqliteLogConsumer(events_path)
    await reader.start()
    try:
        return not any((await reader.lag()).values())
    finally:
        await reader.stop()
