"""Per-record results as typed values, shared by REST, collections and Bulk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ErrorKind, SalesforceError


@dataclass(frozen=True)
class RecordResult:
    """What happened to one record: its Id, created or not, or Salesforce's errors."""

    id: str | None
    success: bool
    created: bool = False
    errors: tuple[SalesforceError, ...] = ()

    @property
    def error(self) -> SalesforceError | None:
        return self.errors[0] if self.errors else None

    @property
    def kind(self) -> ErrorKind | None:
        """The error kind that decides what to do next (None on success)."""
        return self.errors[0].kind if self.errors else None

    @property
    def transient(self) -> bool:
        return bool(self.errors) and all(e.transient for e in self.errors)

    @classmethod
    def ok(cls, record_id: str | None, created: bool = False) -> RecordResult:
        return cls(record_id, True, created)

    @classmethod
    def failed(cls, *errors: SalesforceError, record_id: str | None = None) -> RecordResult:
        return cls(record_id, False, False, tuple(errors))

    @classmethod
    def from_collection_item(cls, item: dict[str, Any]) -> RecordResult:
        """An item of a sObject Collections response."""
        if item.get("success") and not item.get("errors"):  # the usual item, without building an error tuple
            return cls(item.get("id"), True, bool(item.get("created")))
        errors = tuple(SalesforceError.from_item(e) for e in item.get("errors") or ())
        success = bool(item.get("success")) and not errors
        return cls(item.get("id"), success, bool(item.get("created")) and success, errors)
