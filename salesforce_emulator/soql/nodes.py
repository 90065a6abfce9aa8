"""The SOQL syntax tree: what the parser builds and the evaluator walks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Name(str):
    """A field path or object name as written, remembering where it starts in the statement."""

    pos: int

    def __new__(cls, text: str, pos: int = -1) -> Name:
        name = super().__new__(cls, text)
        name.pos = pos
        return name


@dataclass(frozen=True)
class Literal:
    """A value in a WHERE clause; `like_raw` keeps LIKE escapes (`\\%`, `\\_`) as backslash markers."""

    kind: str  # string, number, date, datetime, null, boolean, date_literal
    value: Any
    like_raw: str = ""


@dataclass(frozen=True)
class Comparison:
    """`field op value`; IN, NOT IN, INCLUDES and EXCLUDES carry a tuple of literals."""

    field: str
    op: str  # = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    """AND / OR over two or more conditions, or NOT over one."""

    op: str  # AND, OR, NOT
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Aggregate:
    """COUNT() (field None) or COUNT(field), with an optional alias."""

    function: str
    field: str | None
    alias: str | None


@dataclass
class Query:
    """One SELECT: its field list (paths, aggregates, child subqueries) and clauses."""

    fields: list[Any]  # str paths, Aggregate, or Query (child subquery)
    object: str
    where: Any = None
    order_by: list[tuple[str, bool, bool]] = field(default_factory=list)  # (path, descending, nulls_last)
    limit: int | None = None
    offset: int | None = None
    source: str = ""  # the whole statement, for Salesforce's caret diagram in errors

    @property
    def count_only(self) -> bool:
        """SELECT COUNT() FROM ...: only totalSize is returned."""
        return len(self.fields) == 1 and isinstance(self.fields[0], Aggregate) and self.fields[0].field is None
