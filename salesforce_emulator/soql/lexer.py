"""SOQL tokens, with string literals unescaped exactly as reference §3.2 says (anything else is an error)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import malformed

MAX_STATEMENT_CHARS = 100_000
MAX_LITERAL_CHARS = 4_000
_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b", "B": "\b", "f": "\f",
            "F": "\f", '"': '"', "'": "'", "\\": "\\"}
LIKE_ESCAPES = {"_", "%"}
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\d:T]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, date, datetime, ident, op, punct, end
    text: str  # the source text (for strings: the unescaped value)
    pos: int
    like_raw: str = ""  # strings: the value with LIKE escapes kept as \% \_ markers
    like_only: str = ""  # strings: the first \% or \_ used (only a LIKE pattern may use them)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else self.text


def _string(text: str, start: int) -> tuple[Token, int]:
    """Read a '...' literal starting at `start` (the opening quote)."""
    out: list[str] = []
    like: list[str] = []
    like_only = ""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            value = "".join(out)
            if len(value) > MAX_LITERAL_CHARS:
                raise malformed(f"String literal exceeds the maximum length of {MAX_LITERAL_CHARS} characters")
            return Token("string", value, start, "".join(like), like_only), i + 1
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                like.append("\\\\" if nxt == "\\" else _ESCAPES[nxt])
                i += 2
                continue
            if nxt in LIKE_ESCAPES:
                like_only = like_only or "\\" + nxt
                out.append(nxt)
                like.append("\\" + nxt)
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2:i + 6]):
                char = chr(int(text[i + 2:i + 6], 16))
                out.append(char)
                like.append("\\" + char if char in "%_\\" else char)
                i += 6
                continue
            raise malformed(f"Invalid string literal '{text[start:i + 2]}'. Illegal character sequence "
                            f"'\\{nxt}' in string literal.")
        out.append(ch)
        like.append(ch)
        i += 1
    raise malformed(f"unterminated string literal at position {start}")


def tokenize(text: str) -> list[Token]:
    """Split a SOQL statement into tokens."""
    if len(text) > MAX_STATEMENT_CHARS:
        raise malformed(f"SOQL statement exceeds the maximum length of {MAX_STATEMENT_CHARS} characters")
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        if text[i] == "'":
            token, i = _string(text, i)
            tokens.append(token)
            continue
        match = _TOKEN.match(text, i)
        if match is None:
            raise malformed(f"unexpected token: '{text[i]}'\nposition {i}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), i))
        i = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens
