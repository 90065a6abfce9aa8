"""The preview differential test's parts: a seeded corpus of events that exercises every way a write can
go (valid and invalid picklist values, per record type too, valid and invalid record types, missing required fields, over-long strings, wrong types, fields
the org does not let us write, existing and new records, repeated keys), the org's starting records, and
a run of the same events through `preview` and through the real pipeline, compared outcome by outcome."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sf_support import connection_for

from destination.actions.loader import load_text
from destination.budget import Budget
from destination.config import BatchingConfig
from destination.deliver import Delivery
from destination.events import Event
from destination.outcomes import Status
from destination.pipeline import Pipeline
from destination.preview import preview
from destination.salesforce.client import SalesforceClient
from destination.salesforce.connection import AuthSettings
from destination.synclog import open_sync_log

SOURCE = load_text("""source: corpus
actions:
  - name: leads            # upsert by a looked-up field (SOQL), REST
    when: type = "identify"
    object: Lead
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields:
      Email: $.traits.email
      LastName: $.traits.last_name
      Company: $.traits.company
      Title: $.traits.title
      Status: $.traits.status
      LeadSource: $.traits.source
      NumberOfEmployees: $.traits.employees
      AnnualRevenue: $.traits.revenue
      HasOptedOutOfEmail: $.traits.opted_out
      IsConverted: $.traits.converted
      City: {path: $.traits.city, policy: set_if_empty}
      Phone: $.traits.phone
      RecordTypeId: $.traits.record_type
  - name: contacts         # native upsert by an external ID (no lookup), REST, drops fields the org refuses
    when: type = "track" and event = "Signed Up"
    object: Contact
    operation: upsert
    match: {any: {External_Id__c: $.properties.contact_id}}
    retry_without_failing_fields: true
    fields:
      LastName: $.properties.last_name
      Email: $.properties.email
      Birthdate: $.properties.birthday
      MailingCity: $.properties.city
      LeadSource: $.properties.source
      Name: $.properties.full_name
  - name: surveys          # plain creates
    when: type = "track" and event = "Survey Submitted"
    object: Survey_Response__c
    operation: create
    fields:
      Score__c: $.properties.score
      Sentiment__c: $.properties.sentiment
      Would_Recommend__c: $.properties.recommend
      Submitted_At__c: $.properties.submitted_at
      Email__c: $.properties.email
      Summary__c: $.properties.summary
      Comments__c: {path: $.properties.comments, required: true}
  - name: cases            # updates of existing records only (unknown keys: NOT_FOUND)
    when: type = "track" and event = "Ticket Updated"
    object: Case
    operation: update
    match: {any: {External_Id__c: $.properties.ticket}}
    fields:
      Status: $.properties.status
      Priority: $.properties.priority
      Subject: $.properties.subject
      IsClosed: $.properties.closed
  - name: deals            # updates by Salesforce Id (no lookup: the org answers for bad Ids)
    when: type = "track" and event = "Deal Moved"
    object: Opportunity
    operation: update
    match: {any: {Id: $.properties.deal_id}}
    fields:
      StageName: $.properties.stage
      NextStep: $.properties.next_step
      Probability: $.properties.probability
  - name: survey_removals  # deletes by Salesforce Id
    when: type = "track" and event = "Survey Withdrawn"
    object: Survey_Response__c
    operation: delete
    match: {any: {Id: $.properties.survey_id}}
  - name: accounts         # native upsert through Bulk API 2.0 (CSV typing)
    when: type = "group"
    object: Account
    operation: upsert
    mode: bulk
    match: {any: {External_Id__c: $.groupId}}
    fields:
      Name: $.traits.name
      NumberOfEmployees: $.traits.employees
      AnnualRevenue: $.traits.revenue
      Type: $.traits.type
      BillingCity: $.traits.city
      IsPersonAccount: $.traits.person
