"""The first admin on a fresh database: `demo`, with a generated password printed once by `make run`."""

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
    say(f"Password (shown only now): {password}")
    say("Sign in with it, then create accounts with: .venv/bin/python -m core.cli create-user NAME [--admin]")
    say("Lost it, or want your own? .venv/bin/python -m core.cli set-password demo")
    say("=" * 64)
    return True
