"""Bulk API 2.0 ingest rows: the header check that can fail a whole job, and the per-record writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .bulk_csv import CsvRow
from .errors import SfError
from .ids import is_well_formed, to18
from .org import ObjectDef, Org

if TYPE_CHECKING:
    from .faults import Faults
    from .store import Store, WriteResult

DML_CHUNK = 200  # Salesforce checks duplicate keys within each 200-record DML chunk
_ID_OPERATIONS = ("update", "delete", "hardDelete")


@dataclass
class RowResult:
    """The outcome of one record: the sf__Id cell, whether it was created, its error if it failed."""

    sf_id: str
    created: bool = False
    error: SfError | None = None


def _not_found(column: str) -> str:
    return f"InvalidBatch : Field name not found : {column}"


def _column_problem(org: Org, obj: ObjectDef, column: str) -> str | None:
    """Why a header column names nothing writable-by-reference on `obj`, or None when it is fine."""
    if "." not in column:
        return None if obj.field(column) is not None else _not_found(column)
    relationship, _, parent_field = column.partition(".")
    ref = obj.relationship(relationship)
    if ref is None:
        return f"InvalidBatch : Unable to find relationship: {relationship}"
    for parent_name in ref.reference_to:
        parent = org.object(parent_name)
        fdef = parent.field(parent_field) if parent else None
        if fdef is not None and (fdef.external_id or fdef.id_lookup):
            return None
    return _not_found(column)


def check_header(org: Org, obj: ObjectDef, operation: str, ext_field: str | None,
                 header: Sequence[str]) -> str | None:
    """The errorMessage that fails the job for this header (only the first bad column), or None."""
    for column in header:
        problem = _column_problem(org, obj, column)
        if problem:
            return problem
    lowered = [c.lower() for c in header]
    if operation in _ID_OPERATIONS and "id" not in lowered:
        return _not_found("Id")
    if operation in ("delete", "hardDelete") and lowered != ["id"]:
        return f"InvalidBatch : The '{operation}' batch must contain only ids."
    if operation == "upsert" and ext_field and ext_field.lower() not in lowered:
        return _not_found(ext_field)
    return None


class RowWriter:
    """Writes parsed rows of one job through the store and reports a RowResult per row."""

    def __init__(self, store: Store, obj: str, operation: str, ext_field: str | None,
                 header: Sequence[str], faults: Faults | None = None, *, view: Org | None = None,
                 user_id: str | None = None) -> None:
        self.store = store
        self.user_id = user_id  # the job's creator: rows are written as them (LastModifiedById)
        self.faults = faults
        self.view = view  # the org as the job's creator sees it; None = full access
        self.obj = obj
        self.operation = operation
        self.ext_field = ext_field
        self.header = list(header)
        key = "Id" if operation in _ID_OPERATIONS else ext_field
        lowered = [c.lower() for c in self.header]
        self.key_index = lowered.index(key.lower()) if key and key.lower() in lowered else None

    def write(self, rows: Sequence[CsvRow]) -> list[RowResult]:
        """Write `rows` and return their results in order."""
        return list(self.results(rows))

    def results(self, rows: Sequence[CsvRow]) -> Iterator[RowResult]:
        """Write `rows` one at a time, in DML chunks of 200; duplicate keys inside a chunk fail every copy."""
        for start in range(0, len(rows), DML_CHUNK):
            chunk = rows[start:start + DML_CHUNK]
            # An injected trigger fault fails the whole chunk, as a governor limit fails its transaction.
            tripped = self.faults.trigger_error(self.obj, [list(r.values) for r in chunk]) if self.faults else None
            if tripped is not None:
                for _ in chunk:
                    yield RowResult("", error=SfError(*tripped))
                continue
            duplicates = self._duplicate_keys(chunk)
            for row in chunk:
                yield self._write_one(row, duplicates)

    def _key(self, row: CsvRow) -> str | None:
        if self.key_index is None or row.error or self.key_index >= len(row.values):
            return None
        value = row.values[self.key_index]
        if value == "":
            return None
        if self.ext_field == "Id" or self.operation in _ID_OPERATIONS:
            return to18(value) if is_well_formed(value) else value
        return value.lower()  # external IDs match case-insensitively unless marked case-sensitive

    def _duplicate_keys(self, chunk: Sequence[CsvRow]) -> set[str]:
        if self.operation not in ("update", "upsert"):
            return set()
        seen: set[str] = set()
        dupes: set[str] = set()
        for row in chunk:
            key = self._key(row)
            if key is not None:
                (dupes if key in seen else seen).add(key)
        return dupes

    def _write_one(self, row: CsvRow, duplicates: set[str]) -> RowResult:
        row_id = row.values[self.key_index] if self.key_index is not None and not row.error else ""
        target_id = row_id if self.operation in _ID_OPERATIONS else ""
        if row.error:
            return RowResult("", error=SfError("INVALID_FIELD", row.error))
        key = self._key(row)
        if key is not None and key in duplicates:
            if self.operation == "upsert":
                err = SfError("DUPLICATE_VALUE", f"Duplicate external id specified: {row_id}",
                              (self.ext_field or "",))
            else:
                err = SfError("DUPLICATE_VALUE", f"Duplicate id specified: {row_id}")
            return RowResult(target_id, error=err)
        values = dict(zip(self.header, row.values, strict=True))
        result = self._call(values, row_id)
        if isinstance(result, SfError):
            return RowResult(target_id, error=result)
        if result.success:
            return RowResult(result.id or "", created=result.created)
        error = result.errors[0] if result.errors else SfError(
            "DUPLICATE_EXTERNAL_ID", f"{self.ext_field}: more than one record found for external id field: "
            f"{result.matches}", (self.ext_field or "",))
        sf_id = "" if self.operation == "insert" else (result.id or target_id)
        return RowResult(sf_id, error=error)

    def _call(self, values: dict[str, str], row_id: str) -> WriteResult | SfError:
        op = self.operation
        if op == "insert":
            return self.store.insert(self.obj, values, text=True, view=self.view,
                                     user_id=self.user_id)
        key_column = self.header[self.key_index] if self.key_index is not None else None
        if key_column is not None:
            values.pop(key_column, None)
        if op == "upsert":
            return self.store.upsert(self.obj, self.ext_field or "Id", row_id, values, text=True, view=self.view,
                                     user_id=self.user_id)
        if row_id == "":
            return SfError("MISSING_ARGUMENT", f"Id not specified in an {op} call" if op == "update"
                           else f"Id not specified in a {op} call")
        if op == "update":
            return self.store.update(self.obj, row_id, values, text=True, view=self.view,
                                     user_id=self.user_id)
        return self.store.delete(self.obj, row_id, hard=op == "hardDelete", view=self.view,
                                     user_id=self.user_id)
