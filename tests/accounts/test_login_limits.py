"""Repeated failed sign-ins for one username are slowed down, in Redis, without revealing accounts."""

from __future__ import annotations

import time

import pytest

from core.auth import GENERIC_LOGIN_ERROR, sign_in
from core.deps import build_dependencies
from core.errors import UserError
from core.login_limits import TooManyAttempts
from tests.factories import make_user


def _fail(deps, username: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(UserError) as err:
            sign_in(deps, username, "wrong-password")
        assert err.value.message == GENERIC_LOGIN_ERROR


def test_after_the_allowed_failures_even_the_right_password_must_wait(deps):
    make_user(deps, "alice", password="right-password")
    _fail(deps, "alice", deps.settings.login_max_failures)
    with pytest.raises(TooManyAttempts) as err:
        sign_in(deps, "ALICE", "right-password")
    assert 1 <= err.value.wait_seconds <= deps.settings.login_failure_window_seconds
    assert f"wait {err.value.wait_seconds} s" in err.value.message.lower()
    assert any(b"login-failures" in k for k in deps.redis.keys(f"{deps.settings.queue_prefix}*"))


def test_the_limit_is_per_username_and_unknown_names_look_the_same(deps):
    make_user(deps, "alice", password="right-password")
    make_user(deps, "bob", password="bobs-password")
    _fail(deps, "nobody", deps.settings.login_max_failures)
    with pytest.raises(TooManyAttempts):
        sign_in(deps, "nobody", "whatever")
    _fail(deps, "alice", deps.settings.login_max_failures)
    with pytest.raises(TooManyAttempts) as known:
        sign_in(deps, "alice", "right-password")
    assert known.value.message.split("Wait")[0] == "Too many failed sign-ins for this username. "
    assert sign_in(deps, "bob", "bobs-password").actor.username == "bob"


def test_a_success_resets_the_count(deps):
    make_user(deps, "alice", password="right-password")
    _fail(deps, "alice", deps.settings.login_max_failures - 1)
    sign_in(deps, "alice", "right-password")
    _fail(deps, "alice", deps.settings.login_max_failures - 1)
    assert sign_in(deps, "alice", "right-password").actor.username == "alice"


def test_the_window_moves_on(settings):
    deps = build_dependencies(
        settings.model_copy(update={"login_max_failures": 2, "login_failure_window_seconds": 1})
    )
    try:
        deps.redis.flushdb()
        make_user(deps, "alice", password="right-password")
        _fail(deps, "alice", 2)
        with pytest.raises(TooManyAttempts):
            sign_in(deps, "alice", "right-password")
        time.sleep(1.1)
        assert sign_in(deps, "alice", "right-password").actor.username == "alice"
    finally:
        deps.redis.flushdb()
        deps.close()
