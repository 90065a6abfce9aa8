"""One error taxonomy for everything Salesforce answers: the only place retry decisions are made.

transient     retry with backoff (UNABLE_TO_LOCK_ROW, SERVER_UNAVAILABLE, 5xx, 429/503, network errors)
rate_limited  pause until the API allowance recovers (REQUEST_LIMIT_EXCEEDED)
auth          refresh the token once and retry (INVALID_SESSION_ID)
permanent     report; never retry (everything else: validation, access, not found, ...)
uncertain     a create that may or may not have happened (timeout after sending); reconcile, never resend
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PERMANENT = "permanent"
    UNCERTAIN = "uncertain"


TRANSIENT_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "UNKNOWN_EXCEPTION",
    "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE", "TXN_SECURITY_METERING_ERROR",
})
RATE_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED"})
AUTH_CODES = frozenset({"INVALID_SESSION_ID"})


def classify(code: str, status: int | None = None) -> ErrorKind:
    """The kind of an error code (and HTTP status, when the body says nothing useful)."""
    if code in RATE_LIMIT_CODES:
        return ErrorKind.RATE_LIMITED
    if code in AUTH_CODES or status == 401:
        return ErrorKind.AUTH
    if code in TRANSIENT_CODES or status in (429, 502, 503, 504) or (status is not None and status >= 500):
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


@dataclass(frozen=True)
class SalesforceError:
    """One error as Salesforce reported it: code, message, the fields it names, and the HTTP status."""

    code: str
    message: str
    fields: tuple[str, ...] = ()
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def kind(self) -> ErrorKind:
        if self.code == "UNCERTAIN_WRITE":
            return ErrorKind.UNCERTAIN
        return classify(self.code, self.status)

    @property
    def transient(self) -> bool:
        return self.kind in (ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED)

    @classmethod
    def from_item(cls, raw: dict[str, Any], status: int | None = None) -> SalesforceError:
        """From a REST error (`errorCode`), a collections item error (`statusCode`) or an OAuth error."""
        code = raw.get("errorCode") or raw.get("statusCode") or raw.get("error") or "UNKNOWN_ERROR"
        message = raw.get("message") or raw.get("error_description") or ""
        extra = {k: v for k, v in raw.items()
                 if k not in ("errorCode", "statusCode", "message", "fields", "error", "error_description")}
        return cls(str(code), str(message), tuple(raw.get("fields") or ()), status, extra)

    @classmethod
    def from_bulk(cls, cell: str) -> SalesforceError:
        """From a Bulk 2.0 `sf__Error` cell: `CODE:message:field1,field2 --` (or `:--` with no fields)."""
        code, _, rest = cell.partition(":")
        message, fields_text = rest, ""
        if rest.endswith("--"):
            head = rest[:-2].rstrip()
            message, sep, fields_text = head.rpartition(":")
            if not sep:
                message, fields_text = head, ""
        fields = tuple(f.strip() for f in fields_text.split(",") if f.strip())
        return cls(code.strip() or "UNKNOWN_ERROR", message, fields)

    def duplicate_ids(self) -> list[str]:
        """Ids of the existing records a DUPLICATES_DETECTED error points at (when Salesforce gave them)."""
        result = self.extra.get("duplicateResult") or {}
        return [m["record"]["Id"] for match in result.get("matchResults", []) for m in match.get("matchRecords", [])
                if isinstance(m.get("record"), dict) and m["record"].get("Id")]


def uncertain(message: str) -> SalesforceError:
    """The error value for a write whose fate is unknown (sent, then the connection failed)."""
    return SalesforceError("UNCERTAIN_WRITE", message)


class SalesforceApiError(Exception):
    """A request-level failure after the client's own retries: carries the errors and their kind."""

    def __init__(self, errors: list[SalesforceError], status: int | None = None) -> None:
        super().__init__("; ".join(f"{e.code}: {e.message}" for e in errors) or f"HTTP {status}")
        self.errors = errors
        self.status = status

    @property
    def kind(self) -> ErrorKind:
        return self.errors[0].kind if self.errors else classify("", self.status)

    @property
    def error(self) -> SalesforceError:
        return self.errors[0] if self.errors else SalesforceError("HTTP_ERROR", str(self), (), self.status)


class AuthenticationError(SalesforceApiError):
    """The token endpoint refused the credentials (OAuth `error` / `error_description`)."""


class HostNotAllowed(ValueError):
    """A URL that is not https or not on a Salesforce domain (or an explicitly allowed host)."""
