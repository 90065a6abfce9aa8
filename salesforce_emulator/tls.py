"""HTTPS like Salesforce: a local CA and a server certificate for 127.0.0.1, localhost, *.my.salesforce.com."""

from __future__ import annotations

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
    ca.cert_pem.write_to_path(str(paths.ca_pem))
    server.private_key_pem.write_to_path(str(paths.key_pem))
    server.cert_chain_pems[0].write_to_path(str(paths.cert_pem))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(paths.cert_pem), append=True)
    paths.key_pem.chmod(0o600)
    return paths
