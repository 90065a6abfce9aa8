"""Salesforce Outbound Messages: SOAP in, Ack out, one event per notification, resends deduplicated, and
no loop: a record we wrote because of an outbound message does not trigger another write in the window.
Only the source's outbound secret (never a write key) and its allow-listed org Ids are accepted, and a DTD is
refused in any encoding; a refusal is a SOAP fault and stores nothing."""

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
from destination.ingest.outbound import Outbound, OutboundAccess
from destination.service import build

SECRET = "crm-outbound-secret-0123456789"
ORG = "00D8c0000000001EAA"
CRM = f"""source: crm
write_keys: [crm-key]
outbound: {{secrets: [{SECRET}], organization_ids: [{ORG}]}}
actions:
  - name: contact-sync
    when: event = "Salesforce Outbound Message" and properties.sobject_type = "Contact"
    object: Contact
    operation: update
    match: {{any: {{Id: $.properties.Id}}}}
    fields: {{Description: {{template: "synced from {{{{ properties.Email }}}}"}}}}
"""
URL = f"/v1/salesforce/outbound/{SECRET}"


def _soap(notification_id: str, contact_id: str, email: str, org: str = ORG) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
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
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            r = await http.post(URL, content=_soap("04l8c0000000001AAA", contact, "c@x.example"),
                                headers={"Content-Type": "text/xml"})
            assert r.status_code == 200 and "<Ack>true</Ack>" in r.text and "notificationsResponse" in r.text
            for _ in range(100):
                if service.consumer.consumed >= 1 and service.consumer.tracker.in_flight() == 0:
                    break
                await asyncio.sleep(0.05)
            assert tls_emulator.state.store.get(contact)[1]["Description"] == "synced from c@x.example"
            # the write above makes Salesforce send a new notification about the same record: no loop
            again = await http.post(URL, content=_soap("04l8c0000000002AAA", contact, "c@x.example"))
            assert again.status_code == 200 and "<Ack>true</Ack>" in again.text
            assert service.outbound.dropped_as_loops == 1
            repeat = await http.post(URL, content=_soap("04l8c0000000001AAA", contact, "c@x.example"))
            assert repeat.status_code == 200
            assert (await http.post("/v1/salesforce/outbound/nope", content=b"<x/>")).status_code == 401
            assert (await http.post(URL, content=b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")).status_code == 400
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
    app.include_router(Outbound(OutboundAccess({"crm": load_text(CRM, "crm.yaml")}), log, None).router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
        body = _soap("04l8c0000000009AAA", "0038c0000000001AAA", "c@x.example")
        first = await http.post(URL, content=body)
        assert first.status_code == 503 and "<Ack>" not in first.text
        resend = await http.post(URL, content=body)
        assert resend.status_code == 200 and "<Ack>true</Ack>" in resend.text
    assert [e.body["messageId"] for e in log.stored] == ["om-04l8c0000000009AAA"]


class _Stored(EventLog):
    def __init__(self) -> None:
        self.stored: list[Event] = []

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, events: Sequence[Event]) -> None:
        self.stored += events


async def _post(log: _Stored, path: str, body: bytes | str) -> httpx.Response:
    app = FastAPI()
    app.include_router(Outbound(OutboundAccess({"crm": load_text(CRM, "crm.yaml")}), log, None).router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://127.0.0.1") as http:
        return await http.post(path, content=body, headers={"Content-Type": "text/xml"})


def _is_fault(r: httpx.Response) -> bool:
    return "<soapenv:Fault>" in r.text and "soapenv:Client" in r.text and "<Ack>" not in r.text


async def test_a_write_key_does_not_open_the_outbound_endpoint() -> None:
    log = _Stored()
    for path in ("/v1/salesforce/outbound?key=crm-key", "/v1/salesforce/outbound/crm-key"):
        r = await _post(log, path, _soap("04l8c0000000011AAA", "0038c0000000001AAA", "c@x.example"))
        assert r.status_code in (401, 404, 405), (path, r.status_code)
    assert log.stored == []


async def test_a_notification_from_an_org_not_allowed_is_refused_with_a_soap_fault() -> None:
    log = _Stored()
    r = await _post(log, URL, _soap("04l8c0000000012AAA", "0038c0000000001AAA", "c@x.example",
                                    org="00D000000000666AAA"))
    assert r.status_code == 403 and _is_fault(r)
    missing = _soap("04l8c0000000013AAA", "0038c0000000001AAA", "c@x.example").replace(
        f"<OrganizationId>{ORG}</OrganizationId>", "")
    r = await _post(log, URL, missing)
    assert r.status_code == 403 and _is_fault(r)
    assert log.stored == []
    ok = await _post(log, URL, _soap("04l8c0000000014AAA", "0038c0000000001AAA", "c@x.example"))
    assert ok.status_code == 200 and len(log.stored) == 1


async def test_a_dtd_is_refused_in_any_encoding() -> None:
    log = _Stored()
    doc = ('<?xml version="1.0" encoding="{enc}"?>\n<!DOCTYPE x [<!ENTITY a "b">]>\n'
           + _soap("04l8c0000000015AAA", "0038c0000000001AAA", "&a;").split("?>", 1)[1])
    bodies = [doc.format(enc="UTF-16").encode("utf-16"),  # with a BOM
              doc.format(enc="UTF-16LE").encode("utf-16-le"),
              doc.format(enc="UTF-16BE").encode("utf-16-be"),
              b"\xef\xbb\xbf" + doc.format(enc="UTF-8").encode(),
              doc.format(enc="ISO-8859-1").encode("latin-1")]
    for body in bodies:
        r = await _post(log, URL, body)
        assert r.status_code == 400 and _is_fault(r), body[:40]
    assert log.stored == []
    # the same envelope without a DTD, in UTF-16, is taken
    plain = _soap("04l8c0000000016AAA", "0038c0000000001AAA", "c@x.example").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    r = await _post(log, URL, plain.encode("utf-16"))
    assert r.status_code == 200 and len(log.stored) == 1


def test_an_outbound_secret_that_is_a_write_key_or_short_or_without_orgs_is_a_config_error() -> None:
    import pytest

    from destination.actions.loader import ConfigError

    for bad in (CRM.replace(SECRET, "crm-key-crm-key-crm-key-crm-key").replace("[crm-key]", "[crm-key-crm-key-crm-key-crm-key]"),
                CRM.replace(SECRET, "short"),
                CRM.replace(f"organization_ids: [{ORG}]", "organization_ids: []"),
                CRM.replace(ORG, "00D8c0000000001")):
        with pytest.raises(ConfigError) as err:
            load_text(bad, "crm.yaml")
        assert "outbound" in str(err.value)
