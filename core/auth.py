"""Accounts: password hashing (argon2), creating users, signing in (password or trusted header)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from core import login_limits, sessions
from core.config import Settings
from core.deps import Dependencies
from core.errors import UserError
from core.models import User
from core.users import ADMIN, ANALYST, Actor, actor_for, find_user

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
GENERIC_LOGIN_ERROR = "Wrong username or password."


@lru_cache(maxsize=8)
def _hasher(time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hasher_for(settings: Settings) -> PasswordHasher:
    """argon2id with PASSWORD_HASH_* costs (the defaults are argon2-cffi's RFC 9106 profile)."""
    return _hasher(
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or _hasher()).hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Any argon2 hash verifies with the costs recorded in it, whatever the current settings."""
    if not password_hash:
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(deps: Dependencies, username: str, password: str, *, admin: bool = False) -> Actor:
    name = username.strip()
    if not USERNAME.match(name):
        raise UserError("Usernames are 2–64 letters, digits or . _ @ - characters.")
    if len(password) < 8:
        raise UserError("Passwords need at least 8 characters.")
    with deps.sessionmaker.begin() as s:
        if find_user(s, name) is not None:
            raise UserError(f"The username {name!r} is taken.")
        user = User(
            username=name,
            username_key=name.lower(),
            password_hash=hash_password(password, hasher_for(deps.settings)),
            role=ADMIN if admin else ANALYST,
            created_at=deps.clock(),
        )
        s.add(user)
        s.flush()
        return actor_for(user)


def set_password(deps: Dependencies, username: str, password: str) -> Actor:
    """An operator's reset: the new hash replaces the old and every session of the user ends."""
    from core.sessions import revoke_user_sessions

    if len(password) < 8:
        raise UserError("Passwords need at least 8 characters.")
    with deps.sessionmaker.begin() as s:
        user = find_user(s, username.strip())
        if user is None:
            raise UserError(f"No user named {username.strip()!r}.")
        user.password_hash = hash_password(password, hasher_for(deps.settings))
        actor = actor_for(user)
    revoke_user_sessions(deps, actor.id)
    return actor


def authenticate(deps: Dependencies, username: str, password: str) -> Actor:
    """Raises UserError with one generic message whatever was wrong."""
    with deps.sessionmaker.begin() as s:
        user = find_user(s, username or "")
        if user is None or not user.is_active or not verify_password(user.password_hash, password or ""):
            if user is None:  # same cost whether or not the user exists
                hash_password(password or "x", hasher_for(deps.settings))
            raise UserError(GENERIC_LOGIN_ERROR)
        hasher = hasher_for(deps.settings)
        if user.password_hash and hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)  # costs were raised since it was stored
        user.last_login_at = deps.clock()
        return actor_for(user)


@dataclass(frozen=True)
class SignIn:
    actor: Actor
    token: str


def sign_in(deps: Dependencies, username: str, password: str) -> SignIn:
    """Password sign-in behind the failed-attempt limit; returns the session token for the browser."""
    login_limits.check(deps, username)
    try:
        actor = authenticate(deps, username, password)
    except UserError:
        login_limits.record_failure(deps, username)
        raise
    login_limits.clear(deps, username)
    return SignIn(actor=actor, token=sessions.start_session(deps, actor))


def header_sign_in(deps: Dependencies, header_value: str | None) -> Actor:
    """AUTH_MODE=header: the proxy vouches for the user; first sight creates an analyst (no password)."""
    name = (header_value or "").strip()
    if not name:
        raise UserError("No signed-in user was passed by the proxy in front of Songsmith.")
    if not USERNAME.match(name):
        raise UserError("The user name passed by the proxy is not a valid Songsmith username.")
    with deps.sessionmaker.begin() as s:
        user = find_user(s, name)
        if user is None:
            user = User(username=name, username_key=name.lower(), role=ANALYST, created_at=deps.clock())
            s.add(user)
            s.flush()
        if not user.is_active:
            raise UserError("This account is disabled.")
        user.last_login_at = deps.clock()
        return actor_for(user)


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    role: str
    openrouter_model: str | None
    created_at: datetime
    last_login_at: datetime | None


def list_users(deps: Dependencies, actor: Actor) -> list[UserView]:
    """Admins only (the Jobs page's owner filter); everyone else sees just themself."""
    q = select(User).order_by(User.username_key)
    if not actor.is_admin:
        q = q.where(User.id == actor.id)
    with deps.sessionmaker() as s:
        return [
            UserView(u.id, u.username, u.role, u.openrouter_model, u.created_at, u.last_login_at)
            for u in s.scalars(q)
        ]
