"""OAuth token endpoint: the four grants, their failures, token lifetime, and HTTPS with the emulator CA."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from running_emulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, started

from salesforce_emulator.state import build_state


def _token(url: str, verify: object = True, **form: str) -> httpx.Response:
    return httpx.post(f"{url}/services/oauth2/token", data=form, verify=verify)  # type: ignore[arg-type]


def _call(url: str, token: str, verify: object = True) -> httpx.Response:
    return httpx.get(f"{url}/services/data/v62.0/limits", headers={"Authorization": f"Bearer {token}"},
                     verify=verify)  # type: ignore[arg-type]


def test_password_grant_returns_the_reference_fields_and_a_refresh_token(emulator) -> None:  # type: ignore[no-untyped-def]
    r = _token(emulator.url, grant_type="password", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
               username=USERNAME, password=PASSWORD)
    assert r.status_code == 200
    body = r.json()
    assert {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "refresh_token"} <= set(body)
    assert body["access_token"].startswith("00D8c0000000001!") and body["token_type"] == "Bearer"
    assert body["instance_url"] == emulator.url and body["issued_at"].isdigit() and len(body["issued_at"]) == 13
    assert body["id"].endswith("/00D8c0000000001EAA/0058c0000000001AAA")
    assert _call(emulator.url, body["access_token"]).status_code == 200
    refreshed = _token(emulator.url, grant_type="refresh_token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                       refresh_token=body["refresh_token"])
    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != body["access_token"]
    assert "refresh_token" not in refreshed.json()


def test_client_credentials_in_the_body_or_basic_auth(emulator) -> None:  # type: ignore[no-untyped-def]
    body = _token(emulator.url, grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert body.status_code == 200 and "refresh_token" not in body.json()
    basic = httpx.post(f"{emulator.url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(CLIENT_ID, CLIENT_SECRET))
    assert basic.status_code == 200


@pytest.mark.parametrize(("form", "error", "description"), [
    ({"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "username": USERNAME,
      "password": "wrong"}, "invalid_grant", "authentication failure"),
    ({"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"}, "invalid_client_id",
     "client identifier invalid"),
    ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "bad"}, "invalid_client",
     "invalid client credentials"),
    ({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": "5Aepbogus"}, "invalid_grant",
     "expired access/refresh token"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type", "grant type not supported"),
])
def test_token_failures_are_400_with_oauth_error_json(emulator, form: dict[str, str], error: str,  # type: ignore[no-untyped-def]
                                                      description: str) -> None:
    r = _token(emulator.url, **form)
    assert r.status_code == 400 and r.json() == {"error": error, "error_description": description}


def test_expired_token_gets_401_invalid_session_id(emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.state.faults.update({"token_lifetime_seconds": 2})
    token = emulator.token()
    assert _call(emulator.url, token).status_code == 200
    time.sleep(2.1)
    r = _call(emulator.url, token)
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def _keypair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def _jwt_org(tmp_path: Path, public_pem: str) -> Path:
    org = tmp_path / "org.yaml"
    indented = "\n".join("        " + line for line in public_pem.strip().splitlines())
    org.write_text("extends: default\nclients:\n  - client_id: jwt-app\n    jwt_public_key: |\n" + indented + "\n")
    return org


def test_jwt_bearer_verifies_rs256_audience_and_expiry(tmp_path: Path) -> None:
    private, public = _keypair()
    other_private, _ = _keypair()
    now = int(time.time())
    claims = {"iss": "jwt-app", "sub": USERNAME, "aud": "https://login.salesforce.com", "exp": now + 180}
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    with started(build_state(_jwt_org(tmp_path, public))) as emulator:
        ok = _token(emulator.url, grant_type=grant, assertion=jwt.encode(claims, private, algorithm="RS256"))
        assert ok.status_code == 200 and "refresh_token" not in ok.json()
        assert _call(emulator.url, ok.json()["access_token"]).status_code == 200
        cases = {
            "invalid assertion": jwt.encode(claims, other_private, algorithm="RS256"),
            "audience is invalid": jwt.encode(claims | {"aud": "https://evil.example"}, private, algorithm="RS256"),
            "expired authorization code": jwt.encode(claims | {"exp": now - 600}, private, algorithm="RS256"),
            "user hasn't approved this consumer": jwt.encode(claims | {"sub": "nobody@x"}, private, algorithm="RS256"),
        }
        for description, assertion in cases.items():
            r = _token(emulator.url, grant_type=grant, assertion=assertion)
            assert r.status_code == 400 and r.json() == {"error": "invalid_grant", "error_description": description}
