"""Salesforce Outbound Messages: `POST /v1/salesforce/outbound/<SECRET>` takes the SOAP
notifications() call of workflow rules, turns each notification into a `track` event ("Salesforce Outbound
Message", properties = the sObject's fields), appends them durably, and answers the Ack Salesforce expects.

Only a source's own outbound secret (never a write key: those may be public) opens the endpoint, and only
notifications from the source's allow-listed organization Ids are taken; a document with a DTD, in whatever
encoding, is refused before it is parsed. Anything refused gets a SOAP fault and changes nothing.

Loops are prevented: a notification about a record that an outbound-message event made us write within
the loop window is acknowledged and dropped (the sync log says which writes those were). A dropped
notification is not silent: it is recorded in the sync log as `skipped` with reason `LOOP_GUARD`, logged,
and counted (`destination_loop_guard_dropped_total`). The two-way sync's echo rule applies too: a
notification whose LastModifiedById is our integration user and whose fields hold exactly what the push
direction last wrote to them is our own write coming back — skipped with ECHO_SUPPRESSED, and counted
the same way. Salesforce may notify before delivery has recorded what it wrote: an integration-user
notification that is not (yet) a known echo, while a delivery batch writing to that object is in flight,
is not acknowledged (503), and Salesforce resends the message; it is judged again then."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..access import find_in_constant_time
from ..actions.model import ActionFile
from ..actions.sync_back_model import OVERLAP_SECONDS, SETTLE_SECONDS
from ..eventlog.base import EventLog, LogUnavailable
from ..events import Event
from ..metrics import Metrics
from ..outcomes import Outcome
from ..sync_back.changes import parse_modstamp, same
from ..sync_back.echo import ECHO, held_update, same_user
from ..synclog.base import SyncLog, SyncLogFilter
from .dedup import RecentMessages

EVENT_NAME = "Salesforce Outbound Message"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
ACK = ('<?xml version="1.0" encoding="UTF-8"?>'
       '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
       f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
       '</soapenv:Body></soapenv:Envelope>')
MAX_BYTES = 2_000_000
log = logging.getLogger("destination.outbound")
PATH = "/v1/salesforce/outbound/"


def fault(status: int, message: str) -> Response:
    """A SOAP 1.1 Client fault: Salesforce records it as a failed delivery (and retries); nothing is stored."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            f'<soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>{escape(message)}</faultstring>'
            '</soapenv:Fault></soapenv:Body></soapenv:Envelope>')
    return Response(body, status_code=status, media_type="text/xml")


class OutboundAccess:
    """Outbound secrets → source (constant-time, every secret compared) and each source's allowed org Ids."""

    def __init__(self, sources: Mapping[str, ActionFile]) -> None:
        self._secrets = [(secret.encode(), name) for name, source in sources.items() if source.outbound
                         for secret in source.outbound.secrets]
        self._orgs = {name: frozenset(source.outbound.organization_ids) for name, source in sources.items()
                      if source.outbound}

    def source_for(self, secret: str | None) -> str | None:
        return find_in_constant_time(self._secrets, secret.encode()) if secret else None

    def org_allowed(self, source: str, organization_id: str | None) -> bool:
        return organization_id is not None and organization_id in self._orgs.get(source, frozenset())


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _refuse(*_: Any) -> None:
    raise ValueError("DTDs and entities are not accepted")


