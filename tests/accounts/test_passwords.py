"""Password hashing, account creation and the generic sign-in error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.auth import (
    GENERIC_LOGIN_ERROR,
    authenticate,
    create_user,
    hash_password,
    hasher_for,
    verify_password,
)
from core.deps import build_dependencies
from core.errors import UserError
from core.models import User


def test_hashes_are_argon2_salted_and_verify_only_the_right_password(settings):
    hasher = hasher_for(settings)
    first, second = hash_password("correct-horse", hasher), hash_password("correct-horse", hasher)
    assert first.startswith("$argon2id$") and first != second
    assert "correct-horse" not in first
    assert verify_password(first, "correct-horse")
    assert not verify_password(first, "correct-horsE")
    assert not verify_password("not-a-hash", "correct-horse")
    assert not verify_password(None, "correct-horse")


def test_usernames_are_unique_whatever_their_case(deps):
    create_user(deps, "Alice", "correct-horse")
    with pytest.raises(UserError, match="taken"):
        create_user(deps, "aLICE", "another-password")
    with deps.sessionmaker() as s:
        user = s.scalars(select(User)).one()
    assert (user.username, user.username_key, user.role) == ("Alice", "alice", "analyst")
    assert user.password_hash != "correct-horse" and user.created_at is not None


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [("a", "long-enough", "Usernames"), ("bad name!", "long-enough", "Usernames"), ("bob", "short", "8")],
)
def test_bad_usernames_and_short_passwords_are_refused(deps, name, password, message):
    with pytest.raises(UserError, match=message):
        create_user(deps, name, password)


def test_wrong_password_and_unknown_user_get_the_same_message(deps):
    create_user(deps, "alice", "correct-horse")
    for username, password in (("alice", "wrong-horse"), ("nobody", "correct-horse"), ("", "")):
        with pytest.raises(UserError) as err:
            authenticate(deps, username, password)
        assert err.value.message == GENERIC_LOGIN_ERROR


def test_sign_in_is_case_insensitive_and_records_the_time(deps):
    create_user(deps, "Alice", "correct-horse", admin=True)
    actor = authenticate(deps, "  ALICE ", "correct-horse")
    assert (actor.username, actor.is_admin) == ("Alice", True)
    with deps.sessionmaker() as s:
        assert s.scalars(select(User.last_login_at)).one() is not None


def test_a_deactivated_user_cannot_sign_in(deps):
    actor = create_user(deps, "alice", "correct-horse")
    with deps.sessionmaker.begin() as s:
        s.get(User, actor.id).is_active = False
    with pytest.raises(UserError, match="Wrong username or password"):
        authenticate(deps, "alice", "correct-horse")


def test_a_sign_in_rehashes_a_password_stored_with_older_costs(deps):
    create_user(deps, "alice", "correct-horse")
    stronger = build_dependencies(deps.settings.model_copy(update={"password_hash_time_cost": 2}))
    try:
        authenticate(stronger, "alice", "correct-horse")
    finally:
        stronger.close()
    with deps.sessionmaker() as s:
        stored = s.scalars(select(User.password_hash)).one()
    assert ",t=2," in stored and verify_password(stored, "correct-horse")
