"""Reading a request body within a size limit: the limit holds while reading (a 400 MB upload is refused after
its first 500 KB, not after it is in memory) and again after decompression (a 1 MB gzip bomb inflates to at
most the limit plus one chunk, never to gigabytes)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect

_CHUNK = 64 * 1024  # decompressed bytes produced per step


class BodyTooLarge(ValueError):
    """The body (as sent, or decompressed) is larger than the limit."""


class BadEncoding(ValueError):
    """The body is not valid for its Content-Encoding."""


def _decompressor(encoding: str) -> zlib._Decompress | None:
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    return None


async def read_limited(chunks: AsyncIterator[bytes], content_encoding: str | None, limit: int,
                       content_length: str | None = None) -> bytes:
    """The decoded body, at most `limit` bytes both as sent and decompressed (gzip or deflate; identity
    otherwise). BodyTooLarge as soon as either is exceeded; a Content-Length above the limit is refused
    before anything is read."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            declared = 0
        if declared > limit:
            raise BodyTooLarge(f"the request is larger than {limit} bytes")
    encoding = (content_encoding or "").lower().strip()
    inflater = _decompressor(encoding)
    received = 0
    out = bytearray()
    async for chunk in chunks:
        if not chunk:
            continue
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(f"the request is larger than {limit} bytes")
        if inflater is None:
            out += chunk
            continue
        _inflate(inflater, chunk, out, limit, encoding)
    if inflater is not None:
        if not inflater.eof:
            raise BadEncoding(f"the body is not valid {encoding}")
        if inflater.unused_data.strip(b"\0\r\n "):  # gzip allows concatenated members; we take one
            raise BadEncoding(f"the body is not valid {encoding}")
    return bytes(out)


def _inflate(inflater: zlib._Decompress, data: bytes, out: bytearray, limit: int, encoding: str) -> None:
    """Decompress `data` into `out`, one bounded step at a time, refusing output beyond `limit`."""
    if inflater.eof:
        raise BadEncoding(f"the body is not valid {encoding}: data after the end of the stream")
    while data and not inflater.eof:
        try:
            piece = inflater.decompress(data, min(_CHUNK, limit + 1 - len(out)))
        except zlib.error:
            raise BadEncoding(f"the body is not valid {encoding}") from None
        out += piece
        if len(out) > limit:
            raise BodyTooLarge(f"the request is larger than {limit} bytes once decompressed")
        data = inflater.unconsumed_tail
        if not piece and data:  # no progress: the max_length window is exhausted
            raise BodyTooLarge(f"the request is larger than {limit} bytes once decompressed")


class BodyLimit:
    """ASGI middleware: every request body of the app at most `max_bytes` as sent (the preview and Outbound
    Message endpoints parse theirs whole). A declared Content-Length above it is answered 413 before the app
    runs; a streamed body that grows past it is cut off: 413, and the app sees the client disconnect."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
        received = 0
        answered = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not answered:
                        answered = True
                        await _too_large(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except ClientDisconnect:  # what the app makes of the disconnect it was handed after the 413
            if not answered:
                raise


async def _too_large(send: Any, limit: int) -> None:
    body = b'{"code":"payload_too_large","message":"the request is larger than %d bytes"}' % limit
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