""", "corpus.yaml")

BATCHING = BatchingConfig(rest_size=25, bulk_size=60, linger_ms=3_600_000)  # split by size only, many batches
#: the same without the coalescing window: each event's values meet the org in a batch of their own more often,
#: so a corpus reaches more of the org's refusals (with the window a later event of a record replaces them)
UNCOALESCED = BATCHING.model_copy(update={"window_ms": 0})
EXISTING_LEADS = 40
EXISTING_CONTACTS = 30
EXISTING_CASES = 30
EXISTING_ACCOUNTS = 20
EXISTING_DEALS = 20
EXISTING_SURVEYS = 20
# Lead record types of the default org: Partner_Lead's Status lacks "Working - Contacted" (and the restricted
# user may not use Partner_Lead); Legacy_Lead is inactive; the last is an Account's
SALES_LEAD, PARTNER_LEAD, LEGACY_LEAD, ACCOUNT_TYPE = ("0128c0000000003AAA", "0128c0000000004AAA",
                                                       "0128c0000000005AAA", "0128c0000000001AAA")
RENEWAL = "0128c0000000007AAA"  # an Opportunity record type (updated by Id: its type comes from the lookup)


def seed_org(store: Any) -> dict[str, list[str]]:
    """The org both sides start from: some records of every object the corpus touches (the Ids of those
    addressed by Id)."""
    ids: dict[str, list[str]] = {"deals": [], "surveys": [], "leads": [], "renewals": []}
    for i in range(EXISTING_LEADS):
        partner = i % 4 == 0  # a record type whose Status values an update is checked against
        ids["leads"].append(store.insert("Lead", {"LastName": f"Lead{i}", "Company": "Seeded", "Email": f"lead{i}@corpus.example",
                              "Title": "Engineer" if i % 2 else None, "City": "Oslo" if i % 3 == 0 else None,
                              "Status": "Open - Not Contacted" if partner else "Working - Contacted",
                              "RecordTypeId": PARTNER_LEAD if partner else SALES_LEAD}).id)
    for i in range(EXISTING_CONTACTS):
        store.insert("Contact", {"LastName": f"Contact{i}", "External_Id__c": f"C-{i}",
                                 "Email": f"contact{i}@corpus.example"})
    for i in range(EXISTING_CASES):
        store.insert("Case", {"Subject": f"Ticket {i}", "External_Id__c": f"T-{i}", "Priority": "Low"})
    for i in range(EXISTING_ACCOUNTS):
        store.insert("Account", {"Name": f"Account {i}", "External_Id__c": f"A-{i}"})
    for i in range(EXISTING_DEALS):
        ids["deals"].append(store.insert("Opportunity", {"Name": f"Deal {i}", "StageName": "Prospecting",
                                                         "CloseDate": "2026-12-31", "NextStep": "Call",
                                                         # a Renewal's StageName lacks "Qualification"
                                                         "RecordTypeId": RENEWAL if i % 3 == 0 else None}).id)
        if i % 3 == 0:
            ids["renewals"].append(ids["deals"][-1])
    for i in range(EXISTING_SURVEYS):
        ids["surveys"].append(store.insert("Survey_Response__c", {"Score__c": i}).id)
    return ids


def _pick(rng: random.Random, good: list[Any], bad: list[Any], bad_share: float = 0.1,
          missing_share: float = 0.2) -> Any:
    roll = rng.random()
    if roll < missing_share:
        return None
    if roll < missing_share + bad_share:
        return rng.choice(bad)
    return rng.choice(good)


def _bad_id(rng: random.Random, good: str, ids: dict[str, list[str]]) -> str:
    """An Id the org refuses or does not have: malformed, a bad checksum, another object's, a missing one."""
    return rng.choice(["not-an-id", good[:15] + "zzz", rng.choice(ids["leads"]), good[:5] + "ZZZZZZZZZZ"])


