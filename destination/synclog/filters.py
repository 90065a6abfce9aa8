"""The sync log's WHERE clause, built once for both SQL dialects (values always bound, never inlined)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .base import SyncLogFilter


def parse_time(text: str | None) -> datetime | None:
    """A `since` / `until` bound from an ISO 8601 string (`Z` allowed; no zone means UTC)."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
        parts.append(f"updated_at >= {bind(where.since)}")
    if where.until is not None:
        parts.append(f"updated_at < {bind(where.until)}")
    return ("WHERE " + " AND ".join(parts)) if parts else "", params
