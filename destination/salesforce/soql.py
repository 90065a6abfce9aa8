"""SOQL built from values, never from concatenated raw input: one escaping function, typed literals,
validated field names, and IN lists chunked under Salesforce's statement and URL limits."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$")
_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
            "\f": "\\f"}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}
_NEEDS_ESCAPE = re.compile(r"[\\'\"\x00-\x1f\x7f]")
_NEEDS_LIKE_ESCAPE = re.compile(r"[\\'\"\x00-\x1f\x7f%_]")
_URL_ONE_BYTE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~ "
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "long"})
BARE_DATE_TYPES = frozenset({"date", "datetime"})
MAX_STATEMENT_CHARS = 100_000
MAX_LITERAL_CHARS = 4_000
# The request line of a GET /query must stay well under Salesforce's 16,384-byte URI + headers limit.
DEFAULT_MAX_URL_BYTES = 12_000


class SoqlValueError(ValueError):
    """A value that cannot be a literal of the field's type (a mapping problem, reported per event)."""


def escape(text: str, *, like: bool = False) -> str:
    """Escape a string's content for a single-quoted SOQL literal (reference §3.2); `like` also escapes % _."""
    if not (_NEEDS_LIKE_ESCAPE if like else _NEEDS_ESCAPE).search(text):
        return text  # the common case (e-mails, names): nothing to escape, no per-character loop
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif like and ch in _LIKE_ESCAPES:
            out.append(_LIKE_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def quote(text: str, *, like: bool = False) -> str:
    """A quoted SOQL string literal."""
    if len(text) > MAX_LITERAL_CHARS:
        raise SoqlValueError(f"string literal longer than {MAX_LITERAL_CHARS} characters")
    return "'" + escape(text, like=like) + "'"


def literal(value: Any, field_type: str | None = None) -> str:
    """A literal for `value`, typed by the field's describe type when known (numbers, booleans, dates bare)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if field_type in NUMBER_TYPES or (field_type is None and isinstance(value, (int, float, Decimal))):
        return _number(value)
    if field_type == "boolean":
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise SoqlValueError(f"{value!r} is not a boolean")
        return text
    if field_type == "date" or (field_type is None and isinstance(value, date) and not isinstance(value, datetime)):
        return _date(value)
    if field_type == "datetime" or (field_type is None and isinstance(value, datetime)):
        return _datetime(value)
    if isinstance(value, (int, float, Decimal)):
        value = _number(value)
    return quote(str(value))


def _number(value: Any) -> str:
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError as exc:
        raise SoqlValueError(f"{value!r} is not a number") from exc
    if not number.is_finite() or abs(number.adjusted()) > 40:
        raise SoqlValueError(f"{value!r} is not a number SOQL can hold")
    text = format(number, "f")
    return text


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat() if value.tzinfo else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()[:10]).isoformat()
    except ValueError as exc:
        raise SoqlValueError(f"{value!r} is not a date") from exc


def _datetime(value: Any) -> str:
    if not isinstance(value, datetime):
        text = str(value).strip().replace("Z", "+00:00")
        if re.search(r"[+-]\d{4}$", text):
            text = text[:-2] + ":" + text[-2:]
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise SoqlValueError(f"{value!r} is not a datetime") from exc
    moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def name(text: str) -> str:
    """A field, relationship path or object name, validated so it cannot carry SOQL of its own."""
    if not isinstance(text, str) or not _NAME.match(text) or len(text) > 255:
        raise SoqlValueError(f"not a valid SOQL name: {text!r}")
    return text


# ----- conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cond:
    """A condition tree: a comparison (field op value) or `all` / `any` of conditions."""

    field: str | None = None
    op: str = "="
    value: Any = None
    field_type: str | None = None
    all: tuple[Cond, ...] = ()
    any: tuple[Cond, ...] = ()

    def render(self) -> str:
        if self.all or self.any:
            parts = [c.render() for c in (self.all or self.any)]
            joiner = " AND " if self.all else " OR "
            return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
        assert self.field is not None
        column = name(self.field)
        if self.op in ("IN", "NOT IN"):
            values = list(self.value)
            if not values:
                raise SoqlValueError("IN needs at least one value")
            return f"{column} {self.op} (" + ", ".join(literal(v, self.field_type) for v in values) + ")"
        if self.op == "LIKE":  # the value is literal text: matches exactly (wildcards escaped)
            return f"{column} LIKE {quote(str(self.value), like=True)}"
        if self.op == "CONTAINS":  # LIKE '%text%' with the text's own wildcards escaped
            return f"{column} LIKE '%{escape(str(self.value), like=True)}%'"
        if self.op not in ("=", "!=", "<", "<=", ">", ">="):
            raise SoqlValueError(f"unknown operator {self.op!r}")
        return f"{column} {self.op} {literal(self.value, self.field_type)}"


def eq(field_name: str, value: Any, field_type: str | None = None) -> Cond:
    return Cond(field_name, "=", value, field_type)


def in_(field_name: str, values: Iterable[Any], field_type: str | None = None) -> Cond:
    return Cond(field_name, "IN", tuple(values), field_type)


def all_of(*conds: Cond) -> Cond:
    return Cond(all=tuple(conds))


def any_of(*conds: Cond) -> Cond:
    return Cond(any=tuple(conds))


@dataclass(frozen=True)
class Select:
    """SELECT fields FROM object [WHERE cond] [ORDER BY ...] [LIMIT n]."""

    object: str
    fields: tuple[str, ...] = ("Id",)
    where: Cond | None = None
    order_by: tuple[str, ...] = ()
    limit: int | None = None

    def render(self) -> str:
        text = f"SELECT {', '.join(name(f) for f in dict.fromkeys(self.fields))} FROM {name(self.object)}"
        if self.where is not None:
            text += " WHERE " + self.where.render()
        if self.order_by:
            text += " ORDER BY " + ", ".join(_order(o) for o in self.order_by)
        if self.limit is not None:
            text += f" LIMIT {int(self.limit)}"
        if len(text) > MAX_STATEMENT_CHARS:
            raise SoqlValueError(f"SOQL statement longer than {MAX_STATEMENT_CHARS} characters")
        return text


def _order(item: str) -> str:
    parts = item.split()
    if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
        return f"{name(parts[0])} {parts[1].upper()}"
    return name(item)


def url_length(text: str) -> int:
    """len(quote_plus(text)) without building it: unreserved bytes and spaces take one byte, others three."""
    data = text.encode()
    return len(data) + 2 * len(data.translate(None, _URL_ONE_BYTE))


def chunk_in(select: Select, field_name: str, values: Sequence[Any], field_type: str | None = None, *,
             extra: Cond | None = None, max_url_bytes: int = DEFAULT_MAX_URL_BYTES,
             max_values: int = 800) -> Iterator[tuple[Select, list[Any]]]:
    """Split `field IN (values)` over several queries so each URL-encoded statement stays under the limit."""
    def build(chunk: list[Any]) -> Select:
        cond = in_(field_name, chunk, field_type)
        return Select(select.object, select.fields, all_of(cond, extra) if extra else cond, select.order_by,
                      select.limit)

    base = url_length(build([values[0]]).render()) if values else 0
    chunk: list[Any] = []
    size = base
    for value in values:
        cost = url_length(literal(value, field_type)) + 4  # ", " is "%2C+"
        if chunk and (size + cost > max_url_bytes or len(chunk) >= max_values):
            yield build(chunk), chunk
            chunk, size = [], base
        chunk.append(value)
        size += cost
    if chunk:
        yield build(chunk), chunk
