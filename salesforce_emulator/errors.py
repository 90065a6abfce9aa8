"""Salesforce error values and the three wire shapes they take (REST array, collections item, Bulk CSV)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class SfError:
    """One Salesforce error: an error code, its message, the fields it concerns, optional extras."""

    code: str
    message: str
    fields: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def rest(self) -> dict[str, Any]:
        """The element of a REST error array: errorCode, message, fields when any."""
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            body["fields"] = list(self.fields)
        body.update(self.extra)
        return body

    def collection(self) -> dict[str, Any]:
        """The element of a collections item's `errors`: statusCode, message, fields (always present)."""
        body: dict[str, Any] = {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}
        body.update(self.extra)
        return body

    def bulk(self) -> str:
        """The `sf__Error` cell of a Bulk 2.0 failedResults row: CODE:message:fields -- (`:--` with no fields)."""
        fields = f"{','.join(self.fields)} --" if self.fields else "--"
        return f"{self.code}:{self.message}:{fields}"


class SfException(Exception):
    """Raised inside request handling to end the request with a Salesforce error array."""

    def __init__(self, status: int, *errors: SfError, headers: dict[str, str] | None = None) -> None:
        super().__init__(errors[0].message if errors else "")
        self.status = status
        self.errors = errors
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """Render as Salesforce does: the status and a JSON array of errors."""
        return JSONResponse([e.rest() for e in self.errors], status_code=self.status, headers=self.headers)


NOT_FOUND = SfError("NOT_FOUND", "The requested resource does not exist")
INVALID_SESSION = SfError("INVALID_SESSION_ID", "Session expired or invalid")
ENTITY_IS_DELETED = SfError("ENTITY_IS_DELETED", "entity is deleted")
