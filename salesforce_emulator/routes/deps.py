"""Dependencies shared by the data routes: the state, the API version, the caller's session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .. import versions
from ..auth import Session
from ..errors import INVALID_SESSION, NOT_FOUND, SfException
from ..org import Org
from ..state import EmulatorState


def get_state(request: Request) -> EmulatorState:
    """The emulator state attached to the app."""
    return request.app.state.emulator


def api_version(version: str) -> float:
    """The numeric API version from the path (`v62.0` → 62.0); unknown versions are NOT_FOUND."""
    value = versions.parse(version)
    if value is None:
        raise SfException(404, NOT_FOUND)
    return value


def require_session(request: Request) -> Session:
    """The session of the bearer token; 401 INVALID_SESSION_ID when missing, bad or expired."""
    state: EmulatorState = request.app.state.emulator
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    session = state.tokens.validate(token.strip()) if scheme.lower() in ("bearer", "oauth") else None
    if session is None:
        raise SfException(401, INVALID_SESSION, headers={"WWW-Authenticate": 'Token'})
    return session


def caller_org(request: Request, session: Annotated[Session, Depends(require_session)]) -> Org:
    """The org as the calling user sees it: their profile's objects and fields (permissions.py)."""
    state: EmulatorState = request.app.state.emulator
    return state.org_for(session.user_id)


State = Annotated[EmulatorState, Depends(get_state)]
Version = Annotated[float, Depends(api_version)]
CurrentSession = Annotated[Session, Depends(require_session)]
CallerOrg = Annotated[Org, Depends(caller_org)]
