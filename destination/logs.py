"""The process's log: text or JSON lines on stderr at the configured level, with repeated warnings and errors
collapsed into one line per interval with a count (a broker outage would otherwise log hundreds of identical
connection errors a minute). Set up once, by the CLI, before a command runs."""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from .config import LoggingConfig

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log every request at INFO: quiet unless the level asks for DEBUG.
_CHATTY = ("httpx", "httpcore", "uvicorn.access")
# Attributes every LogRecord has: anything else was passed with `extra=` and goes into the JSON object.
_STANDARD = {*vars(logging.makeLogRecord({})), "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, exception (the formatted
    traceback, when there is one), then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        return json.dumps(out, default=str, ensure_ascii=False)


@dataclass
class _Window:
    start: float
    count: int = 0
    last: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """Warnings and errors with the same logger, level and message template: the first passes, the rest of
    the window are counted, and at the window's end one line says `<message> … repeated N times in the last
    30 s` (the message of the last one). A window without a repeat forgets the key, so the next occurrence
    is logged at once again. Summaries go to `sink` (the handler), also from a timer thread so the count of an
    outage that has ended is not held back until the next log line."""

    def __init__(self, window_seconds: float, level: int = logging.WARNING,
                 sink: Callable[[logging.LogRecord], object] | None = None) -> None:
        super().__init__()
        self.window = window_seconds
        self.level = level
        self.sink = sink
        self._windows: dict[tuple[str, int, str], _Window] = {}
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        self._closed = threading.Event()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level or hasattr(record, "repeated"):
            return True
        key = (record.name, record.levelno, str(record.msg))
        with self._lock:
            due = self._expire(record.created)
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = _Window(record.created)
                passes = True
            else:
                window.count += 1
                window.last = record
                passes = False
        self._send(due)
        if not passes:
            self._start_timer()
        return passes

    def flush(self, now: float | None = None) -> None:
        """Log the summary of every window that has ended by `now` (all of them when `now` is None)."""
        with self._lock:
            due = self._expire(now if now is not None else float("inf"))
        self._send(due)

    def close(self) -> None:
        self._closed.set()
        self.flush()

    def _expire(self, now: float) -> list[logging.LogRecord]:
        due = []
        for key, window in list(self._windows.items()):
            if now - window.start < self.window:
                continue
            if window.count and window.last is not None:
                end = min(now, window.start + self.window) if now != float("inf") else time.time()
                due.append(_summary(window.last, window.count, end - window.start))
                self._windows[key] = _Window(end)  # an outage still going on gets its next line a window later
            else:
                del self._windows[key]
        return due

    def _send(self, records: list[logging.LogRecord]) -> None:
        for record in records:
            if self.sink is not None:
                self.sink(record)

    def _start_timer(self) -> None:
        if self._timer is not None:
            return
        tick = max(0.1, min(1.0, self.window / 4))

        def run() -> None:
            while not self._closed.wait(tick):
                self.flush(time.time())

        self._timer = threading.Thread(target=run, name="log-repeat-flush", daemon=True)
        self._timer.start()


def _summary(last: logging.LogRecord, count: int, seconds: float) -> logging.LogRecord:
    """The line standing for `count` suppressed repeats of `last` (its traceback is not repeated)."""
    fields = dict(vars(last))
    fields.update(msg=f"{last.getMessage()} … repeated {count} times in the last {round(seconds)} s", args=None,
                  exc_info=None, exc_text=None, stack_info=None, created=time.time(), repeated=count)
    return logging.makeLogRecord(fields)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and embedding callers replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


_installed: tuple[logging.Handler, RepeatFilter] | None = None


def setup_logging(config: LoggingConfig) -> logging.Handler:
    """Install the process's log handler on the root logger (replacing one installed before) and set levels."""
    global _installed
    root = logging.getLogger()
    if _installed is not None:
        handler, old = _installed
        root.removeHandler(handler)
        old.close()
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if config.format == "json" else logging.Formatter(TEXT_FORMAT))
    repeats = RepeatFilter(config.repeat_window_seconds, sink=handler.handle)
    handler.addFilter(repeats)
    root.addHandler(handler)
    level = logging.getLevelNamesMapping()[config.level]
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else logging.WARNING)
    _installed = (handler, repeats)
    return handler


@atexit.register
def _flush_repeats() -> None:  # registered after logging's own shutdown hook, so it runs before it
    if _installed is not None:
        _installed[1].close()
