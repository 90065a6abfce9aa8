"""Multi-row INSERTs for the SQLite stores: executemany steps once per row, and each step releases and
re-takes the GIL, which under a busy event loop can wait for its switch interval every time."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def statement_sizes(rows: int, largest: int) -> list[int]:
    """Statement sizes covering `rows` rows: `largest` as often as it fits, then powers of two, so a handful of
    statement shapes (prepared once, then cached by sqlite3) serve every group size."""
    out = [largest] * (rows // largest)
    rest = rows % largest
    size = largest
    while rest:
        while size > rest:
            size //= 2
        out.append(size)
        rest -= size
    return out


def insert_rows(db: sqlite3.Connection, sql_for: Callable[[int], str], params: Sequence[Any], width: int,
                largest: int) -> None:
    """`params` (rows of `width` values, flat) in one transaction, `sql_for(n)` being an n-row statement."""
    with immediate_transaction(db):
        insert_rows_in_transaction(db, sql_for, params, width, largest)


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT around the block, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def insert_rows_in_transaction(db: sqlite3.Connection, sql_for: Callable[[int], str], params: Sequence[Any],
                               width: int, largest: int) -> None:
    """`insert_rows` inside a transaction the caller began (several tables written in one commit)."""
    start = 0
    for rows in statement_sizes(len(params) // width, largest):
        end = start + rows * width
        db.execute(sql_for(rows), params[start:end])
        start = end
