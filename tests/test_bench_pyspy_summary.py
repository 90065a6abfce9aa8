"""bench/pyspy_summary.py: a py-spy raw profile read by module, start-up left out."""

from __future__ import annotations

from bench import pyspy_summary as summary

PROFILE = """\
_run_module_as_main (<frozen runpy>:198);main (destination/cli.py:34);_find_and_load (<frozen importlib._bootstrap>:1176);<module> (fastapi/__init__.py:7) 40
main (destination/cli.py:34);run (destination/commands/run.py:100);Runner.run (asyncio/runners.py:118) 10
main (destination/cli.py:34);_transport (destination/salesforce/client.py:128);send (/x/.venv/lib/python3.11/site-packages/anyio/_backends/_asyncio.py:1240) 30
main (destination/cli.py:34);_transport (destination/salesforce/client.py:128);request (/x/.venv/lib/python3.11/site-packages/httpx/_client.py:1500);handle (/x/.venv/lib/python3.11/site-packages/httpcore/_async/connection_pool.py:200) 10
main (destination/cli.py:34);record (destination/synclog/sqlite.py:140);insert_rows (destination/sqlite_rows.py:30) 45
Thread._bootstrap (threading.py:995);_worker (concurrent/futures/thread.py:83) 5
not a profile line
"""


def test_samples_are_charged_to_the_innermost_module_of_ours_and_imports_are_left_out() -> None:
    views = summary.summarise(summary.parse(PROFILE.splitlines()))
    assert views["totals"] == {"total": 100, "startup": 40}
    assert views["self"]["anyio"] == 30 and views["self"]["httpcore"] == 10
    assert views["charged"]["destination/salesforce/client.py"] == 40  # its httpx, httpcore and anyio time
    assert views["charged"]["destination/sqlite_rows.py"] == 45
    assert views["charged"]["concurrent"] == 5  # a thread with no frame of ours keeps its own module
    assert views["inclusive"]["destination/cli.py"] == 95
    assert views["functions"]["destination/salesforce/client.py _transport → anyio"] == 30
    assert views["functions"]["destination/sqlite_rows.py insert_rows → itself"] == 45
