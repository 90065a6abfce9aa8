"""Changes as events (pure): the shape per object, field selection, renames and direction, blanks under
unless_blank, a stable messageId, and the echo rules (changes and deletes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from destination.actions.sync_back_model import SyncObject
from destination.sync_back.changes import (
    Change,
    changed_fields,
    delete_event,
    snapshot,
    update_event,
    values_of,
)
from destination.sync_back.echo import is_echo, is_own_delete
from destination.synclog.base import DELETED_BY_US

OURS, PERSON = "0058c0000000001AAA", "0058c0000000004AAA"


def _spec(obj: str, **extra: Any) -> SyncObject:
    return SyncObject.model_validate({"object": obj, "fields": {
        "Title": {"as": "title"}, "Phone": {"as": "phone", "unless_blank": False},
        "Fax": {"as": "fax"}, "LastName": {"as": "last_name", "direction": "to_salesforce"}}, **extra})


def _record(**values: Any) -> dict[str, Any]:
    return {"Id": "0038c0000000001AAA", "SystemModstamp": "2026-12-02T10:00:00.000+0000",
            "LastModifiedById": PERSON, "Title": "CTO", "Phone": None, "Fax": "", "LastName": "Ada",
            "Email": "ada@x.io", **values}


def test_identify_for_a_contact_with_renames_blanks_and_no_app_owned_field() -> None:
    spec = _spec("Contact", id_field="Email")
    record = _record()
    values = values_of(spec, record)
    previous = {"Title": "Engineer", "Phone": None, "Fax": None}
    event = update_event("app", spec, Change("Contact", record, previous), values,
                         changed_fields(values, previous))
    body = event.body
    assert (body["type"], body["userId"]) == ("identify", "ada@x.io")
    assert body["traits"] == {"title": "CTO", "phone": None}  # Fax blank (unless_blank), LastName to_salesforce
    assert body["context"]["salesforce"]["changed"] == ["title"]
    assert body["context"]["salesforce"]["previous"] == {"title": "Engineer"}
    again = update_event("app", spec, Change("Contact", record, previous), values, ["Title"])
    assert again.body["messageId"] == body["messageId"]


def test_group_for_an_account_track_for_other_objects_and_deletes() -> None:
    account = update_event("app", _spec("Account"), Change("Account", _record(Id="0018c0000000001AAA"), None),
                           {"Title": "x"}, ["Title"])
    assert (account.body["type"], account.body["groupId"]) == ("group", "0018c0000000001AAA")
    opp = update_event("app", _spec("Opportunity"), Change("Opportunity", _record(), None), {"Title": "x"},
                       ["Title"])
    assert (opp.body["type"], opp.body["event"], opp.body["properties"]["title"]) == (
        "track", "Opportunity Updated", "x")
    spec = _spec("Contact", id_field="Email")
    gone = delete_event("app", spec, "0038c0000000001AAA", "2026-12-02T10:01:00.000+0000",
                        snapshot(spec, _record(), {"Title": "CTO"}))
    assert (gone.body["event"], gone.body["userId"], gone.body["properties"]["previous"]) == (
        "Contact Deleted", "ada@x.io", {"title": "CTO"})


def test_an_echo_is_the_integration_users_change_to_exactly_what_we_wrote() -> None:
    ours = _record(LastModifiedById=OURS[:15])  # 15- and 18-character Ids are the same user
    assert is_echo(ours, ["Title"], {"title": "CTO"}, OURS)
    assert not is_echo(ours, ["Title"], {"Title": "CEO"}, OURS)  # not what we wrote
    assert not is_echo(ours, ["Title", "Fax"], {"Title": "CTO"}, OURS)  # a field we never wrote changed
    assert not is_echo(_record(), ["Title"], {"Title": "CTO"}, OURS)  # a person
    assert not is_echo(ours, ["Title"], {"Title": "CTO"}, None)  # our user unknown: publish


def test_a_delete_is_ours_when_delivery_noted_deleting_the_record_no_later_than_salesforce_says() -> None:
    ours = {DELETED_BY_US: "2026-12-02T10:01:00.250000+00:00", "Title": "CTO"}
    skew = timedelta(seconds=5)
    assert is_own_delete(ours, "2026-12-02T10:01:00.000+0000", skew)  # Salesforce deleted it, then we noted it
    assert is_own_delete(ours, "2026-12-02T10:01:04.000+0000", skew)  # clocks apart by less than the overlap
    assert not is_own_delete(ours, "2026-12-02T10:09:00.000+0000", skew)  # undeleted, then someone deleted it
    assert not is_own_delete({"Title": "CTO"}, "2026-12-02T10:01:00.000+0000", skew)  # we only wrote to it
    assert not is_own_delete(None, "2026-12-02T10:01:00.000+0000", skew)  # never ours
    assert not is_own_delete({DELETED_BY_US: "not a time"}, "2026-12-02T10:01:00.000+0000", skew)