def _body(rng: random.Random, n: int, ids: dict[str, list[str]]) -> dict[str, Any]:
    """One event: mostly valid, with each kind of bad value now and then."""
    kind = rng.choices(["lead", "contact", "survey", "case", "account", "deal", "withdrawal", "other"],
                       [40, 20, 12, 12, 10, 8, 3, 6])[0]
    body: dict[str, Any] = {"messageId": f"m{n}", "userId": f"u{n}"}
    if kind == "lead":
        key = rng.randrange(EXISTING_LEADS + 80)  # < EXISTING_LEADS: an existing record; repeats across events
        email = f"lead{key}@corpus.example"
        if rng.random() < 0.1:
            email = email.upper()  # the same record, matched case-insensitively
        if rng.random() < 0.03:
            email = f"not-an-email-{key}"
        traits = {"email": email,
                  "last_name": _pick(rng, [f"Last{key}", f"L{n}"], ["", "   "], 0.05, 0.1),
                  "company": _pick(rng, ["Acme", "Initech", "Globex"], [""], 0.0, 0.1),
                  "title": _pick(rng, ["CTO", "VP Sales", "Engineer"], ["T" * 129, "x" * 200], 0.06),
                  "status": _pick(rng, ["Open - Not Contacted", "Working - Contacted"], ["Hot Lead", "open"], 0.08),
                  "source": _pick(rng, ["Web", "Other", "Partner Referral"], ["Podcast"], 0.1),
                  "employees": _pick(rng, [10, 250, "40", 12.0], ["many", 12.5, True, "1e3x"], 0.06),
                  "revenue": _pick(rng, [1000, 2500.5, "300"], ["lots", False], 0.05),
                  "opted_out": _pick(rng, [True, False, "true"], ["yes", 1, "maybe"], 0.05, 0.5),
                  "converted": _pick(rng, [True], [True], 0.0, 0.97),
                  "city": _pick(rng, ["Paris", "Lima"], ["C" * 41], 0.05, 0.3),
                  "phone": _pick(rng, ["+33 1 23 45 67 89"], ["+1 555 0100 " * 4], 0.04, 0.5),  # phones are never cut
                  "record_type": _pick(rng, [SALES_LEAD, PARTNER_LEAD],
                                       [LEGACY_LEAD, ACCOUNT_TYPE, "012000000000999AAA", "012-nope"], 0.05, 0.6)}
        body.update(type="identify", traits={k: v for k, v in traits.items() if v is not None})
    elif kind == "contact":
        key = rng.randrange(EXISTING_CONTACTS + 40)
        props = {"contact_id": f"C-{key}",
                 "last_name": _pick(rng, [f"Contact{key}", f"Name{n}"], [""], 0.03, 0.15),
                 "email": _pick(rng, [f"c{n}@corpus.example"], ["nope", "a@b"], 0.08),
                 "birthday": _pick(rng, ["1990-05-01", "1985-12-31T00:00:00Z"], ["05/01/1990", "1990-02-30", 19900501],
                                   0.1),
                 "city": _pick(rng, ["Berlin", "Quito"], ["Q" * 45], 0.06),
                 "source": _pick(rng, ["Web", "Partner Referral"], ["Billboard"], 0.1),
                 "full_name": _pick(rng, ["Some Name"], ["Some Name"], 0.0, 0.95)}
        body.update(type="track", event="Signed Up", properties={k: v for k, v in props.items() if v is not None})
    elif kind == "survey":
        props = {"score": _pick(rng, [1, 7, 9.5, "8"], ["ten", True], 0.08),
                 "sentiment": _pick(rng, ["Positive", "Neutral", "Negative"], ["Angry", "positive"], 0.1),
                 "recommend": _pick(rng, [True, False, "false"], ["sure", 0], 0.08),
                 "submitted_at": _pick(rng, ["2026-11-30T10:00:00Z", "2026-11-30T10:00:00+0100", "2026-11-29"],
                                       ["yesterday", 1764496800, "2026-13-01T00:00:00Z"], 0.1),
                 "email": _pick(rng, [f"s{n}@corpus.example"], ["bad@", "@bad.example"], 0.06),
                 "summary": _pick(rng, ["x"], ["x"], 0.0, 0.96),
                 "comments": _pick(rng, ["Great", "Meh " * 10], [""], 0.0, 0.05)}
        body.update(type="track", event="Survey Submitted",
                    properties={k: v for k, v in props.items() if v is not None})
    elif kind == "case":
        key = rng.randrange(EXISTING_CASES + 10)
        props = {"ticket": f"T-{key}",
                 "status": _pick(rng, ["New", "Working", "Escalated"], ["Reopened", "closed"], 0.1),
                 "priority": _pick(rng, ["High", "Low"], ["Urgent"], 0.1),
                 "subject": _pick(rng, [f"Subject {n}", f"Ticket {key}"], ["S" * 256], 0.05),
                 "closed": _pick(rng, [True], [True], 0.0, 0.97)}
        body.update(type="track", event="Ticket Updated", properties={k: v for k, v in props.items() if v is not None})
    elif kind == "account":
        key = rng.randrange(EXISTING_ACCOUNTS + 30)
        traits = {"name": _pick(rng, [f"Account {key}", f"Co {n}"], ["N" * 256], 0.05, 0.15),
                  "employees": _pick(rng, [5, "120", 33.0], ["lots", 7.5, "1,000"], 0.1),
                  "revenue": _pick(rng, [1e6, "42.5"], ["$5"], 0.06),
                  "type": _pick(rng, ["Prospect", "Partner"], ["Vendor"], 0.1),
                  "city": _pick(rng, ["Rome", "Cairo"], ["R" * 41], 0.06),
                  "person": _pick(rng, [True], [True], 0.0, 0.97)}
        body.update(type="group", groupId=f"A-{key}", traits={k: v for k, v in traits.items() if v is not None})
    elif kind == "deal":
        deal = rng.choice(ids["deals"])
        if rng.random() < 0.1:
            deal = _bad_id(rng, deal, ids)
        elif rng.random() < 0.2:
            deal = deal[:15]  # the 15-character form of the same Id
        props = {"deal_id": deal,
                 "stage": _pick(rng, ["Qualification", "Closed Won", "Prospecting"], ["Won", "closed won"], 0.1),
                 "next_step": _pick(rng, ["Call", "Demo"], ["N" * 256], 0.05),
                 "probability": _pick(rng, [10, 50, "75"], ["likely"], 0.05)}
        body.update(type="track", event="Deal Moved", properties={k: v for k, v in props.items() if v is not None})
    elif kind == "withdrawal":
        survey = rng.choice(ids["surveys"])
        if rng.random() < 0.15:
            survey = rng.choice(["not-an-id", survey[:15] + "zzz", survey[:5] + "ZZZZZZZZZZ"])
        body.update(type="track", event="Survey Withdrawn", properties={"survey_id": survey})
    else:
        body.update(rng.choice([{"type": "page", "name": "Home"},
                                {"type": "track", "event": "Signed Up", "properties": {"last_name": "NoKey"}},
                                {"type": "identify", "traits": {"email": "optout@corpus.example"},
                                 "integrations": {"Salesforce": False}}]))
    return body


