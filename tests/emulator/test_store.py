"""The store without HTTP: persistence across restarts, transactions, person accounts, CSV semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesforce_emulator.state import build_state
from salesforce_emulator.store import Rollback


def test_sqlite_persistence_keeps_records_and_id_sequence_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    first = build_state(db_path=db)
    kept = first.store.insert("Account", {"Name": "Kept", "External_Id__c": "K"}).id
    gone = first.store.insert("Account", {"Name": "Gone"}).id
    assert first.store.delete("Account", gone, hard=True).success
    first.store.close()
    second = build_state(db_path=db)
    assert [r["Id"] for r in second.store.records("Account")] == [kept]
    assert second.store.upsert("Account", "External_Id__c", "k", {"Name": "Again"}).id == kept
    new_id = second.store.insert("Account", {"Name": "New"}).id
    assert new_id not in (kept, gone) and new_id > kept  # the sequence continues past loaded Ids


def test_transaction_undoes_inserts_updates_and_deletes_on_rollback() -> None:
    store = build_state().store
    existing = store.insert("Contact", {"LastName": "Before"}).id
    with store.transaction():
        store.insert("Contact", {"LastName": "New"})
        store.update("Contact", existing, {"LastName": "After"})
        raise Rollback
    assert [r["LastName"] for r in store.records("Contact")] == ["Before"]
    with store.transaction():
        store.delete("Contact", existing)
        raise Rollback
    assert store.get(existing) is not None
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.delete("Contact", existing)
        raise ZeroDivisionError
    assert store.get(existing) is not None


def test_person_account_requires_last_name_and_gets_a_person_contact() -> None:
    store = build_state().store
    person_type = "0128c0000000002AAA"
    missing = store.insert("Account", {"RecordTypeId": person_type, "FirstName": "Ada"})
    assert missing.errors[0].code == "REQUIRED_FIELD_MISSING" and missing.errors[0].fields == ("LastName",)
    result = store.insert("Account", {"RecordTypeId": person_type, "FirstName": "Ada", "LastName": "Lovelace",
                                      "PersonEmail": "ada@example.com"})
    assert result.success
    account = store.get(result.id)[1]  # type: ignore[arg-type,index]
    assert account["IsPersonAccount"] is True and account["Name"] == "Ada Lovelace"
    contact = store.get(account["PersonContactId"])[1]  # type: ignore[index]
    assert contact["AccountId"] == account["Id"] and contact["Email"] == "ada@example.com"
    assert contact["IsPersonAccount"] is True


def test_business_account_defaults_to_the_business_record_type() -> None:
    store = build_state().store
    account = store.get(store.insert("Account", {"Name": "Biz"}).id)[1]  # type: ignore[arg-type,index]
    assert account["RecordTypeId"] == "0128c0000000001AAA" and account["IsPersonAccount"] is False


def test_text_values_follow_bulk_csv_rules() -> None:
    store = build_state().store
    rid = store.insert("Opportunity", {"Name": "D", "StageName": "Closed Won", "CloseDate": "2026-01-31",
                                       "Amount": "12.5", "Probability": ""}, text=True).id
    record = store.get(rid)[1]  # type: ignore[arg-type,index]
    assert (record["Amount"], record["Probability"], record["IsWon"], record["IsClosed"]) == (12.5, None, True, True)
    bad = store.insert("Opportunity", {"Name": "D", "StageName": "Prospecting", "CloseDate": "someday"}, text=True)
    assert bad.errors[0].code == "INVALID_TYPE_ON_FIELD_IN_RECORD" and bad.errors[0].fields == ("CloseDate",)


def test_defaults_are_applied_on_create() -> None:
    store = build_state().store
    lead = store.get(store.insert("Lead", {"LastName": "L", "Company": "C"}).id)[1]  # type: ignore[arg-type,index]
    assert lead["Status"] == "Open - Not Contacted" and lead["IsConverted"] is False
    assert lead["OwnerId"] == "0058c0000000001AAA" and lead["IsDeleted"] is False
