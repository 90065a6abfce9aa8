"""Access tokens: issued by the OAuth grants, checked on every data call, expired by lifetime."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from .faults import Faults
from .org import Org


@dataclass(frozen=True)
class Session:
    """What a valid access token stands for."""

    token: str
    username: str
    user_id: str
    client_id: str
    issued_at: float
    expires_at: float
    refresh_token: str | None = None  # the refresh token it came from: revoking that one revokes this too


class TokenStore:
    """Issues opaque tokens shaped like Salesforce's (`<orgId15>!<random>`) and validates them."""

    def __init__(self, org: Org, faults: Faults) -> None:
        self._org = org
        self._faults = faults
        self._sessions: dict[str, Session] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token → (username, client_id)
        self._lock = threading.Lock()

    def lifetime(self) -> float:
        """Seconds a new token lives: the fault override when set, else the org's setting."""
        return float(self._faults.token_lifetime_seconds or self._org.token_lifetime_seconds)

    def issue(self, username: str, client_id: str, *, refresh_token: str | None = None) -> Session:
        """Mint a session for a user of this org."""
        user = next(u for u in self._org.users if u.username == username)
        now = time.time()
        token = f"{self._org.org_id[:15]}!{secrets.token_urlsafe(40)}"
        session = Session(token=token, username=username, user_id=user.id, client_id=client_id,
                          issued_at=now, expires_at=now + self.lifetime(), refresh_token=refresh_token)
        with self._lock:
            self._sessions[token] = session
        return session

    def issue_with_refresh_token(self, username: str, client_id: str) -> tuple[Session, str]:
        """A session and a long-lived refresh token (password flow), valid until revoked."""
        refresh = f"5Aep{secrets.token_urlsafe(60)}"
        with self._lock:
            self._refresh[refresh] = (username, client_id)
        return self.issue(username, client_id, refresh_token=refresh), refresh

    def redeem_refresh_token(self, token: str, client_id: str) -> Session | None:
        """A new session for a refresh token issued to this client, or None."""
        with self._lock:
            owner = self._refresh.get(token)
        if owner is None or owner[1] != client_id:
            return None
        return self.issue(owner[0], client_id, refresh_token=token)

    def revoke(self, token: str) -> bool:
        """Revoke an access token, or a refresh token and every access token issued from it."""
        with self._lock:
            if self._refresh.pop(token, None) is not None:
                for session in [s for s in self._sessions.values() if s.refresh_token == token]:
                    del self._sessions[session.token]
                return True
            return self._sessions.pop(token, None) is not None

    def validate(self, token: str) -> Session | None:
        """The live session for a token, or None when unknown or expired."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if time.time() >= session.expires_at:
                del self._sessions[token]
                return None
            return session

    def revoke_all(self) -> None:
        """Invalidate every access token (a test forcing re-authentication); refresh tokens stay valid."""
        with self._lock:
            self._sessions.clear()

    def token_response(self, session: Session, instance_url: str) -> dict[str, Any]:
        """The JSON body of a successful token request (section 1.5 of the reference)."""
        identity = f"https://login.salesforce.com/id/{self._org.org_id}/{session.user_id}"
        issued_at = str(int(session.issued_at * 1000))
        client = next((c for c in self._org.clients if c.client_id == session.client_id), None)
        secret = (client.client_secret if client else None) or ""
        # Salesforce signs id + issued_at with the consumer secret, so a client can check the response.
        digest = hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        return {
            "access_token": session.token,
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(digest).decode(),
            "scope": "api",
        }