def refuse_dtd(xml: bytes) -> None:
    """ValueError when the document declares a DTD or an entity, in any encoding: expat decodes it exactly as
    the parser below will (BOM, XML declaration, UTF-16...), and stops at the first declaration."""
    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = _refuse
    scanner.EntityDeclHandler = _refuse
    scanner.ExternalEntityRefHandler = _refuse  # type: ignore[assignment]
    try:
        scanner.Parse(xml, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML ({expat.errors.messages.get(exc.code, 'error')})") from None


def parse_notifications(xml: bytes) -> list[dict[str, Any]]:
    """Each Notification as {"notification_id", "sobject_type", "fields", "organization_id", "action_id"}."""
    refuse_dtd(xml)
    root = ET.fromstring(xml)
    notifications = next((e for e in root.iter() if _local(e.tag) == "notifications"), None)
    if notifications is None:
        raise ValueError("no notifications element")
    header = {_local(c.tag): (c.text or "") for c in notifications if _local(c.tag) != "Notification"}
    out = []
    for note in notifications:
        if _local(note.tag) != "Notification":
            continue
        note_id = next((c.text or "" for c in note if _local(c.tag) == "Id"), "")
        sobject = next((c for c in note if _local(c.tag) == "sObject"), None)
        if sobject is None:
            continue
        kind = (sobject.get(f"{XSI}type") or "").split(":")[-1]
        fields: dict[str, Any] = {}
        for child in sobject:
            nil = child.get(f"{XSI}nil") == "true"
            fields[_local(child.tag)] = None if nil else (child.text or "")
        out.append({"notification_id": note_id, "sobject_type": kind, "fields": fields,
                    "organization_id": header.get("OrganizationId"), "action_id": header.get("ActionId")})
    return out


_SYSTEM_FIELDS = {"id", "lastmodifiedbyid", "lastmodifieddate", "systemmodstamp", "createddate", "createdbyid"}


def _text(value: Any) -> Any:
    """Outbound Messages carry every value as text: compare what we wrote as text too (True → "true")."""
    if isinstance(value, bool):
        return str(value).lower()
    return None if value is None else str(value)


class Outbound:
    def __init__(self, access: OutboundAccess, log: EventLog, sync_log: SyncLog | None,
                 loop_window: timedelta = timedelta(minutes=5), recent: RecentMessages | None = None,
                 metrics: Metrics | None = None, own_users: Callable[[], Collection[str]] | None = None,
                 settle: timedelta = timedelta(seconds=SETTLE_SECONDS),
                 skew: timedelta = timedelta(seconds=OVERLAP_SECONDS)) -> None:
        self.access = access
        # as sync_back's settle_seconds / overlap_seconds: an in-flight note older than `settle` is a delivery
        # that died mid-write; `skew` allows for Salesforce's clock against ours
        self.settle, self.skew = settle, skew
        self.own_users = own_users or (lambda: ())  # the integration users' Ids (from the connections' tokens)
        self.metrics = metrics or Metrics()
        self.log = log
        self.sync_log = sync_log
        self.loop_window = loop_window
        self.recent = recent or RecentMessages()
        self.dropped_as_loops = 0
        self.router = APIRouter()
        self.router.add_api_route(PATH + "{secret}", self.handle, methods=["POST"],
                                  summary="Salesforce Outbound Message listener (SOAP)")

    async def handle(self, request: Request, secret: str) -> Response:
        """Acknowledge with Ack=true once the notifications are durable (or recognised as loops/repeats)."""
        source = self.access.source_for(secret)
        if source is None:
            return fault(401, "unknown outbound secret")
        raw = await request.body()
        if len(raw) > MAX_BYTES:
            return fault(413, "too large")
        try:
            notifications = parse_notifications(raw)
        except (ValueError, ET.ParseError) as exc:
            return fault(400, f"not an outbound message: {exc}")
        if not all(self.access.org_allowed(source, n["organization_id"]) for n in notifications):
            return fault(403, "this organization may not send to this source")
        events: list[Event] = []
        loops: list[Outcome] = []
        taken = []
        for note in notifications:
            record_id = note["fields"].get("Id") or ""
            if not self.recent.first_time(source, note["notification_id"]):
                continue  # Salesforce resends notifications; one event each
            taken.append(note["notification_id"])
            body = {"type": "track", "event": EVENT_NAME, "userId": record_id or note["notification_id"],
                    "messageId": f"om-{note['notification_id']}", "timestamp": datetime.now(UTC).isoformat(),
                    "properties": {**note["fields"], "sobject_type": note["sobject_type"]},
                    "context": {"salesforce": {"organization_id": note["organization_id"],
                                               "action_id": note["action_id"]}}}
            if record_id and await self._written_by_outbound(record_id):
                loops.append(Outcome.skipped(
                    Event(source, body), f"LOOP_GUARD: {note['sobject_type']} {record_id} was written by an outbound "
                    f"message event within the last {self.loop_window}", object=note["sobject_type"] or None,
                    record_id=record_id))
                continue
            if record_id and await self._echo(note["sobject_type"], record_id, note["fields"]):
                loops.append(Outcome.skipped(
                    Event(source, body), f"{ECHO}: {note['sobject_type']} {record_id} holds what we wrote, changed by "
                    "the integration user", error_code=ECHO, object=note["sobject_type"] or None,
                    record_id=record_id))
                continue
            if record_id and await self._maybe_ours(note["sobject_type"], note["fields"]):
                self._forget(source, taken)  # the resend is judged again, not dropped as a repeat
                log.info("outbound message %s: %s %s changed by the integration user while a write of ours to it "
                         "is being recorded; not acknowledged, Salesforce resends it", note["notification_id"],
                         note["sobject_type"], record_id)
                return Response("a write of ours to this object is being recorded; resend", status_code=503)
            events.append(Event(source, body))
        if loops and self.sync_log is not None:
            try:
                await self.sync_log.record(loops)
            except Exception as exc:  # any store failure: no Ack, so Salesforce resends and the drop is recorded then
                log.error("outbound message: the sync log cannot record %d loop-guard drops (%s: %s); not "
                          "acknowledged", len(loops), type(exc).__name__, exc)
                self._forget(source, taken)
                return Response("the sync log is unavailable; resend", status_code=503)
        if events:
            try:
                await self.log.append(events)
            except LogUnavailable:  # no Ack: Salesforce resends, and the resend must not count as a repeat
                self._forget(source, taken)
                return Response("the event log is unavailable; resend", status_code=503)
            self.metrics.accepted(source, len(events))
        for outcome in loops:
            self.dropped_as_loops += 1
            self.metrics.loop_guard_drops.labels(source).inc()
            self.metrics.outcome(outcome)
            log.info("outbound message %s dropped by the loop guard: %s", outcome.event.message_id, outcome.reason)
        return Response(ACK, media_type="text/xml")

    def _forget(self, source: str, notification_ids: list[str]) -> None:
        for notification_id in notification_ids:
            self.recent.forget(source, notification_id)

    async def _echo(self, obj: str, record_id: str, fields: Mapping[str, Any]) -> bool:
        """Our own write coming back (destination/sync_back/echo.py): the integration user changed the record
        last, and every notified field we wrote holds what we wrote (fields we never wrote are not compared)."""
        user = fields.get("LastModifiedById")
        if self.sync_log is None or not obj or not any(same_user(user, u) for u in self.own_users()):
            return False
        written = {k.lower(): v for k, v in (await self.sync_log.written_values(obj, [record_id])).get(record_id,
                                                                                                      {}).items()}
        compared = [k for k in fields if k.lower() in written and k.lower() not in _SYSTEM_FIELDS]
        return bool(compared) and all(same(_text(fields[k]), _text(written[k.lower()])) for k in compared)

    async def _maybe_ours(self, obj: str, fields: Mapping[str, Any]) -> bool:
        """Not a known echo, but possibly ours still being recorded (sync_back/echo.held_update): the change's
        time is the notification's SystemModstamp or LastModifiedDate, when it carries one."""
        user = fields.get("LastModifiedById")
        ours = next((u for u in self.own_users() if same_user(user, u)), None)
        if self.sync_log is None or not obj or ours is None:
            return False
        oldest = datetime.now(UTC) - self.settle
        notes = [n for n in await self.sync_log.writes_in_flight(obj) if n.since >= oldest]
        stamp = fields.get("SystemModstamp") or fields.get("LastModifiedDate")
        try:
            made = parse_modstamp(str(stamp)) if stamp else None
        except ValueError:
            made = None
        return held_update(user, made, ours, notes, self.skew)

    async def _written_by_outbound(self, record_id: str) -> bool:
        """Whether an outbound-message event made us write this record within the loop window."""
        if self.sync_log is None:
            return False
        since = datetime.now(UTC) - self.loop_window
        for candidate in {record_id, record_id[:15]}:
            rows = await self.sync_log.rows(SyncLogFilter(record_id=candidate, since=since), limit=50)
            if any(r.event.get("event") == EVENT_NAME and r.status.value == "succeeded" for r in rows):
                return True
        return False
