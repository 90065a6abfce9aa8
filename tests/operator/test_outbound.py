"""Salesforce Outbound Messages: SOAP in, Ack out, one event per notification, resends deduplicated, and
no loop: a record we wrote because of an outbound message does not trigger another write in the window."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from settings_support import REPO, settings_file

from destination.actions.loader import load_text
from destination.config import load_settings
from destination.eventlog.base import EventLog, LogUnavailable
from destination.events import Event
from destination.ingest.keys import WriteKeys
from destination.ingest.outbound import Outbound
from destination.service import build

CRM = """source: crm
write_keys: [crm-key]
actions:
  - name: contact-sync
    when: event = "Salesforce Outbound Message" and properties.sobject_type = "Contact"
    object: Contact
    operation: update
    match: {any: {Id: $.properties.Id}}
    fields: {Description: {template: "synced from {{ properties.Email }}"}}
"""


def _soap(notification_id: str, contact_id: str, email: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D8c0000000001EAA</OrganizationId>
   <ActionId>04k8c0000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://emulator.my.salesforce.com/services/Soap/c/62.0</EnterpriseUrl>
   <PartnerUrl>https://emulator.my.salesforce.com/services/Soap/u/62.0</PartnerUrl>
   <Notification>
    <Id>{notification_id}</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{contact_id}</sf:Id>
     <sf:Email>{email}</sf:Email>
     <sf:Title xsi:nil="true"/>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""


async def test_outbound_messages_become_events_are_acked_and_do_not_loop(tls_emulator: Any, tmp_path: Path) -> None:
    actions = tmp_path / "actions"
    shutil.copytree(REPO / "actions", actions)
    (actions / "crm.yaml").write_text(CRM)
    config = settings_file(tmp_path, tls_emulator)
    config.write_text(config.read_text().replace(f"actions_dir: {REPO / 'actions'}", f"actions_dir: {actions}"))
    contact = tls_emulator.state.store.insert("Contact", {"LastName": "C", "Email": "c@x.example"}).id
    async with AsyncExitStack() as stack:
        service = await build(load_settings(config), stack)
        assert service.consumer is not None
        consumer = asyncio.create_task(service.consumer.run())
        transport = httpx.ASGITransport(app=service.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            r = await http.post("/v1/salesforce/outbound", params={"key": "crm-key"},
                                content=_soap("04l8c0000000001AAA", contact, "c@x.example"),
                                headers={"Content-Type": "text/xml"})
            assert r.status_code == 200 and "<Ack>true</Ack>" in r.text and "notificationsResponse" in r.text
            for _ in range(100):
                if service.consumer.consumed >= 1 and service.consumer.tracker.in_flight() == 0:
                    break
                await asyncio.sleep(0.05)
            assert tls_emulator.state.store.get(contact)[1]["Description"] == "synced from c@x.example"
            # the write above makes Salesforce send a new notification about the same record: no loop
            again = await http.post("/v1/salesforce/outbound", params={"key": "crm-key"},
                                    content=_soap("04l8c0000000002AAA", contact, "c@x.example"))
            assert again.status_code == 200 and "<Ack>true</Ack>" in again.text
            assert service.outbound.dropped_as_loops == 1
            repeat = await http.post("/v1/salesforce/outbound", params={"key": "crm-key"},
                                     content=_soap("04l8c0000000001AAA", contact, "c@x.example"))
            assert repeat.status_code == 200
            assert (await http.post("/v1/salesforce/outbound", params={"key": "nope"}, content=b"<x/>")).status_code == 401
            assert (await http.post("/v1/salesforce/outbound", params={"key": "crm-key"},
                                    content=b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")).status_code == 400
        await asyncio.sleep(0.3)
        service.consumer.stop()
        await consumer
        assert service.consumer.consumed == 1  # one event: the loop and the resend were never logged


async def test_a_notification_the_log_could_not_store_is_not_acked_and_its_resend_is_taken() -> None:
    class DownOnce(EventLog):
        def __init__(self) -> None:
            self.stored: list[Event] = []
            self.down = True

        async def open(self) -> None: ...

        async def close(self) -> None: ...

        async def append(self, events: Sequence[Event]) -> None:
            if self.down:
                self.down = False
                raise LogUnavailable("broker down")
            self.stored += events

    log = DownOnce()
    app = FastAPI()
    app.include_router(Outbound(WriteKeys({"crm": load_text(CRM, "crm.yaml")}), log, None).router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
        body = _soap("04l8c0000000009AAA", "0038c0000000001AAA", "c@x.example")
        first = await http.post("/v1/salesforce/outbound", params={"key": "crm-key"}, content=body)
        assert first.status_code == 503 and "<Ack>" not in first.text
        resend = await http.post("/v1/salesforce/outbound", params={"key": "crm-key"}, content=body)
        assert resend.status_code == 200 and "<Ack>true</Ack>" in resend.text
    assert [e.body["messageId"] for e in log.stored] == ["om-04l8c0000000009AAA"]
