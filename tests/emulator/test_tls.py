"""HTTPS: the emulator's local CA, the names its certificate covers, reuse of the files, the --tls-dir option."""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from running_emulator import CLIENT_ID, CLIENT_SECRET, free_port

from salesforce_emulator.tls import ensure_certificates

CREDENTIALS = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def _trusting(ca_pem: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_pem))


def test_server_certificate_covers_loopback_localhost_and_my_domain_hosts(tmp_path: Path) -> None:
    paths = ensure_certificates(tmp_path)
    leaf = x509.load_pem_x509_certificate(paths.cert_pem.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert {"localhost", "*.my.salesforce.com"} <= set(names.get_values_for_type(x509.DNSName))
    ca = x509.load_pem_x509_certificate(paths.ca_pem.read_bytes())
    assert leaf.issuer == ca.subject
    assert stat.S_IMODE(os.stat(paths.key_pem).st_mode) == 0o600


def test_certificates_are_reused_from_the_tls_dir_and_remade_when_one_is_missing(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    ca_before = first.ca_pem.read_bytes()
    assert ensure_certificates(tmp_path).ca_pem.read_bytes() == ca_before
    first.key_pem.unlink()
    again = ensure_certificates(tmp_path)
    assert again.key_pem.exists() and again.ca_pem.read_bytes() != ca_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]


def test_https_with_the_emulator_ca_and_refusal_without_it(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    assert tls_emulator.url.startswith("https://127.0.0.1:")
    r = httpx.post(f"{tls_emulator.url}/services/oauth2/token", data=CREDENTIALS,
                   verify=_trusting(tls_emulator.ca_pem))
    assert r.status_code == 200 and r.json()["instance_url"] == tls_emulator.url
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{tls_emulator.url}/services/oauth2/token", data=CREDENTIALS)


def test_localhost_name_verifies_and_instance_url_follows_the_host_used(tls_emulator) -> None:  # type: ignore[no-untyped-def]
    url = tls_emulator.url.replace("127.0.0.1", "localhost")
    r = httpx.post(f"{url}/services/oauth2/token", data=CREDENTIALS, verify=_trusting(tls_emulator.ca_pem))
    assert r.status_code == 200 and r.json()["instance_url"] == url


def test_command_line_serves_https_from_tls_dir_with_faults_from_a_file(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("latency_ms: 5\nlock_error_rate: 0.25\nseed: 7\n")
    port = free_port()
    with (tmp_path / "emulator.log").open("wb") as log:  # a pipe nobody reads would fill and stay open
        proc = subprocess.Popen(
            [sys.executable, "-m", "salesforce_emulator", "--port", str(port), "--tls-dir", str(tmp_path / "tls"),
             "--faults", str(faults)], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"https://127.0.0.1:{port}"
        ca = tmp_path / "tls" / "ca.pem"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{url}/__admin/faults", verify=_trusting(ca))
                break
            except (httpx.ConnectError, FileNotFoundError, ssl.SSLError):
                assert proc.poll() is None and time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.2)
        assert r.json()["lock_error_rate"] == 0.25 and r.json()["latency_ms"] == 5
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served when --tls-dir is given
            httpx.get(f"http://127.0.0.1:{port}/services/data/", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
