"""destination/validate.py predicts what the org returns on save: checked against the emulator's own save
path (in process) for generated values of every field type, REST and Bulk, create and update."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from destination.salesforce.bulk import cell
from destination.salesforce.describe import ObjectDescribe
from destination.validate import check_write
from salesforce_emulator.state import build_state

STATE = build_state()
OBJECTS = ("Lead", "Contact", "Case", "Survey_Response__c", "Account")


def _describe(name: str) -> ObjectDescribe:
    """Describe plus the picklist values per record type, as the describe cache reads them (UI API)."""
    od = STATE.org.object(name)
    assert od is not None
    describe = ObjectDescribe(od.describe("62.0", STATE.org.child_relationships(od.name)))
    for rt in od.record_types:
        body = od.picklist_values("62.0", rt.id)
        assert body is not None
        describe.picklists_by_record_type[rt.id[:15]] = {
            field.lower(): frozenset(v["value"] for v in values["values"])
            for field, values in body["picklistFieldValues"].items()}
    return describe


DESCRIBES = {name: _describe(name) for name in OBJECTS}
# unique fields would clash between examples (DUPLICATE_VALUE needs the org's data, not describe); reference
# fields' targets would need other records (INVALID_CROSS_REFERENCE_KEY); a RecordTypeId is one of the org's
SKIP = {"External_Id__c", "Id"}
RECORD_TYPE_IDS = [rt["recordTypeId"] for name in OBJECTS for rt in DESCRIBES[name].raw["recordTypeInfos"]]


def _value(fd: dict[str, Any]) -> st.SearchStrategy[Any]:
    length = fd["length"] or 40
    text = st.one_of(st.text(alphabet="ab -@.", max_size=8), st.sampled_from(["x" * length, "x" * (length + 1)]))
    picks = [p["value"] for p in fd["picklistValues"]]
    common = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                       st.floats(allow_nan=False, allow_infinity=False, width=32), text, st.just(""))
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "email": st.sampled_from(["a@b.example", "a b@x.example", "nope", "x@y", "@x.example"]),
        "picklist": st.sampled_from([*picks, "Not A Value", picks[0].lower() if picks else "x"]),
        "date": st.sampled_from(["2026-01-02", "2026-02-30", "2026-01-02T10:00:00Z", "01/02/2026", "yesterday"]),
        "datetime": st.sampled_from(["2026-01-02T10:00:00Z", "2026-01-02T10:00:00+0130", "2026-01-02",
                                     "2026-13-02T00:00:00Z", "noon"]),
        "boolean": st.sampled_from([True, False, "true", "FALSE", "yes", "0", 1]),
        "reference": st.sampled_from(["not-an-id", "001", "x" * 20]),
    }
    if fd["name"] == "RecordTypeId":  # every object's, the Master, one that does not exist, malformed ones
        return st.sampled_from([*RECORD_TYPE_IDS, "012000000000999AAA", "012-nope", None, ""])
    if fd["type"] == "reference":  # a number can make a well-formed Id of no record (not predictable)
        return st.one_of(st.none(), by_type["reference"])
    special = by_type.get(fd["type"])
    return st.one_of(special, common) if special is not None else common


@st.composite
def writes(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(OBJECTS))
    fields = [f for f in DESCRIBES[name].fields if f["name"] not in SKIP]
    chosen = draw(st.lists(st.sampled_from(fields), max_size=5, unique_by=lambda f: f["name"]))
    return name, {f["name"]: draw(_value(f)) for f in chosen}


def _codes(errors: list[Any]) -> list[str]:
    return [e.code for e in errors]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes(), st.booleans())
def test_predicted_errors_of_a_create_are_the_emulators_in_order(write: tuple[str, dict[str, Any]],
                                                                  bulk: bool) -> None:
    name, values = write
    sent = {k: cell(v) for k, v in values.items()} if bulk else values
    actual = STATE.store.insert(name, sent, text=bulk)
    predicted = check_write(DESCRIBES[name], values, creating=True, text=bulk)
    assert _codes(predicted.errors) == _codes(actual.errors), (values, actual.errors)
    if actual.success:
        stored = STATE.store.get(actual.id)[1]  # type: ignore[index]
        written = {k: v for k, v in predicted.values.items() if v is not None}  # a null Name is auto-named
        assert {k: stored[k] for k in written} == written


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes(), st.booleans())
def test_predicted_errors_of_an_update_are_the_emulators_in_order(write: tuple[str, dict[str, Any]],
                                                                   bulk: bool) -> None:
    name, values = write
    base = {"Lead": {"LastName": "L", "Company": "C"}, "Contact": {"LastName": "L"}, "Account": {"Name": "A"}}
    record_id = STATE.store.insert(name, base.get(name, {})).id
    assert record_id is not None
    sent = {k: cell(v) for k, v in values.items()} if bulk else values
    found = STATE.store.get(record_id)
    assert found is not None
    actual = STATE.store.update(name, record_id, sent, text=bulk)
    predicted = check_write(DESCRIBES[name], values, creating=False, text=bulk,
                            record_type=found[1].get("RecordTypeId"))
    assert _codes(predicted.errors) == _codes(actual.errors), (values, actual.errors)


@pytest.mark.parametrize(("values", "creating", "code", "fields"), [
    ({"Company": "C"}, True, "REQUIRED_FIELD_MISSING", ("LastName",)),
    ({"LastName": "", "Company": "C"}, True, "REQUIRED_FIELD_MISSING", ("LastName",)),
    ({"LastName": None}, False, "REQUIRED_FIELD_MISSING", ("LastName",)),
    ({"LastName": "L", "Company": "C", "Status": "Hot"}, True, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
     ("Status",)),
    ({"LastName": "L", "Company": "C", "Title": "t" * 129}, True, "STRING_TOO_LONG", ("Title",)),
    ({"LastName": "L", "Company": "C", "NumberOfEmployees": "many"}, True, "JSON_PARSER_ERROR",
     ("NumberOfEmployees",)),
    ({"LastName": "L", "Company": "C", "Email": "a b@x.example"}, True, "INVALID_EMAIL_ADDRESS", ("Email",)),
    ({"LastName": "L", "Company": "C", "Name": "L", "IsConverted": True}, True, "INVALID_FIELD_FOR_INSERT_UPDATE",
     ("Name", "IsConverted")),
    ({"LastName": "L", "Company": "C", "Nope__c": 1}, True, "INVALID_FIELD", ("Nope__c",)),
    ({"Title": "t" * 129, "Status": "Hot"}, True, "STRING_TOO_LONG", ("Title",)),  # before required fields
])
def test_each_save_error_is_predicted_with_the_fields_salesforce_names(values: dict[str, Any], creating: bool,
                                                                       code: str, fields: tuple[str, ...]) -> None:
    problem = check_write(DESCRIBES["Lead"], values, creating=creating).error
    assert problem is not None and (problem.code, problem.fields) == (code, fields)


def test_bulk_cells_are_typed_as_csv_text_not_json() -> None:
    lead = DESCRIBES["Lead"]
    assert check_write(lead, {"LastName": "L", "Company": "C", "HasOptedOutOfEmail": "yes"}, creating=True,
                       text=True).error is None
    rest = check_write(lead, {"LastName": "L", "Company": "C", "HasOptedOutOfEmail": "yes"}, creating=True).error
    assert rest is not None and rest.code == "JSON_PARSER_ERROR"
    bulk = check_write(lead, {"LastName": "L", "Company": "C", "AnnualRevenue": "lots"}, creating=True, text=True)
    assert bulk.error is not None and bulk.error.code == "INVALID_TYPE_ON_FIELD_IN_RECORD"


def test_a_user_without_object_permission_is_refused_before_any_field_check() -> None:
    raw = dict(DESCRIBES["Lead"].raw, createable=False, updateable=True)
    lead = ObjectDescribe(raw)
    refused = check_write(lead, {"Title": "t" * 500}, creating=True).error
    assert refused is not None and refused.code == "INSUFFICIENT_ACCESS_OR_READONLY"
    allowed = check_write(lead, {"Title": "t" * 500}, creating=False).error
    assert allowed is not None and allowed.code == "STRING_TOO_LONG"


def test_a_field_the_user_cannot_edit_or_see_is_refused_as_salesforce_refuses_it() -> None:
    raw = dict(DESCRIBES["Lead"].raw)
    raw["fields"] = [dict(f, createable=False, updateable=False) if f["name"] == "AnnualRevenue" else f
                     for f in raw["fields"] if f["name"] != "Rating"]  # read-only; invisible
    lead = ObjectDescribe(raw)
    read_only = check_write(lead, {"AnnualRevenue": 5}, creating=False).error
    assert read_only is not None and (read_only.code, read_only.fields) == ("INVALID_FIELD_FOR_INSERT_UPDATE",
                                                                            ("AnnualRevenue",))
    invisible = check_write(lead, {"Rating": "Hot"}, creating=False).error
    assert invisible is not None and invisible.code == "INVALID_FIELD"
    assert invisible.message == "No such column 'Rating' on sobject of type Lead"


SALES, PARTNER, LEGACY = "0128c0000000003AAA", "0128c0000000004AAA", "0128c0000000005AAA"
LEAD = {"LastName": "L", "Company": "C"}


@pytest.mark.parametrize(("values", "creating", "record_type", "code"), [
    ({**LEAD, "RecordTypeId": PARTNER, "Status": "Working - Contacted"}, True, None,
     "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),  # a value of the field, not of the record type
    ({**LEAD, "Status": "Working - Contacted"}, True, None, None),  # the default record type offers it
    ({**LEAD, "RecordTypeId": PARTNER, "LeadSource": "Web"}, True, None, None),  # unrestricted: any value
    ({**LEAD, "RecordTypeId": LEGACY}, True, None, "INVALID_CROSS_REFERENCE_KEY"),  # inactive
    ({**LEAD, "RecordTypeId": "0128c0000000001AAA"}, True, None, "INVALID_CROSS_REFERENCE_KEY"),  # an Account's
    ({**LEAD, "RecordTypeId": "012000000000000AAA"}, True, None, "INVALID_CROSS_REFERENCE_KEY"),  # Master
    ({**LEAD, "RecordTypeId": "012-nope"}, True, None, "MALFORMED_ID"),
    ({"Status": "Working - Contacted"}, False, PARTNER, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),  # the record's
    ({"Status": "Working - Contacted", "RecordTypeId": SALES}, False, PARTNER, None),  # changes type too
    ({"Status": "Working - Contacted"}, False, None, None),  # the record's type not known: not checked
])
def test_record_types_are_predicted_as_the_org_checks_them(values: dict[str, Any], creating: bool,
                                                           record_type: str | None, code: str | None) -> None:
    checked = check_write(DESCRIBES["Lead"], values, creating=creating, record_type=record_type)
    assert (checked.error.code if checked.error else None) == code, checked.errors
    if creating and code is None:
        assert checked.record_type == values.get("RecordTypeId", SALES)  # the default when none is given


def test_a_users_record_types_follow_their_describe() -> None:
    raw = dict(DESCRIBES["Lead"].raw)
    raw["recordTypeInfos"] = [dict(rt, available=rt["developerName"] == "Partner_Lead",
                                   defaultRecordTypeMapping=rt["developerName"] == "Partner_Lead")
                              for rt in raw["recordTypeInfos"]]
    lead = ObjectDescribe(raw, picklists_by_record_type=DESCRIBES["Lead"].picklists_by_record_type)
    refused = check_write(lead, {**LEAD, "Status": "Working - Contacted"}, creating=True).error
    assert refused is not None and refused.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"  # default: Partner
    sales = check_write(lead, {**LEAD, "RecordTypeId": SALES}, creating=True).error
    assert sales is not None and sales.code == "INVALID_CROSS_REFERENCE_KEY"
