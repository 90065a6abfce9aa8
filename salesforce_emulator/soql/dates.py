"""SOQL date literals (TODAY, LAST_N_DAYS:n, THIS_MONTH, ...) as day ranges, and the predicates they make."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..org import FieldDef
from .errors import invalid_field
from .values import soap_name


def _month(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def date_range(word: str, today: date) -> tuple[date, date]:
    """[start, end) of a date literal such as TODAY or LAST_N_DAYS:7; weeks start on Sunday (en_US)."""
    name, _, n_text = word.partition(":")
    n = int(n_text or 0)
    day = timedelta(1)
    week = today - timedelta((today.weekday() + 1) % 7)
    month = today.replace(day=1)
    year = date(today.year, 1, 1)
    ranges: dict[str, tuple[date, date]] = {
        "TODAY": (today, today + day), "YESTERDAY": (today - day, today), "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week - 7 * day, week), "THIS_WEEK": (week, week + 7 * day),
        "NEXT_WEEK": (week + 7 * day, week + 14 * day),
        "LAST_MONTH": (_month(today, -1), month), "THIS_MONTH": (month, _month(today, 1)),
        "NEXT_MONTH": (_month(today, 1), _month(today, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day), "NEXT_90_DAYS": (today + day, today + 91 * day),
        "LAST_YEAR": (date(today.year - 1, 1, 1), year), "THIS_YEAR": (year, date(today.year + 1, 1, 1)),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
    }
    if name in ranges:
        return ranges[name]
    n_ranges: dict[str, Callable[[], tuple[date, date]]] = {
        "LAST_N_DAYS": lambda: (today - n * day, today + day),
        "NEXT_N_DAYS": lambda: (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": lambda: (today - n * day, today - (n - 1) * day),
        "LAST_N_WEEKS": lambda: (week - 7 * n * day, week),
        "NEXT_N_WEEKS": lambda: (week + 7 * day, week + 7 * (n + 1) * day),
        "LAST_N_MONTHS": lambda: (_month(today, -n), month),
        "NEXT_N_MONTHS": lambda: (_month(today, 1), _month(today, n + 1)),
        "LAST_N_YEARS": lambda: (date(today.year - n, 1, 1), year),
        "NEXT_N_YEARS": lambda: (date(today.year + 1, 1, 1), date(today.year + 1 + n, 1, 1)),
    }
    return n_ranges[name]()


def date_literal_predicate(get: Callable[[dict[str, Any]], Any], fd: FieldDef, op: str, word: str,
                           today: date | None = None) -> Callable[[dict[str, Any]], bool]:
    """A predicate comparing a date or datetime field (its UTC day) with a date literal's range."""
    if fd.type not in ("date", "datetime"):
        raise invalid_field(f"value of filter criterion for field '{fd.name}' must be of type {soap_name(fd)} "
                            "and should be enclosed in quotes" if soap_name(fd) in ("string", "id", "reference")
                            else f"value of filter criterion for field '{fd.name}' must be of type "
                            f"{soap_name(fd)} and should not be enclosed in quotes")
    start, end = date_range(word, today or datetime.now(UTC).date())

    checks: dict[str, Callable[[date], bool]] = {
        "=": lambda d: start <= d < end, "!=": lambda d: not start <= d < end, "<": lambda d: d < start,
        "<=": lambda d: d < end, ">": lambda d: d >= end, ">=": lambda d: d >= start}
    check = checks[op]

    def holds(record: dict[str, Any]) -> bool:
        value = get(record)
        if value is None:
            return op == "!="  # as with any other literal, != keeps the nulls
        return check(date.fromisoformat(str(value)[:10]))

    return holds