def corpus(n: int, ids: dict[str, list[str]], seed: int = 15) -> list[Event]:
    """`n` events from a seeded generator (the same seed and seeded org give the same events)."""
    rng = random.Random(seed)
    return [Event("corpus", _body(rng, i, ids)) for i in range(n)]


Verdict = tuple[str, str | None]  # (create | update | delete | skip | fail, error or reason code)


@dataclass
class Comparison:
    predicted: dict[tuple[str, str], Verdict]
    actual: dict[tuple[str, str], Verdict]

    def disagreements(self) -> list[str]:
        keys = sorted(set(self.predicted) | set(self.actual), key=lambda k: (int(k[0][1:]) if k[0][1:].isdigit()
                                                                          else 0, k))
        return [f"{k}: predicted {self.predicted.get(k)}, actual {self.actual.get(k)}" for k in keys
                if self.predicted.get(k) != self.actual.get(k)]


async def preview_then_run(emulator: Any, events: list[Event], tmp_path: Path,
                           auth: AuthSettings | None = None, batching: BatchingConfig = BATCHING) -> Comparison:
    """The corpus through `preview`, then through the pipeline (Delivery against the same org, untouched by
    the preview), as the user `auth` logs in as (default: the admin); each event's predicted and recorded
    outcome."""
    sources = {"corpus": SOURCE}
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            SalesforceClient(connection_for(emulator, auth), backoff_initial=0.01, backoff_max=0.05))
        client.bulk.poll_initial = 0.05
        client.bulk.poll_max = 0.1
        delivery = Delivery({"default": client}, budget=Budget(recheck_seconds=0.2), backoff_seconds=0.01)
        before = dict(emulator.state.usage.by_endpoint)
        report = await preview(sources, delivery, events, batching=batching)
        after = emulator.state.usage.by_endpoint
        assert {k for k in after if after[k] != before.get(k, 0)} <= {"query", "sobjects/describe", "ui-api"}  # no writes
        predicted = {(p.event, p.action or ""): (p.verdict, p.code) for p in report.predictions}
        sync_log = await stack.enter_async_context(open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}"))
        pipeline = Pipeline(sources, delivery, sync_log, batching=batching)
        for event in events:
            await pipeline.submit(event)
        await pipeline.drain()
        rows = await sync_log.rows(limit=10 * len(events))
    actual: dict[tuple[str, str], Verdict] = {}
    for row in rows:
        if row.status is Status.FAILED:
            verdict: Verdict = ("fail", row.error_code)
        elif row.status is Status.SKIPPED:
            verdict = ("skip", (row.reason or "").split(":")[0])
        else:
            verdict = ("delete" if row.operation == "delete" else "create" if row.created else "update", None)
        actual[(row.message_id, row.action or "")] = verdict
    return Comparison(predicted, actual)
