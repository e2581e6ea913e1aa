"""Accounts: password hashing (argon2), creating users and checking credentials."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.deps import Dependencies
from core.errors import UserError
from core.models import User
from core.users import ADMIN, ANALYST, Actor, actor_for, find_user

_hasher = PasswordHasher()
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
GENERIC_LOGIN_ERROR = "Wrong username or password."


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
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
            password_hash=hash_password(password),
            role=ADMIN if admin else ANALYST,
            created_at=deps.clock(),
        )
        s.add(user)
        s.flush()
        return actor_for(user)


def authenticate(deps: Dependencies, username: str, password: str) -> Actor:
    """Raises UserError with one generic message whatever was wrong."""
    with deps.sessionmaker.begin() as s:
        user = find_user(s, username or "")
        if user is None or not user.is_active or not verify_password(user.password_hash, password or ""):
            if user is None:
                hash_password(password or "x")  # same cost whether or not the user exists
            raise UserError(GENERIC_LOGIN_ERROR)
        user.last_login_at = deps.clock()
        return actor_for(user)
