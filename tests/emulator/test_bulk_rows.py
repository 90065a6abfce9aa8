"""What RowWriter asks of the Store for each operation, and the row rules it applies itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from salesforce_emulator.bulk_csv import parse
from salesforce_emulator.bulk_rows import RowWriter
from salesforce_emulator.errors import SfError


@dataclass
class _Result:
    id: str | None
    created: bool = False
    errors: list[SfError] = field(default_factory=list)
    matches: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.errors and not self.matches


@dataclass
class RecordingStore:
    """Stands in for the Store: records each call and answers with a fixed Id, or an error for 'bad'."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def _answer(self, values: dict[str, Any], created: bool) -> _Result:
        if "bad" in values.values():
            return _Result(None, errors=[SfError("FIELD_CUSTOM_VALIDATION_EXCEPTION", "no bad", ("Name",))])
        return _Result("0018c0000000001AAA", created=created)

    def insert(self, obj: str, values: dict[str, Any], *, text: bool = False, view: Any = None, user_id: Any = None) -> _Result:
        self.calls.append(("insert", obj, values, text))
        return self._answer(values, True)

    def update(self, obj: str, record_id: str, values: dict[str, Any], *, text: bool = False,
               view: Any = None, user_id: Any = None) -> _Result:
        self.calls.append(("update", obj, record_id, values, text))
        r = self._answer(values, False)
        r.id = record_id if r.success else None
        return r

    def upsert(self, obj: str, ext_field: str, ext_value: Any, values: dict[str, Any], *,
               text: bool = False, view: Any = None, user_id: Any = None) -> _Result:
        self.calls.append(("upsert", obj, ext_field, ext_value, values, text))
        if ext_value == "many":
            return _Result(None, matches=["0018c0000000001AAA", "0018c0000000002AAA"])
        return self._answer(values, ext_value.startswith("new"))

    def delete(self, obj: str | None, record_id: str, *, hard: bool = False, view: Any = None, user_id: Any = None) -> _Result:
        self.calls.append(("delete", obj, record_id, hard))
        return _Result(record_id)


def _write(operation: str, csv: str, ext: str | None = None) -> tuple[RecordingStore, list[Any]]:
    store = RecordingStore()
    parsed = parse(csv, ",")
    writer = RowWriter(store, "Account", operation, ext, parsed.header)  # type: ignore[arg-type]
    return store, writer.write(parsed.rows)


def test_insert_passes_every_column_as_text_including_empty_and_na() -> None:
    store, results = _write("insert", "Name,Phone,Account.External_Id__c\nAcme,,#N/A\n")
    assert store.calls == [("insert", "Account", {"Name": "Acme", "Phone": "", "Account.External_Id__c": "#N/A"},
                            True)]
    assert (results[0].sf_id, results[0].created, results[0].error) == ("0018c0000000001AAA", True, None)


def test_failed_insert_has_empty_sf_id_and_the_store_error() -> None:
    _, results = _write("insert", "Name\nbad\n")
    assert results[0].sf_id == "" and results[0].error.bulk() == "FIELD_CUSTOM_VALIDATION_EXCEPTION:no bad:Name --"


def test_update_targets_the_id_column_and_leaves_it_out_of_the_values() -> None:
    store, results = _write("update", "id,Name\n0018c0000000001AAA,New\n0018c0000000002AAA,bad\n")
    assert store.calls[0] == ("update", "Account", "0018c0000000001AAA", {"Name": "New"}, True)
    assert results[0].created is False and results[0].error is None
    assert results[1].sf_id == "0018c0000000002AAA" and results[1].error is not None


def test_update_with_empty_id_fails_without_calling_the_store() -> None:
    store, results = _write("update", "Id,Name\n,New\n")
    assert store.calls == []
    assert results[0].error.bulk() == "MISSING_ARGUMENT:Id not specified in an update call:--"


def test_upsert_passes_the_key_separately() -> None:
    store, results = _write("upsert", "External_Id__c,Name\nnew-1,Acme\nold-2,Globex\n", "External_Id__c")
    assert store.calls[0] == ("upsert", "Account", "External_Id__c", "new-1", {"Name": "Acme"}, True)
    assert [r.created for r in results] == [True, False]


def test_upsert_matching_several_records_fails_with_duplicate_external_id() -> None:
    _, results = _write("upsert", "External_Id__c,Name\nmany,Acme\n", "External_Id__c")
    assert results[0].error.code == "DUPLICATE_EXTERNAL_ID"
    assert "0018c0000000002AAA" in results[0].error.message


def test_duplicate_upsert_keys_in_one_dml_chunk_fail_every_copy() -> None:
    store, results = _write("upsert", "External_Id__c,Name\nK1,a\nk1,b\nK2,c\n", "External_Id__c")
    assert [r.error.bulk() if r.error else None for r in results] == [
        "DUPLICATE_VALUE:Duplicate external id specified: K1:External_Id__c --",
        "DUPLICATE_VALUE:Duplicate external id specified: k1:External_Id__c --",
        None,
    ]
    assert [c[3] for c in store.calls] == ["K2"]


def test_duplicate_keys_in_different_dml_chunks_are_both_written() -> None:
    rows = ["dup,first"] + [f"new-{i},x" for i in range(199)] + ["dup,second"]
    store, results = _write("upsert", "External_Id__c,Name\n" + "\n".join(rows) + "\n", "External_Id__c")
    assert all(r.error is None for r in results)
    assert len(store.calls) == 201


def test_duplicate_update_ids_match_across_15_and_18_characters() -> None:
    _, results = _write("update", "Id,Name\n0018c0000000001AAA,a\n0018c0000000001,b\n")
    assert [r.error.code for r in results] == ["DUPLICATE_VALUE", "DUPLICATE_VALUE"]
    assert results[0].sf_id == "0018c0000000001AAA"


def test_delete_and_hard_delete_call_the_store_with_the_flag() -> None:
    store, results = _write("hardDelete", "Id\n0018c0000000001AAA\n")
    assert store.calls == [("delete", "Account", "0018c0000000001AAA", True)]
    assert results[0].sf_id == "0018c0000000001AAA" and results[0].created is False
    store, _ = _write("delete", "Id\n0018c0000000001AAA\n")
    assert store.calls[0][3] is False


def test_malformed_rows_fail_without_calling_the_store() -> None:
    store, results = _write("insert", 'Name,Phone\n"Acme", "1"\nGlobex\n')
    assert store.calls == []
    assert [r.error.code for r in results] == ["INVALID_FIELD", "INVALID_FIELD"]
