"""The emulator's SOQL: a lexer and recursive-descent parser into an AST, and an evaluator over the store."""

from .evaluate import execute
from .parser import parse

__all__ = ["execute", "parse"]
