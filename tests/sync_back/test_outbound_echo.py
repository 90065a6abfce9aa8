"""The Outbound Message path uses the sync-back echo rule: a notification the integration user caused, whose
fields hold what the push direction last wrote, is skipped as ECHO_SUPPRESSED (recorded, counted); the same
notification after a person's change is taken."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from destination.actions.loader import load_text
from destination.eventlog.sqlite import SqliteEventLog, SqliteLogConsumer
from destination.ingest.outbound import Outbound, OutboundAccess
from destination.metrics import Metrics
from destination.outcomes import Status
from destination.synclog import SyncLogFilter, open_sync_log

CRM = """source: crm
write_keys: [crm-key]
outbound: {secrets: [crm-outbound-secret-0123456789], organization_ids: [00D8c0000000001EAA]}
actions:
  - name: contact-sync
    when: event = "Salesforce Outbound Message"
    object: Contact
    operation: update
    match: {any: {Id: $.properties.Id}}
    fields: {Description: synced}
"""
OURS, PERSON, CONTACT = "0058c0000000001AAA", "0058c0000000004AAA", "0038c0000000001AAA"


def _soap(notification_id: str, modified_by: str, title: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D8c0000000001EAA</OrganizationId>
   <ActionId>04k8c0000000001AAA</ActionId>
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{CONTACT}</sf:Id>
     <sf:LastModifiedById>{modified_by}</sf:LastModifiedById>
     <sf:Title>{title}</sf:Title>
     <sf:NumberOfEmployees__c>5</sf:NumberOfEmployees__c>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""


@pytest.mark.parametrize("modified_by, title, echo", [
    (OURS, "CTO", True),       # our write coming back
    (PERSON, "CTO", False),    # a person saved the same value: news for the app
    (OURS, "CEO", False),      # the integration user, but not what we wrote (another integration)
])
async def test_outbound_notification_of_our_own_write_is_suppressed(tmp_path: Path, modified_by: str, title: str,
                                                                    echo: bool) -> None:
    metrics = Metrics()
    async with SqliteEventLog(tmp_path / "events.db") as events, \
            open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        await log.record_written_values([("Contact", CONTACT, "Title", "CTO"),
                                         ("Contact", CONTACT, "NumberOfEmployees__c", 5)])
        app = FastAPI()
        app.include_router(Outbound(OutboundAccess({"crm": load_text(CRM, "crm.yaml")}), events, log,
                                    metrics=metrics, own_users=lambda: {OURS}).router)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
            r = await http.post("/v1/salesforce/outbound/crm-outbound-secret-0123456789",
                                content=_soap("04l8c0000000009AAA", modified_by, title))
        assert r.status_code == 200 and "<Ack>true</Ack>" in r.text
        rows = await log.rows(SyncLogFilter(message_id="om-04l8c0000000009AAA"))
    if echo:
        assert [(r.status, r.error_code, r.record_id) for r in rows] == [(Status.SKIPPED, "ECHO_SUPPRESSED",
                                                                          CONTACT)]
        assert 'destination_loop_guard_dropped_total{source="crm"} 1.0' in metrics.render().decode()
    else:
        assert rows == []  # taken: appended to the event log, delivered later


async def test_a_notification_of_the_integration_user_while_our_write_is_in_flight_is_resent_then_judged(
        tmp_path: Path) -> None:
    """Salesforce can notify before delivery has recorded what it wrote: while a batch writing to the object is
    in flight, an integration-user notification that is not yet a known echo is not acknowledged (503; Salesforce
    resends it). Resent once the batch recorded its values, it is suppressed as our echo; a person's change is
    taken at once, in flight or not."""
    metrics = Metrics()
    async with SqliteEventLog(tmp_path / "events.db") as events, \
            open_sync_log(f"sqlite:///{tmp_path / 'sync.db'}") as log:
        app = FastAPI()
        app.include_router(Outbound(OutboundAccess({"crm": load_text(CRM, "crm.yaml")}), events, log,
                                    metrics=metrics, own_users=lambda: {OURS}).router)
        url = "/v1/salesforce/outbound/crm-outbound-secret-0123456789"
        note = await log.begin_writes({"Contact": []})  # our batch: Salesforce applied it, not yet recorded
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
            ours = await http.post(url, content=_soap("04l8c0000000010AAA", OURS, "CTO"))
            persons = await http.post(url, content=_soap("04l8c0000000011AAA", PERSON, "CFO"))
            assert ours.status_code == 503 and "<Ack>true</Ack>" not in ours.text
            assert persons.status_code == 200 and "<Ack>true</Ack>" in persons.text
            assert await log.rows(SyncLogFilter(message_id="om-04l8c0000000010AAA")) == []
            await log.record_written_values([("Contact", CONTACT, "Title", "CTO")], in_flight=note)
            resent = await http.post(url, content=_soap("04l8c0000000010AAA", OURS, "CTO"))
        assert resent.status_code == 200 and "<Ack>true</Ack>" in resent.text
        rows = await log.rows(SyncLogFilter(message_id="om-04l8c0000000010AAA"))
        assert [(r.status, r.error_code) for r in rows] == [(Status.SKIPPED, "ECHO_SUPPRESSED")]
    reader = SqliteLogConsumer(tmp_path / "events.db")
    await reader.start()
    try:
        taken = [r.event.message_id for r in await reader.fetch(100, wait_seconds=0) if r.event is not None]
    finally:
        await reader.stop()
    assert taken == ["om-04l8c0000000011AAA"]  # the person's change only
