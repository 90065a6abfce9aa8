"""The sync log's WHERE clause, built once for both SQL dialects (values always bound, never inlined)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..outcomes import Status
from .base import SyncLogFilter

MAX_PAGE_SIZE = 1000  # rows per page of the sync-log API and page
MAX_OFFSET = 1_000_000  # deeper pages: narrow the filter (since/until) instead


class BadFilter(ValueError):
    """A sync-log query parameter that cannot be used; `parameter` names it (the API answers 422)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def parse_time(text: str | None, parameter: str = "since") -> datetime | None:
    """A `since` / `until` bound from an ISO 8601 string, in UTC: an offset is honoured (`+02:00` is two
    hours ahead of UTC), `Z` is UTC, and no offset means UTC. BadFilter for anything else."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        # the stores compare instants; SQLite compares text, so every bound is written in UTC like the rows
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise BadFilter(parameter, f"not an ISO 8601 date-time: {text[:40]!r}") from None


def filter_from(params: Mapping[str, str | None]) -> SyncLogFilter:
    """The filter a query string asks for (`status`, `object`, `source`, `record_id`, `error_code`, `search`,
    `since`, `until`); empty values mean any. BadFilter names a parameter that cannot be used."""
    status = params.get("status") or None
    if status is not None and status not in {s.value for s in Status}:
        raise BadFilter("status", f"one of {', '.join(s.value for s in Status)}")

    def text(name: str) -> str | None:
        value = params.get(name) or None
        if value is not None and (len(value) > 1000 or "\x00" in value):
            raise BadFilter(name, "at most 1000 characters, no NUL")
        return value

    return SyncLogFilter(status=Status(status) if status else None, object=text("object"), source=text("source"),
                         record_id=text("record_id"), error_code=text("error_code"), search=text("search"),
                         since=parse_time(params.get("since"), "since"),
                         until=parse_time(params.get("until"), "until"))


def page_from(params: Mapping[str, str | None], default: int) -> tuple[int, int]:
    """`limit` (1..MAX_PAGE_SIZE, `default` when absent) and `offset` (0..MAX_OFFSET) of a query string."""
    return (_bounded(params, "limit", default, 1, MAX_PAGE_SIZE), _bounded(params, "offset", 0, 0, MAX_OFFSET))


def _bounded(params: Mapping[str, str | None], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise BadFilter(name, f"an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise BadFilter(name, f"an integer from {low} to {high}")
    return value


def where_sql(where: SyncLogFilter, placeholder: Callable[[int], str], *,
              with_status: bool = True) -> tuple[str, list[Any]]:
    """`WHERE ...` text and its parameters; `placeholder(n)` renders the n-th (1-based) parameter."""
    parts: list[str] = []
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return placeholder(len(params))

    equal = {"object": where.object, "source": where.source, "action": where.action,
             "error_code": where.error_code, "record_id": where.record_id, "message_id": where.message_id}
    if with_status and where.status is not None:
        equal["status"] = where.status.value
    for column, value in equal.items():
        if value is not None:
            parts.append(f"{column} = {bind(value)}")
    if where.search:
        term = where.search.strip()
        parts.append(f"(record_id = {bind(term)} OR message_id = {bind(term)} OR email = {bind(term.lower())})")
    if where.since is not None:
        parts.append(f"updated_at >= {bind(_utc(where.since))}")
    if where.until is not None:
        parts.append(f"updated_at < {bind(_utc(where.until))}")
    return ("WHERE " + " AND ".join(parts)) if parts else "", params


def _utc(moment: datetime) -> datetime:
    """Rows are stored in UTC (as text, in SQLite): a bound in another offset is the same instant in UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
