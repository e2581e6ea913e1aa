"""Server-side login sessions: the browser holds a random token, the database only its sha256 hash."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import update

from core.deps import Dependencies
from core.models import User, UserSession
from core.users import Actor, actor_for

# token_urlsafe(32) gives 43 URL-safe characters; anything else is refused before any lookup.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(deps: Dependencies, actor: Actor) -> str:
    """A new session for a signed-in user; returns the token for the browser (never stored)."""
    token = secrets.token_urlsafe(32)
    now = deps.clock()
    with deps.sessionmaker.begin() as s:
        s.add(
            UserSession(
                token_hash=token_hash(token),
                user_id=actor.id,
                created_at=now,
                expires_at=now + timedelta(hours=deps.settings.session_ttl_hours),
            )
        )
    return token


def resume_session(deps: Dependencies, token: str | None) -> Actor | None:
    """The actor behind a browser token, or None if it is malformed, unknown, expired, revoked or the
    user was deactivated. Callers treat every None the same way (show the sign-in page)."""
    if not isinstance(token, str) or not TOKEN_SHAPE.match(token):
        return None
    with deps.sessionmaker() as s:
        row = s.get(UserSession, token_hash(token))
        if row is None or row.revoked_at is not None or row.expires_at <= deps.clock():
            return None
        user = s.get(User, row.user_id)
        if user is None or not user.is_active:
            return None
        return actor_for(user)


def revoke_session(deps: Dependencies, token: str | None) -> bool:
    """Sign-out: the token stops working at once, whatever the browser keeps. True if one was revoked."""
    if not isinstance(token, str) or not TOKEN_SHAPE.match(token):
        return False
    with deps.sessionmaker.begin() as s:
        result = s.execute(
            update(UserSession)
            .where(UserSession.token_hash == token_hash(token), UserSession.revoked_at.is_(None))
            .values(revoked_at=deps.clock())
        )
        return bool(result.rowcount)


def revoke_user_sessions(deps: Dependencies, user_id: int) -> int:
    """Every open session of one user (for example after a password change or deactivation)."""
    with deps.sessionmaker.begin() as s:
        result = s.execute(
            update(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=deps.clock())
        )
        return int(result.rowcount)
