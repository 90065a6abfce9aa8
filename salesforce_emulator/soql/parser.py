"""Recursive-descent SOQL parser: SELECT ... FROM ... [WHERE] [ORDER BY] [LIMIT] [OFFSET] into an AST."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .lexer import Token, malformed, tokenize, unexpected

MAX_OFFSET = 2000


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, date, datetime, null, boolean, date_literal
    value: Any
    like_raw: str = ""


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str  # = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND, OR, NOT
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Aggregate:
    function: str  # COUNT
    field: str | None
    alias: str | None


@dataclass
class Query:
    fields: list[Any]  # str paths, Aggregate, or Query (child subquery)
    object: str
    where: Any = None
    order_by: list[tuple[str, bool, bool]] = field(default_factory=list)  # (path, descending, nulls_last)
    limit: int | None = None
    offset: int | None = None

    @property
    def count_only(self) -> bool:
        """SELECT COUNT() FROM ...: only totalSize is returned."""
        return len(self.fields) == 1 and isinstance(self.fields[0], Aggregate) and self.fields[0].field is None


_DATE_LITERALS = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
                  "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_YEAR", "LAST_YEAR"}
_DATE_N = ("LAST_N_DAYS", "NEXT_N_DAYS")
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "ORDER", "BY", "LIMIT", "OFFSET", "IN", "LIKE",
             "ASC", "DESC", "NULLS", "FIRST", "LAST", "NULL", "TRUE", "FALSE", "INCLUDES", "EXCLUDES"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.upper in words

    def expect_word(self, word: str) -> None:
        if not self.at(word):
            raise unexpected(self.tok)
        self.take()

    def expect_punct(self, ch: str) -> None:
        if self.tok.kind != "punct" or self.tok.text != ch:
            raise unexpected(self.tok)
        self.take()

    def name(self) -> str:
        if self.tok.kind != "ident" or self.tok.upper in _KEYWORDS or ":" in self.tok.text:
            raise unexpected(self.tok)
        return self.take().text

    def query(self, *, nested: bool = False) -> Query:
        self.expect_word("SELECT")
        fields = [self.select_item(nested)]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.take()
            fields.append(self.select_item(nested))
        self.expect_word("FROM")
        query = Query(fields, self.name())
        if self.at("WHERE"):
            self.take()
            query.where = self.or_expr()
        if self.at("ORDER"):
            self.take()
            self.expect_word("BY")
            query.order_by.append(self.order_item())
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.take()
                query.order_by.append(self.order_item())
        if self.at("LIMIT"):
            self.take()
            query.limit = self.integer()
        if self.at("OFFSET"):
            self.take()
            query.offset = self.integer()
            if query.offset > MAX_OFFSET:
                from ..errors import SfError, SfException

                raise SfException(400, SfError("NUMBER_OUTSIDE_VALID_RANGE",
                                               f"Maximum SOQL offset allowed is {MAX_OFFSET}"))
        return query

    def integer(self) -> int:
        if self.tok.kind != "number" or not self.tok.text.lstrip("+").isdigit():
            raise unexpected(self.tok)
        return int(self.take().text)

    def select_item(self, nested: bool) -> Any:
        if self.tok.kind == "punct" and self.tok.text == "(" and not nested:
            self.take()
            sub = self.query(nested=True)
            self.expect_punct(")")
            return sub
        if self.at("COUNT") and self.tokens[self.i + 1].text == "(":
            self.take()
            self.take()
            inner = None if self.tok.text == ")" else self.name()
            self.expect_punct(")")
            alias = self.name() if self.tok.kind == "ident" and not self.at("FROM") else None
            return Aggregate("COUNT", inner, alias)
        return self.name()

    def order_item(self) -> tuple[str, bool, bool]:
        path = self.name()
        descending = False
        if self.at("ASC", "DESC"):
            descending = self.take().upper == "DESC"
        nulls_last = descending
        if self.at("NULLS"):
            self.take()
            if not self.at("FIRST", "LAST"):
                raise unexpected(self.tok)
            nulls_last = self.take().upper == "LAST"
        return path, descending, nulls_last

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.at("OR"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.at("AND"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def not_expr(self) -> Any:
        if self.at("NOT"):
            self.take()
            return BoolOp("NOT", (self.not_expr(),))
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.take()
            inner = self.or_expr()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.name()
        if self.tok.kind == "op":
            op = self.take().text
            return Comparison(path, "!=" if op == "<>" else op, self.literal())
        if self.at("LIKE"):
            self.take()
            value = self.literal()
            if value.kind != "string":
                raise unexpected(self.tokens[self.i - 1])
            return Comparison(path, "LIKE", value)
        negated = False
        if self.at("NOT"):
            self.take()
            negated = True
        if self.at("IN", "INCLUDES", "EXCLUDES"):
            word = self.take().upper
            if negated and word != "IN":
                raise unexpected(self.tokens[self.i - 1])
            return Comparison(path, ("NOT IN" if negated else word), self.literal_list())
        raise unexpected(self.tok)

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        if self.at("SELECT"):
            raise malformed("Semi-join subqueries are not supported by the emulator")
        values = [self.literal()]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.take()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self) -> Literal:
        token = self.tok
        if token.kind == "string":
            self.take()
            return Literal("string", token.text, token.like_raw)
        if token.kind == "number":
            self.take()
            text = token.text
            return Literal("number", float(text) if "." in text else int(text))
        if token.kind in ("date", "datetime"):
            self.take()
            return Literal(token.kind, token.text)
        if token.kind == "ident":
            word = token.upper
            if word == "NULL":
                self.take()
                return Literal("null", None)
            if word in ("TRUE", "FALSE"):
                self.take()
                return Literal("boolean", word == "TRUE")
            if word in _DATE_LITERALS or word.split(":")[0] in _DATE_N:
                self.take()
                return Literal("date_literal", word)
        raise unexpected(token)


def parse(text: str) -> Query:
    """Parse a SOQL statement; MALFORMED_QUERY (HTTP 400) on a syntax error."""
    parser = _Parser(text)
    query = parser.query()
    if parser.tok.kind != "end":
        raise unexpected(parser.tok)
    return query
