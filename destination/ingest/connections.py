"""Per-connection limits for the HTTP server: how long a connection may take to send a request's line and
headers, and how large they may be. uvicorn closes idle keep-alive connections, but a connection that
trickles its headers (slowloris) or sends nothing after connecting is held for ever; enough of them exhaust
the connection limit and every other client gets 503. This closes such a connection once `header_timeout`
passes without a complete request head. (The body has its own deadline in the ingest handler: 408.)"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ..config import HttpConfig

_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def _guarded(base: type[asyncio.Protocol], header_timeout: float, max_head_bytes: int) -> type[asyncio.Protocol]:
    class HeaderDeadline(base):  # type: ignore[valid-type, misc]
        """uvicorn's protocol (httptools or h11) with a deadline and a size limit for each request head
        (h11 has a size limit of its own, httptools none: its headers grow as long as they are sent)."""

        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a request head completed
                self._head_bytes = 0
            elif cycle is None or cycle.response_complete:  # still waiting for a complete head
                self._head_bytes += len(data)
                if self._head_bytes > max_head_bytes and not self.transport.is_closing():
                    self.transport.write(_TOO_LARGE)
                    self.transport.close()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_deadline()  # the next request's head on a kept-alive connection has one too

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(header_timeout, self._head_deadline, self.cycle)

        def _head_deadline(self, cycle_then: Any) -> None:
            # the same cycle as when armed, and it is not serving a request: no new request head arrived
            waiting = self.cycle is cycle_then and (cycle_then is None or cycle_then.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


def uvicorn_options(http: HttpConfig) -> dict[str, Any]:
    """uvicorn's per-connection limits from the settings: connections and requests in flight, the deadline
    and size limit of a request's head, and idle keep-alive."""
    return {"http": _guarded(AutoHTTPProtocol, http.header_timeout_seconds, http.max_header_bytes),
            "limit_concurrency": http.max_connections, "timeout_keep_alive": http.keep_alive_seconds,
            "h11_max_incomplete_event_size": http.max_header_bytes}
