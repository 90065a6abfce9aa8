"""Recursive-descent SOQL parser: SELECT ... FROM ... [WHERE] [ORDER BY] [LIMIT] [OFFSET] into a syntax tree."""

from __future__ import annotations

from typing import Any

from ..errors import SfException
from .errors import malformed, out_of_range
from .errors import unexpected as _unexpected
from .lexer import Token, tokenize
from .nodes import Aggregate, BoolOp, Comparison, Literal, Name, Query

__all__ = ["Aggregate", "BoolOp", "Comparison", "Literal", "Name", "Query", "parse"]

MAX_OFFSET = 2000
MAX_INT = 2**31 - 1  # LIMIT, OFFSET and LAST_N_DAYS:n are 32-bit integers
MAX_DEPTH = 5  # a root and up to four levels of child subqueries (API v58+)
_DATE_LITERALS = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
                  "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR"}
_DATE_N = ("LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS", "LAST_N_MONTHS",
           "NEXT_N_MONTHS", "LAST_N_YEARS", "NEXT_N_YEARS")
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "ORDER", "BY", "LIMIT", "OFFSET", "IN", "LIKE",
             "ASC", "DESC", "NULLS", "FIRST", "LAST", "NULL", "TRUE", "FALSE", "INCLUDES", "EXCLUDES", "GROUP",
             "HAVING"}


def unexpected(token: Token) -> SfException:
    """MALFORMED_QUERY naming `token` and where it starts."""
    return _unexpected("<EOF>" if token.kind == "end" else token.text, token.pos)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
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

    def at_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == ch

    def expect_word(self, word: str) -> None:
        if not self.at(word):
            raise unexpected(self.tok)
        self.take()

    def expect_punct(self, ch: str) -> None:
        if not self.at_punct(ch):
            raise unexpected(self.tok)
        self.take()

    def name(self) -> Name:
        if self.tok.kind != "ident" or self.tok.upper in _KEYWORDS or ":" in self.tok.text:
            raise unexpected(self.tok)
        token = self.take()
        return Name(token.text, token.pos)

    def query(self, depth: int = 1) -> Query:
        self.expect_word("SELECT")
        fields = [self.select_item(depth)]
        while self.at_punct(","):
            self.take()
            fields.append(self.select_item(depth))
        self.expect_word("FROM")
        query = Query(fields, self.name(), source=self.text)
        if self.at("WHERE"):
            self.take()
            query.where = self.or_expr()
        if self.at("ORDER"):
            self.take()
            self.expect_word("BY")
            query.order_by.append(self.order_item())
            while self.at_punct(","):
                self.take()
                query.order_by.append(self.order_item())
        if self.at("LIMIT"):
            self.take()
            query.limit = self.integer()
        if self.at("OFFSET"):
            self.take()
            query.offset = self.integer()
            if query.offset > MAX_OFFSET:
                raise out_of_range(f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        return query

    def integer(self) -> int:
        if self.tok.kind != "number" or not self.tok.text.isdigit():
            raise unexpected(self.tok)
        value = int(self.tok.text)
        if value > MAX_INT:
            raise malformed(f"numeric value out of range: {self.tok.text}")
        self.take()
        return value

    def select_item(self, depth: int) -> Any:
        if self.at_punct("("):
            if depth >= MAX_DEPTH:
                raise unexpected(self.tok)
            self.take()
            sub = self.query(depth + 1)
            self.expect_punct(")")
            return sub
        if self.at("COUNT") and self.tokens[self.i + 1].text == "(":
            self.take()
            self.take()
            inner = None if self.at_punct(")") else self.name()
            self.expect_punct(")")
            alias = self.name() if self.tok.kind == "ident" and not self.at("FROM") else None
            return Aggregate("COUNT", inner, alias)
        return self.name()

    def order_item(self) -> tuple[Name, bool, bool]:
        path = self.name()
        descending = False
        if self.at("ASC", "DESC"):
            descending = self.take().upper == "DESC"
        nulls_last = descending  # Salesforce's default: nulls first ascending, last descending
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
        if self.at_punct("("):
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
            if self.tok.kind != "string":
                raise unexpected(self.tok)
            return Comparison(path, "LIKE", self.literal(like=True))
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
        while self.at_punct(","):
            self.take()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self, *, like: bool = False) -> Literal:
        token = self.tok
        if token.kind == "string":
            if token.like_only and not like:
                raise malformed(f"Invalid string literal. Illegal character sequence '{token.like_only}' in string "
                                f"literal at position {token.pos}: only a LIKE pattern may escape % and _.")
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
            if word in _DATE_LITERALS:
                self.take()
                return Literal("date_literal", word)
            name, _, n = word.partition(":")
            if name in _DATE_N and n.isdigit():
                if int(n) > MAX_INT:
                    raise malformed(f"numeric value out of range: {n}")
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
