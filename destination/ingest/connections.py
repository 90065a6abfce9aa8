"""Per-connection limits for the HTTP server: how long a connection may take to send a request's line and
headers. uvicorn closes idle keep-alive connections, but a connection that trickles its headers (slowloris)
or sends nothing after connecting is held for ever; enough of them exhaust the connection limit and every
other client gets 503. This closes such a connection once `header_timeout` passes without a complete
request head. (The body has its own deadline in the ingest handler: 408.)"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ..config import HttpConfig


def _guarded(base: type[asyncio.Protocol], header_timeout: float) -> type[asyncio.Protocol]:
    class HeaderDeadline(base):  # type: ignore[valid-type, misc]
        """uvicorn's protocol (httptools or h11) with a deadline for each request head."""

        _head_timer: asyncio.TimerHandle | None = None

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
    for a request's head, idle keep-alive, and the size of a request line and headers (h11)."""
    return {"http": _guarded(AutoHTTPProtocol, http.header_timeout_seconds),
            "limit_concurrency": http.max_connections, "timeout_keep_alive": http.keep_alive_seconds,
            "h11_max_incomplete_event_size": http.max_header_bytes}
