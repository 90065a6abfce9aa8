"""HTTPS like Salesforce: a local CA and a server certificate for 127.0.0.1, localhost, *.my.salesforce.com."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost", "*.my.salesforce.com", "login.salesforce.com", "test.salesforce.com")


@dataclass(frozen=True)
class TlsPaths:
    """The CA clients trust (ca.pem) and the server's certificate chain and key."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def ensure_certificates(directory: str | Path) -> TlsPaths:
    """Create the CA and server certificate in `directory`, or reuse the ones already there."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = TlsPaths(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if all(p.exists() for p in (paths.ca_pem, paths.cert_pem, paths.key_pem)):
        return paths
    ca = trustme.CA(organization_name="Salesforce emulator local CA")
    server = ca.issue_cert(*SERVER_NAMES)
    # The key is written first and the CA last, so a reader that sees ca.pem sees a complete set.
    _write(paths.key_pem, server.private_key_pem.bytes(), mode=0o600)
    _write(paths.cert_pem, b"".join(blob.bytes() for blob in server.cert_chain_pems), mode=0o644)
    _write(paths.ca_pem, ca.cert_pem.bytes(), mode=0o644)
    return paths


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Write through a temporary file and rename, so two emulators starting at once never read half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)  # mkstemp creates it 0600: the private key is never readable by others
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
