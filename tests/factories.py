"""Plain functions that make committed rows for tests."""

from __future__ import annotations

from core.auth import create_user
from core.deps import Dependencies
from core.users import Actor


def make_user(
    deps: Dependencies, name: str = "alice", *, admin: bool = False, password: str = "correct-horse"
) -> Actor:
    return create_user(deps, name, password, admin=admin)
