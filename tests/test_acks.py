"""Offsets are committed only up to the last event whose outcome is recorded, whatever the finish order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from destination.acks import OffsetTracker


def test_nothing_is_committable_until_the_first_event_finishes() -> None:
    t = OffsetTracker()
    for offset in (10, 11, 12):
        t.started("p0", offset)
    assert t.committable() == {}
    t.finished("p0", 11)
    assert t.committable() == {}, "offset 10 is still in flight"
    t.finished("p0", 10)
    assert t.committable() == {"p0": 12}
    t.committed({"p0": 12})
    assert t.committable() == {}
    t.finished("p0", 12)
    assert t.committable() == {"p0": 13}
    assert t.in_flight() == 0


def test_partitions_are_independent_and_a_revoked_one_is_forgotten() -> None:
    t = OffsetTracker()
    t.started("a", 0)
    t.started("b", 5)
    t.finished("b", 5)
    assert t.committable() == {"b": 6}
    assert t.in_flight("a") == 1 and t.in_flight("b") == 0
    t.forget("a")
    assert t.in_flight() == 0 and "a" not in t.committable()


def test_gaps_in_offsets_do_not_block_commits() -> None:
    t = OffsetTracker()
    for offset in (3, 7, 9):          # 4-6 and 8 were compacted away
        t.started("p", offset)
    t.finished("p", 9)
    t.finished("p", 3)
    assert t.committable() == {"p": 7}
    t.finished("p", 7)
    assert t.committable() == {"p": 10}


@given(st.permutations(list(range(30))), st.integers(0, 30))
def test_the_commit_never_passes_an_unfinished_offset(order: list[int], finished_count: int) -> None:
    t = OffsetTracker()
    for offset in range(30):
        t.started("p", offset)
    done = set(order[:finished_count])
    for offset in order[:finished_count]:
        t.finished("p", offset)
    commit = t.committable().get("p", 0)
    assert all(o in done for o in range(commit)), "every offset below the commit has an outcome"
    assert commit == next((o for o in range(30) if o not in done), 30), "and the commit is as far as it can be"
