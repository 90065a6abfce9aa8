"""The page's sign-in: an operator token typed into a form becomes a signed session cookie (Secure,
HttpOnly, SameSite=Strict; the cookie holds a signed session, never the token). Forms that change state carry
a CSRF field derived from the session; `csrf_ok` checks it. The login form itself carries one tied to a
short-lived login cookie, so another site cannot sign a browser in with its own token."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..access import LOGIN_COOKIE, SESSION_COOKIE, Session, Sessions

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())
_LOGIN_SECONDS = 600


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def _safe_next(value: str | None) -> str:
    """Only a local path: the login must not redirect to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or urlsplit(value).netloc:
        return "/sync-log"
    return value


def session_of(request: Request) -> Session | None:
    """The browser session the guard found for this request (None for a Bearer caller)."""
    return getattr(request.state, "session", None)


def csrf_field(sessions: Sessions, request: Request) -> str:
    """The CSRF value for forms on a page rendered for this request ('' for a Bearer caller)."""
    session = session_of(request)
    return sessions.csrf(session.nonce) if session else ""


def csrf_ok(sessions: Sessions, request: Request, given: str | None) -> bool:
    """Whether a state-changing form post is genuine: a Bearer caller needs no CSRF token (a browser never
    sends that header on its own); a cookie session needs its CSRF field."""
    session = session_of(request)
    if session is None:
        return getattr(request.state, "operator", None) is not None
    return sessions.csrf_ok(session.nonce, given)


def router(sessions: Sessions) -> APIRouter:
    """GET/POST /login and POST /logout."""
    auth = APIRouter(include_in_schema=False)

    @auth.get("/login", response_class=HTMLResponse)
    async def login_form(next: str | None = None) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = _ENV.get_template("login.html").render(csrf=sessions.csrf(nonce, "login"), next=_safe_next(next),
                                                      failed=False)
        response = HTMLResponse(html)
        _set_cookie(response, LOGIN_COOKIE, nonce, _LOGIN_SECONDS)
        return response

    @auth.post("/login")
    async def login(request: Request, token: str = Form(""), csrf: str = Form(""),
                    next: str = Form("/sync-log")) -> Response:
        if not sessions.csrf_ok(request.cookies.get(LOGIN_COOKIE), csrf, "login"):
            return HTMLResponse("<p>The sign-in form expired or came from another site: "
                                '<a href="/login">sign in again</a>.</p>', status_code=403)
        operator = sessions.tokens.identify(token.strip())
        if operator is None:
            nonce = secrets.token_urlsafe(16)
            html = _ENV.get_template("login.html").render(csrf=sessions.csrf(nonce, "login"), next=_safe_next(next),
                                                          failed=True)
            response: Response = HTMLResponse(html, status_code=401)
            _set_cookie(response, LOGIN_COOKIE, nonce, _LOGIN_SECONDS)
            return response
        response = RedirectResponse(_safe_next(next), status_code=303)
        _set_cookie(response, SESSION_COOKIE, sessions.issue(operator), sessions.lifetime)
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @auth.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        if not csrf_ok(sessions, request, csrf):
            return HTMLResponse("<p>Refused: the form's CSRF token is missing or wrong.</p>", status_code=403)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    return auth
