"""Bulk API 2.0 CSV: reading uploaded job data (RFC 4180 with the job's delimiter) and writing result files.

The reader never raises on bad input: malformed rows carry an `error`, and the line endings it met are
reported so the job can fail with Salesforce's LineEnding message when they do not match the job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

DELIMITERS: dict[str, str] = {"BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|",
                              "SEMICOLON": ";", "TAB": "\t"}
LINE_ENDINGS: dict[str, str] = {"LF": "\n", "CRLF": "\r\n"}
_BOM = "\ufeff"


@dataclass
class CsvRow:
    """One data record: its values, its text as uploaded (without the line ending), a parse error if any."""

    values: list[str]
    raw: str
    error: str | None = None


@dataclass
class ParsedCsv:
    """A whole upload: the header, the records, and which line endings ("LF", "CRLF") ended them."""

    header: list[str]
    header_raw: str
    rows: list[CsvRow]
    line_endings: set[str] = field(default_factory=set)
    header_error: str | None = None


def decode(data: bytes) -> str | None:
    """The upload as text: UTF-8 with any byte-order mark removed; None when it is not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text[1:] if text.startswith(_BOM) else text


@lru_cache(maxsize=8)
def _field_patterns(delimiter: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    d = re.escape(delimiter)
    quoted = re.compile(r'"((?:[^"]|"")*)"', re.S)
    unquoted = re.compile(rf'[^"{d}\n]*')
    return quoted, unquoted


def _read_record(text: str, pos: int, delimiter: str) -> tuple[list[str], int, int, str | None, str | None]:
    """Read one record from `pos`: (values, end of its text, start of the next record, ending, error)."""
    quoted, unquoted = _field_patterns(delimiter)
    values: list[str] = []
    n = len(text)
    bad_quote = "A double quote must start and end a value, with nothing before or after it"
    while True:
        if pos < n and text[pos] == '"':
            m = quoted.match(text, pos)
            if m is None:  # an opening quote that never closes swallows the rest of the file
                return [*values, text[pos + 1:]], n, n, None, "Unterminated quoted value"
            values.append(m.group(1).replace('""', '"'))
        else:
            m = unquoted.match(text, pos)
            assert m is not None  # the pattern matches the empty string
            values.append(m.group(0))
        pos = m.end()
        if pos < n and text[pos] == delimiter:
            pos += 1
            continue
        if pos >= n or text[pos] == "\n" or text.startswith("\r\n", pos):
            return _end_record(text, pos, values, None)
        # a quote inside an unquoted value, or anything but a delimiter or line break after a closing quote
        return _end_record(text, _skip_to_line_end(text, pos), values, bad_quote)


def _end_record(text: str, pos: int, values: list[str],
                error: str | None) -> tuple[list[str], int, int, str | None, str | None]:
    """Close a record at `pos` (end of text or a line break) and say which line ending ended it."""
    if pos >= len(text):
        return _strip_cr(values), pos, pos, None, error
    if text[pos] == "\r":
        return values, pos, pos + 2, "CRLF", error
    if pos > 0 and text[pos - 1] == "\r":  # an unquoted last value swallowed the CR of a CRLF
        return _strip_cr(values), pos - 1, pos + 1, "CRLF", error
    return values, pos, pos + 1, "LF", error


def _strip_cr(values: list[str]) -> list[str]:
    if values and values[-1].endswith("\r"):
        values[-1] = values[-1][:-1]
    return values


def _skip_to_line_end(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl


def parse(text: str, delimiter: str) -> ParsedCsv:
    """Split uploaded text into header and records; blank lines are skipped, values are not trimmed."""
    pos = 0
    n = len(text)
    header: list[str] = []
    header_raw = ""
    header_error: str | None = None
    rows: list[CsvRow] = []
    endings: set[str] = set()
    first = True
    while pos < n:
        start = pos
        values, end, pos, ending, error = _read_record(text, pos, delimiter)
        if ending:
            endings.add(ending)
        raw = text[start:end]
        if first:
            header, header_raw, header_error, first = values, raw, error, False
            continue
        if raw == "":
            continue
        if error is None and len(values) != len(header):
            error = f"Row has {len(values)} values but the header has {len(header)} columns"
        rows.append(CsvRow(values=values, raw=raw, error=error))
    return ParsedCsv(header=header, header_raw=header_raw, rows=rows, line_endings=endings,
                     header_error=header_error)


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _maybe_quote(value: str, delimiter: str) -> str:
    if any(c in value for c in (delimiter, '"', "\n", "\r")):
        return _quote(value)
    return value


def write_results(system_columns: Sequence[str], header: Sequence[str],
                  rows: Iterable[tuple[Sequence[str], Sequence[str]]], delimiter: str, line_ending: str) -> str:
    """A result file as Salesforce writes one: `sf__` columns always quoted, the uploaded columns after
    them with their names as uploaded; non-empty values quoted, empty values left empty."""
    lines = [delimiter.join([_quote(c) for c in system_columns] + [_maybe_quote(h, delimiter) for h in header])]
    for system_values, values in rows:
        cells = [_quote(v) for v in system_values] + [_quote(v) if v else "" for v in values]
        lines.append(delimiter.join(cells))
    return line_ending.join(lines) + line_ending


def write_raw(header_raw: str, raw_rows: Iterable[str], line_ending: str) -> str:
    """Records echoed exactly as uploaded (the unprocessed-records file)."""
    lines = [header_raw, *raw_rows]
    return line_ending.join(lines) + line_ending
