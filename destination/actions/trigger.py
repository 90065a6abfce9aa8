"""Triggers: Segment-style subscription expressions, parsed by a real grammar into a safe evaluator.

    type = "identify" and traits.email exists
    event = "Order Completed" and properties.total > 100
    type in ("identify", "group") and not traits.plan contains "free"

No eval: the expression becomes a tree of plain dataclasses evaluated against the event body.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedInput

from .paths import MISSING, getter

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*         -> any_
?and_expr: not_expr (_AND not_expr)*       -> all_
?not_expr: _NOT not_expr                   -> not_
         | atom
?atom: "(" or_expr ")"
     | path COMPARE value                  -> compare
     | path _EXISTS                        -> exists
     | path _NOT _EXISTS                   -> not_exists
     | path _IN "(" value ("," value)* ")" -> in_
     | path _NOT _IN "(" value ("," value)* ")" -> not_in
     | path _CONTAINS value                -> contains
path: NAME
value: ESCAPED_STRING                      -> string
     | SINGLE_STRING                       -> single_string
     | SIGNED_NUMBER                       -> number
     | _TRUE                               -> true
     | _FALSE                              -> false
     | _NULL                               -> null

_OR.2: /or\b/i
_AND.2: /and\b/i
_NOT.2: /not\b/i
_EXISTS.2: /exists\b/i
_IN.2: /in\b/i
_CONTAINS.2: /contains\b/i
_TRUE.2: /true\b/i
_FALSE.2: /false\b/i
_NULL.2: /null\b/i
COMPARE: "!=" | ">=" | "<=" | "=" | ">" | "<"
NAME: /\$?\.?[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+|\[\d+\])*/
SINGLE_STRING: /'(?:[^'\\]|\\.)*'/
%import common.ESCAPED_STRING
%import common.SIGNED_NUMBER
%import common.WS
%ignore WS
"""


class TriggerError(ValueError):
    """A trigger expression that does not parse; `column` is 1-based within the expression."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Compare:
    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Exists:
    path: str
    negate: bool = False


@dataclass(frozen=True)
class In:
    path: str
    values: tuple[Any, ...]
    negate: bool = False


@dataclass(frozen=True)
class Contains:
    path: str
    value: Any


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class AllOf:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Any, ...]


@v_args(inline=True)
class _Build(Transformer[Token, Any]):
    def path(self, token: Token) -> str:
        return str(token).removeprefix("$").removeprefix(".")

    def string(self, token: Token) -> str:
        import json

        return json.loads(token)

    def single_string(self, token: Token) -> str:
        return str(token)[1:-1].replace("\\'", "'").replace("\\\\", "\\")

    def number(self, token: Token) -> float:
        value = float(token)
        return int(value) if value.is_integer() and "." not in token else value

    def true(self) -> bool:
        return True

    def false(self) -> bool:
        return False

    def null(self) -> None:
        return None

    def compare(self, path: str, op: Token, value: Any) -> Compare:
        return Compare(path, str(op), value)

    def exists(self, path: str) -> Exists:
        return Exists(path)

    def not_exists(self, path: str) -> Exists:
        return Exists(path, negate=True)

    def in_(self, path: str, *values: Any) -> In:
        return In(path, values)

    def not_in(self, path: str, *values: Any) -> In:
        return In(path, values, negate=True)

    def contains(self, path: str, value: Any) -> Contains:
        return Contains(path, value)

    def not_(self, item: Any) -> Not:
        return Not(item)

    def all_(self, *items: Any) -> Any:
        return items[0] if len(items) == 1 else AllOf(items)

    def any_(self, *items: Any) -> Any:
        return items[0] if len(items) == 1 else AnyOf(items)


_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


@lru_cache(maxsize=1024)
def parse(expression: str) -> Any:
    """Parse a trigger expression into its tree (cached); TriggerError with a column on bad input."""
    try:
        return _Build().transform(_PARSER.parse(expression))
    except UnexpectedInput as exc:
        column = getattr(exc, "column", None)
        raise TriggerError(f"cannot parse trigger at column {column}: {str(exc).splitlines()[0]}", column) from None
    except LarkError as exc:
        raise TriggerError(f"cannot parse trigger: {exc}") from None


def matches(tree: Any, body: dict[str, Any]) -> bool:
    """Evaluate a parsed trigger against an event body."""
    return compile_tree(tree)(body)


@lru_cache(maxsize=1024)
def predicate(expression: str) -> Callable[[dict[str, Any]], bool]:
    """The trigger `expression` as a function of an event body (parsed and built once per expression)."""
    return compile_tree(parse(expression))


_ORDER: dict[str, Callable[[Any, Any], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                 ">=": operator.ge}


@lru_cache(maxsize=4096)
def compile_tree(tree: Any) -> Callable[[dict[str, Any]], bool]:
    """A parsed trigger as nested closures: the tree is walked once here, not once per event."""
    if isinstance(tree, (AllOf, AnyOf)):
        parts = tuple(compile_tree(t) for t in tree.items)
        if isinstance(tree, AllOf):
            return lambda body: all(part(body) for part in parts)
        return lambda body: any(part(body) for part in parts)
    if isinstance(tree, Not):
        inner = compile_tree(tree.item)
        return lambda body: not inner(body)
    get = getter(tree.path)
    if isinstance(tree, Exists):
        negate = tree.negate

        def exists(body: dict[str, Any]) -> bool:
            value = get(body)
            return (value is not MISSING and value is not None and value != "") is not negate
        return exists
    if isinstance(tree, In):
        values, negate = tree.values, tree.negate

        def in_(body: dict[str, Any]) -> bool:
            value = get(body)
            return (value is not MISSING and any(same(value, v) for v in values)) is not negate
        return in_
    if isinstance(tree, Contains):
        wanted = tree.value
        return lambda body: holds_contains(get(body), wanted)
    assert isinstance(tree, Compare)
    op, right = tree.op, tree.value
    if op in ("=", "!="):
        equal = op == "="
        missing = not equal and right is not None

        def compare_equal(body: dict[str, Any]) -> bool:
            value = get(body)
            if value is MISSING:
                return missing
            return same(value, right) == equal
        return compare_equal
    return lambda body: holds_order(op, get(body), right)


def holds_contains(value: Any, wanted: Any) -> bool:
    """`value contains wanted`: a substring of text, or an item of a list (compared as `=` does)."""
    if isinstance(value, str) and isinstance(wanted, str):
        return wanted in value
    if isinstance(value, list):
        return any(same(item, wanted) for item in value)
    return False


def holds_order(op: str, value: Any, right: Any) -> bool:
    """`value op right` for `<`, `<=`, `>`, `>=`: numbers (text that is a number too) or text; else false."""
    if value is MISSING:
        return False
    left, other = _ordered(value, right)
    return left is not None and _ORDER[op](left, other)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, int):  # a JSON integer can have hundreds of digits: beyond a float, it is ±inf
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def same(left: Any, right: Any) -> bool:
    """`left = right` as triggers compare: numbers by value (text that is a number too), else exactly."""
    if type(left) is str and type(right) is str:
        return left == right
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return left == right
    a, b = _number(left), _number(right)
    if a is not None and b is not None and not (isinstance(left, str) and isinstance(right, str)):
        return a == b
    return left == right


def _ordered(left: Any, right: Any) -> tuple[Any, Any]:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a, b
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None, None
