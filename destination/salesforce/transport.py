"""The HTTP transport under the client: httpx's own, with two of httpcore 1.0.9's cancellation defects mended.
Both bite when a request is abandoned half-way: a batch cancelled at a revoked partition's timeout, or a stop.

- A TLS handshake that is cancelled leaves its TCP socket open until the garbage collector finds it, with a
  ResourceWarning (its anyio backend closes the socket on `except Exception` only). _ClosedOnCancel closes it.
- A request cancelled after the pool gave it a new connection, before it used it, leaves that connection in
  the pool, never to connect and never reclaimed (encode/httpcore#1093). Once every slot is held so, every
  request fails with PoolTimeout until a restart. _Pool reclaims it.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx


# The `timeout` parameters below are httpcore's interface (ASYNC109 asks for a caller's own deadline instead).
class _ClosedOnCancel(httpcore.AsyncNetworkStream):
    """A TCP stream whose socket is closed when its TLS handshake is abandoned for any reason."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:  # noqa: ASYNC109
        try:
            return await self._stream.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            with anyio.CancelScope(shield=True):  # the close itself must not be cancelled half-way
                await self._stream.aclose()
            raise

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend (what it picks under asyncio), its TCP streams wrapped in _ClosedOnCancel (the
    client never connects over a Unix socket: the base class refuses that)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _ClosedOnCancel(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, which also closes a connection that no request holds and that is not idle: only a
    request cancelled between being given a new connection and using it leaves one so (the request of a
    connection in use stays in the pool's list until its response is closed)."""

    def _assign_requests_to_connections(self) -> list[Any]:
        held = {id(request.connection) for request in self._requests if request.connection is not None}
        orphans = [c for c in self._connections if id(c) not in held and not (c.is_idle() or c.is_closed())]
        for connection in orphans:
            self._connections.remove(connection)
        return [*orphans, *super()._assign_requests_to_connections()]


def transport(context: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport for HTTPS with `context` and `limits`, its pool built on _Backend (httpx takes no
    network backend, so the pool it made is replaced by the same one, _Pool, with ours)."""
    made = httpx.AsyncHTTPTransport(verify=context, limits=limits)
    made._pool = _Pool(
        ssl_context=context, max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=_Backend())
    return made
