"""OAuth token endpoint: the four grants, their failures, token lifetime, and HTTPS with the emulator CA."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import httpx
import jwt
import pytest
import trustme
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
    ({"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "username": "nobody@x",
      "password": PASSWORD}, "invalid_grant", "authentication failure"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type", "grant type not supported"),
    ({"client_id": CLIENT_ID}, "unsupported_grant_type", "grant type not supported"),
])
def test_token_failures_are_400_with_oauth_error_json(emulator, form: dict[str, str], error: str,  # type: ignore[no-untyped-def]
                                                      description: str) -> None:
    r = _token(emulator.url, **form)
    assert r.status_code == 400 and r.json() == {"error": error, "error_description": description}


def test_json_bodies_and_bad_basic_credentials_are_refused(emulator) -> None:  # type: ignore[no-untyped-def]
    url = f"{emulator.url}/services/oauth2/token"
    as_json = httpx.post(url, json={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                    "client_secret": CLIENT_SECRET})
    assert as_json.status_code == 400
    assert as_json.json() == {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
    basic = httpx.post(url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "wrong"))
    assert basic.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
    garbled = httpx.post(url, data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic %%%"})
    assert garbled.json()["error"] == "invalid_client_id"


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
    """An org extending the default one with a JWT connected app (no secret) beside the default client."""
    org = tmp_path / "org.yaml"
    indented = "\n".join("        " + line for line in public_pem.strip().splitlines())
    org.write_text("extends: default\nclients:\n"
                   f"  - {{client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}, run_as: {USERNAME}}}\n"
                   "  - client_id: jwt-app\n    jwt_public_key: |\n" + indented + "\n")
    return org


JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _claims(**over: object) -> dict[str, object]:
    claims = {"iss": "jwt-app", "sub": USERNAME, "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 180}
    return claims | over


def test_jwt_bearer_verifies_rs256_audience_and_expiry(tmp_path: Path) -> None:
    private, public = _keypair()
    other_private, _ = _keypair()
    with started(build_state(_jwt_org(tmp_path, public))) as emulator:
        ok = _token(emulator.url, grant_type=JWT_GRANT, assertion=jwt.encode(_claims(), private, algorithm="RS256"))
        assert ok.status_code == 200 and "refresh_token" not in ok.json()
        assert ok.json()["instance_url"] == emulator.url
        assert _call(emulator.url, ok.json()["access_token"]).status_code == 200
        cases = {
            "invalid assertion": jwt.encode(_claims(), other_private, algorithm="RS256"),
            "audience is invalid": jwt.encode(_claims(aud="https://evil.example"), private, algorithm="RS256"),
            "expired authorization code": jwt.encode(_claims(exp=int(time.time()) - 600), private,
                                                     algorithm="RS256"),
            "user hasn't approved this consumer": jwt.encode(_claims(sub="nobody@x"), private, algorithm="RS256"),
        }
        for description, assertion in cases.items():
            r = _token(emulator.url, grant_type=JWT_GRANT, assertion=assertion)
            assert r.status_code == 400 and r.json() == {"error": "invalid_grant", "error_description": description}


def test_jwt_accepts_sandbox_and_own_audience_string_exp_and_prn_over_sub(tmp_path: Path) -> None:
    private, public = _keypair()
    with started(build_state(_jwt_org(tmp_path, public))) as emulator:
        accepted = [
            _claims(aud="https://test.salesforce.com"),
            _claims(aud=emulator.url),
            _claims(exp=str(int(time.time()) + 180)),  # the docs example writes exp as a string
            _claims(sub="nobody@x", prn=USERNAME),  # prn wins when both are sent
        ]
        for claims in accepted:
            r = _token(emulator.url, grant_type=JWT_GRANT, assertion=jwt.encode(claims, private, algorithm="RS256"))
            assert r.status_code == 200, (claims, r.json())
        assert emulator.state.tokens.validate(r.json()["access_token"]).username == USERNAME  # type: ignore[union-attr]


def test_jwt_refuses_unknown_issuer_other_algorithms_and_garbage(tmp_path: Path) -> None:
    private, public = _keypair()
    with started(build_state(_jwt_org(tmp_path, public))) as emulator:
        refused = {
            jwt.encode(_claims(iss="nope"), private, algorithm="RS256"): ("invalid_client_id",
                                                                           "client identifier invalid"),
            jwt.encode(_claims(), "shared-secret-of-32-bytes-or-more!", algorithm="HS256"): ("invalid_grant",
                                                                                             "invalid assertion"),
            jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, private, algorithm="RS256"): (
                "invalid_grant", "invalid assertion"),
            "not.a.jwt": ("invalid_grant", "invalid assertion"),
        }
        for assertion, (error, description) in refused.items():
            r = _token(emulator.url, grant_type=JWT_GRANT, assertion=assertion)
            assert r.status_code == 400 and r.json() == {"error": error, "error_description": description}


def test_jwt_public_key_may_be_an_x509_certificate(tmp_path: Path) -> None:
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("jwt-app.example", key_type=trustme.KeyType.RSA)
    certificate = leaf.cert_chain_pems[0].bytes().decode()
    with started(build_state(_jwt_org(tmp_path, certificate))) as emulator:
        assertion = jwt.encode(_claims(), leaf.private_key_pem.bytes(), algorithm="RS256")
        r = _token(emulator.url, grant_type=JWT_GRANT, assertion=assertion)
        assert r.status_code == 200 and _call(emulator.url, r.json()["access_token"]).status_code == 200


def _password_login(url: str) -> dict[str, str]:
    return _token(url, grant_type="password", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                  username=USERNAME, password=PASSWORD).json()


def test_revoking_an_access_token_ends_only_that_session(emulator) -> None:  # type: ignore[no-untyped-def]
    first, second = _password_login(emulator.url), _password_login(emulator.url)
    r = httpx.post(f"{emulator.url}/services/oauth2/revoke", data={"token": first["access_token"]})
    assert r.status_code == 200
    assert _call(emulator.url, first["access_token"]).status_code == 401
    assert _call(emulator.url, second["access_token"]).status_code == 200
    again = httpx.post(f"{emulator.url}/services/oauth2/revoke", data={"token": first["access_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"


def test_revoking_a_refresh_token_ends_its_access_tokens_and_further_refreshes(emulator) -> None:  # type: ignore[no-untyped-def]
    login = _password_login(emulator.url)
    refreshed = _token(emulator.url, grant_type="refresh_token", client_id=CLIENT_ID,
                       refresh_token=login["refresh_token"]).json()
    other = _password_login(emulator.url)
    r = httpx.get(f"{emulator.url}/services/oauth2/revoke", params={"token": login["refresh_token"]})
    assert r.status_code == 200
    assert _call(emulator.url, login["access_token"]).status_code == 401
    assert _call(emulator.url, refreshed["access_token"]).status_code == 401
    assert _call(emulator.url, other["access_token"]).status_code == 200
    denied = _token(emulator.url, grant_type="refresh_token", client_id=CLIENT_ID,
                    refresh_token=login["refresh_token"])
    assert denied.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}


def test_signature_is_hmac_sha256_of_id_and_issued_at_with_the_client_secret(emulator) -> None:  # type: ignore[no-untyped-def]
    body = _password_login(emulator.url)
    digest = hmac.new(CLIENT_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()
    assert body["signature"] == base64.b64encode(digest).decode()


def test_client_credentials_needs_a_run_as_user_that_exists(tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text("extends: default\nclients:\n  - {client_id: no-user, client_secret: s}\n"
                   "  - {client_id: ghost-user, client_secret: s, run_as: ghost@x}\n")
    with started(build_state(org)) as emulator:
        for client_id in ("no-user", "ghost-user"):
            r = _token(emulator.url, grant_type="client_credentials", client_id=client_id, client_secret="s")
            assert r.status_code == 400
            assert r.json() == {"error": "invalid_grant", "error_description": "no client credentials user enabled"}
