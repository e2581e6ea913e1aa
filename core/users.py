"""Who is acting: the Actor passed to every service, and the default LLM model lookup."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import NotFound
from core.models import AppSetting, User

T = TypeVar("T")

DEFAULT_MODEL_KEY = "default_openrouter_model"
ADMIN, ANALYST = "admin", "analyst"


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    role: str = ANALYST

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def load_owned(s: Session, actor: Actor, model: type[T], obj_id: uuid.UUID | str, what: str) -> T:
    """The one owner check: another user's object and a missing one look the same (NotFound)."""
    try:
        key = obj_id if isinstance(obj_id, uuid.UUID) else uuid.UUID(str(obj_id))
    except ValueError:
        raise NotFound(what) from None
    obj = s.get(model, key)
    if obj is None or (obj.user_id != actor.id and not actor.is_admin):  # type: ignore[attr-defined]
        raise NotFound(what)
    return obj


def actor_for(user: User) -> Actor:
    return Actor(id=user.id, username=user.username, role=user.role)


def default_model(s: Session, settings: Settings) -> str:
    row = s.get(AppSetting, DEFAULT_MODEL_KEY)
    return row.value if row else settings.openrouter_default_model


def model_for(s: Session, settings: Settings, user_id: int) -> str:
    """The model a new job of this user records: their choice, else the admin default."""
    user = s.get(User, user_id)
    if user is not None and user.openrouter_model:
        return user.openrouter_model
    return default_model(s, settings)


def find_user(s: Session, username: str) -> User | None:
    return s.scalars(select(User).where(User.username_key == username.strip().lower())).first()


def ensure_user(s: Session, username: str, *, role: str = ANALYST) -> User:
    """Used by the CLI and tests; accounts with passwords are made through core.auth."""
    user = find_user(s, username)
    if user is None:
        user = User(
            username=username.strip(),
            username_key=username.strip().lower(),
            role=role,
            created_at=datetime.now(UTC),
        )
        s.add(user)
        s.flush()
    return user
