"""What the SQLite stores (event log, sync log) share: opening a file, transactions, and multi-row INSERTs
(executemany steps once per row, and each step releases and re-takes the GIL, which under a busy event loop
can wait for its switch interval every time)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def connect(path: Path, timeout: float) -> sqlite3.Connection:
    """An autocommit connection to a store's file in WAL, every commit synced (an outcome or an event must
    survive a crash before what it stands for is acknowledged), `timeout` seconds of busy wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout)
    # before anything else: only a new file takes it (pages freed by retention are then given back to the
    # file system; an older file keeps them for reuse)
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    # Two processes opening a file still in rollback mode at once can each hold a read lock and want the write
    # lock the switch to WAL takes: SQLite fails one of them at once, without its busy wait. It tries again.
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.01)
    db.execute("PRAGMA synchronous=FULL")
    return db


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
