"""Request bodies are read within the size limit, as sent and once decompressed: a gzip bomb or an oversized
upload is refused (413) without the server's memory growing by the size of what it was sent or would inflate
to. Measured on the real `destination run --ingest-only` process (VmHWM, its peak resident set)."""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest
from destination_process import DestinationProcess, ingest_only

from destination.ingest.body import BadEncoding, BodyTooLarge, read_limited

KEY = "web-app-demo-key"
LIMIT = 500 * 1024


def _bomb(size: int) -> bytes:
    """`size` bytes of one repeated character inside a JSON string, gzipped (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(b'{"userId": "u", "traits": {"x": "')]
    block = b"a" * (1 << 20)
    for _ in range(size >> 20):
        out.append(compressor.compress(block))
    out.append(compressor.compress(b'"}}') + compressor.flush())
    return b"".join(out)


async def _chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def test_a_gzip_bomb_is_refused_after_inflating_at_most_the_limit() -> None:
    bomb = _bomb(64 << 20)
    assert len(bomb) < 100_000
    with pytest.raises(BodyTooLarge, match="decompressed"):
        await read_limited(_chunks(bomb), "gzip", LIMIT)
    small = gzip.compress(b'{"userId": "u"}')
    assert await read_limited(_chunks(small, 7), "gzip", LIMIT) == b'{"userId": "u"}'
    assert await read_limited(_chunks(zlib.compress(b"{}"), 1), "deflate", LIMIT) == b"{}"


async def test_a_declared_or_streamed_oversize_body_is_refused_before_it_is_read() -> None:
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        while True:
            read += 1
            yield b"x" * 65536

    with pytest.raises(BodyTooLarge):
        await read_limited(endless(), None, LIMIT, content_length=str(400 << 20))
    assert read == 0
    with pytest.raises(BodyTooLarge):
        await read_limited(endless(), None, LIMIT)
    assert read <= LIMIT // 65536 + 1


async def test_broken_or_trailing_compressed_data_is_a_bad_encoding() -> None:
    good = gzip.compress(b'{"a": 1}')
    for bad in (good[:-4], b"not gzip at all", good + b"garbage after the stream"):
        with pytest.raises(BadEncoding):
            await read_limited(_chunks(bad, 5), "gzip", LIMIT)


@pytest.fixture(scope="module")
def ingest_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DestinationProcess]:
    process = ingest_only(tmp_path_factory.mktemp("limits"))
    process.start()
    yield process
    process.stop()


def _post_raw(port: int, headers: dict[str, str], body: bytes | Iterator[bytes]) -> str:
    """POST over a plain socket (the body may be refused before it is all sent); the status line, or
    'reset' when the server closed the connection before answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
        try:
            for chunk in [body] if isinstance(body, bytes) else body:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return sock.recv(65536).split(b"\r\n", 1)[0].decode()
        except ConnectionResetError:
            return "reset"


def test_a_gzip_bomb_does_not_grow_the_process(ingest_process: DestinationProcess) -> None:
    bomb = _bomb(128 << 20)  # 128 MB once inflated (the one reproduced was 1 MB → 2.1 GB RSS)
    before = ingest_process.memory_kb()
    status = _post_raw(ingest_process.port, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                                             "Authorization": "Basic d2ViLWFwcC1kZW1vLWtleTo=",
                                             "Content-Length": str(len(bomb))}, bomb)
    grown = ingest_process.memory_kb() - before
    assert grown < 30_000, f"peak RSS grew {grown} kB"
    assert " 413 " in status, status


def test_a_large_upload_is_refused_while_being_read(ingest_process: DestinationProcess) -> None:
    size = 200 << 20
    before = ingest_process.memory_kb()
    status = _post_raw(ingest_process.port, {"Content-Type": "application/json", "Content-Length": str(size),
                                             "Authorization": "Basic d2ViLWFwcC1kZW1vLWtleTo="},
                       (b"x" * (1 << 20) for _ in range(size >> 20)))
    grown = ingest_process.memory_kb() - before
    assert grown < 30_000, f"peak RSS grew {grown} kB"
    assert " 413 " in status or status == "reset", status
    chunked = _post_raw(ingest_process.port, {"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                                              "Authorization": "Basic d2ViLWFwcC1kZW1vLWtleTo="},
                        (b"100000\r\n" + b"x" * (1 << 20) + b"\r\n" for _ in range(size >> 20)))
    assert " 413 " in chunked or chunked == "reset", chunked
    assert ingest_process.memory_kb() - before < 30_000
