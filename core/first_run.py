"""The first admin on a fresh database: `demo`, with a one-time password printed by `make run`."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import func, select

from core.auth import create_user
from core.deps import Dependencies
from core.models import User


def ensure_first_admin(deps: Dependencies, say: Callable[[str], None]) -> bool:
    with deps.sessionmaker() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return False
    password = secrets.token_urlsafe(12)
    create_user(deps, "demo", password, admin=True)
    say("=" * 64)
    say("First run: created the admin user 'demo'.")
    say(f"One-time password: {password}")
    say("Sign in with it, then create accounts with: python -m core.cli create-user NAME [--admin]")
    say("Lost it? Set a new one: python -m core.cli create-user NAME --admin (another admin account).")
    say("=" * 64)
    return True
