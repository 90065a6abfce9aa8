"""Routes: the OAuth 2.0 token endpoint (password, refresh_token, client_credentials, JWT bearer) and revoke."""

from __future__ import annotations

import base64
from typing import Any

import jwt
from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..org import ClientApp
from .deps import State

router = APIRouter()

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
_CLOCK_SKEW_SECONDS = 180


def _fail(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """Client id and secret from HTTP Basic, else from the form."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            raw = base64.b64decode(header[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = raw.partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _public_key(app: ClientApp) -> Any:
    pem = (app.jwt_public_key or "").encode()
    if b"BEGIN CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem).public_key()
    return pem


@router.post("/services/oauth2/token")
async def token(request: Request, state: State) -> JSONResponse:
    """Issue a session for a form-encoded grant; failures are 400 with Salesforce's OAuth error JSON."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return _fail("unsupported_grant_type", "grant type not supported")
    form = {k: str(v) for k, v in (await request.form()).items()}
    grant = form.get("grant_type", "")
    org = state.org
    base = _base_url(request)
    if grant == JWT_GRANT:
        return _jwt_grant(form.get("assertion", ""), base, state)
    if grant not in ("password", "refresh_token", "client_credentials"):
        return _fail("unsupported_grant_type", "grant type not supported")
    client_id, secret = _client_credentials(request, form)
    app = next((c for c in org.clients if c.client_id == client_id), None)
    if app is None:
        return _fail("invalid_client_id", "client identifier invalid")
    if grant == "refresh_token":
        if app.client_secret and secret and secret != app.client_secret:
            return _fail("invalid_client", "invalid client credentials")
        session = state.tokens.redeem_refresh_token(form.get("refresh_token", ""), client_id)
        if session is None:
            return _fail("invalid_grant", "expired access/refresh token")
        return JSONResponse(state.tokens.token_response(session, base))
    if secret != app.client_secret:
        return _fail("invalid_client", "invalid client credentials")
    if grant == "client_credentials":
        if not any(u.username == app.run_as for u in org.users):
            return _fail("invalid_grant", "no client credentials user enabled")
        session = state.tokens.issue(app.run_as, client_id)
        return JSONResponse(state.tokens.token_response(session, base))
    user = next((u for u in org.users if u.username == form.get("username")), None)
    if user is None or user.password != form.get("password"):
        return _fail("invalid_grant", "authentication failure")
    session, refresh = state.tokens.issue_with_refresh_token(user.username, client_id)
    return JSONResponse(state.tokens.token_response(session, base) | {"refresh_token": refresh})


def _jwt_grant(assertion: str, base: str, state: Any) -> JSONResponse:
    """RS256 assertion signed by the key registered for the app named in `iss`; no refresh token."""
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return _fail("invalid_grant", "invalid assertion")
    if header.get("alg") != "RS256":
        return _fail("invalid_grant", "invalid assertion")
    app = next((c for c in state.org.clients if c.client_id == unverified.get("iss")), None)
    if app is None:
        return _fail("invalid_client_id", "client identifier invalid")
    if not app.jwt_public_key:
        return _fail("invalid_grant", "invalid assertion")
    audiences = [*_AUDIENCES, base]
    try:
        claims = jwt.decode(assertion, _public_key(app), algorithms=["RS256"], audience=audiences,
                            leeway=_CLOCK_SKEW_SECONDS, options={"require": ["exp", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        return _fail("invalid_grant", "expired authorization code")
    except jwt.InvalidAudienceError:
        return _fail("invalid_grant", "audience is invalid")
    except jwt.PyJWTError:
        return _fail("invalid_grant", "invalid assertion")
    username = claims.get("prn") or claims.get("sub")
    if not any(u.username == username for u in state.org.users):
        return _fail("invalid_grant", "user hasn't approved this consumer")
    session = state.tokens.issue(username, app.client_id)
    return JSONResponse(state.tokens.token_response(session, base))


@router.post("/services/oauth2/revoke")
@router.get("/services/oauth2/revoke")
async def revoke(request: Request, state: State) -> Response:
    """Revoke an access token, or a refresh token with its access tokens (POST form or GET ?token=)."""
    form = await request.form() if request.method == "POST" else {}
    token_value = str(form.get("token") or request.query_params.get("token") or "")
    if not state.tokens.revoke(token_value):
        return _fail("invalid_token", "invalid token")
    return Response(status_code=200)
