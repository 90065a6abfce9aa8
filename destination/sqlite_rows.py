"""Multi-row INSERTs for the SQLite stores: executemany steps once per row, and each step releases and
re-takes the GIL, which under a busy event loop can wait for its switch interval every time."""

from __future__ import annotations


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
