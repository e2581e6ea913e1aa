"""Server-side sessions: only the token's hash is stored; tampered, expired and revoked tokens fail."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.auth import sign_in
from core.models import User, UserSession
from core.sessions import (
    resume_session,
    revoke_session,
    revoke_user_sessions,
    start_session,
    token_hash,
)
from tests.factories import make_user


def test_a_session_token_resumes_its_user_and_only_its_hash_is_stored(deps):
    alice = make_user(deps)
    token = start_session(deps, alice)
    assert resume_session(deps, token) == alice
    with deps.sessionmaker() as s:
        row = s.scalars(select(UserSession)).one()
    assert row.token_hash == token_hash(token) and token not in row.token_hash
    hours = (row.expires_at - row.created_at).total_seconds() / 3600
    assert hours == deps.settings.session_ttl_hours


def test_sign_in_returns_a_fresh_token_each_time(deps):
    make_user(deps, "alice", password="right-password")
    first = sign_in(deps, "alice", "right-password")
    second = sign_in(deps, "ALICE", "right-password")
    assert first.token != second.token
    assert resume_session(deps, first.token) == resume_session(deps, second.token) == first.actor


def test_tampered_malformed_and_unknown_tokens_are_refused(deps):
    alice = make_user(deps)
    token = start_session(deps, alice)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, token + "x", token[:-1], "", None, 42, "x" * 43, token_hash(token), " " + token[1:]):
        assert resume_session(deps, bad) is None, bad


def test_an_expired_session_is_refused(deps):
    alice = make_user(deps)
    token = start_session(deps, alice)
    with deps.sessionmaker.begin() as s:
        row = s.get(UserSession, token_hash(token))
        row.expires_at = deps.clock() - timedelta(seconds=1)
    assert resume_session(deps, token) is None


def test_revoking_ends_the_session_at_once_and_only_that_one(deps):
    alice = make_user(deps)
    gone, kept = start_session(deps, alice), start_session(deps, alice)
    assert revoke_session(deps, gone) is True
    assert revoke_session(deps, gone) is False
    assert resume_session(deps, gone) is None
    assert resume_session(deps, kept) == alice


def test_revoking_a_user_ends_all_their_sessions_and_deactivation_does_too(deps):
    alice, bob = make_user(deps), make_user(deps, "bob")
    tokens = [start_session(deps, alice) for _ in range(3)]
    bobs = start_session(deps, bob)
    assert revoke_user_sessions(deps, alice.id) == 3
    assert all(resume_session(deps, t) is None for t in tokens)
    assert resume_session(deps, bobs) == bob
    with deps.sessionmaker.begin() as s:
        s.get(User, bob.id).is_active = False
    assert resume_session(deps, bobs) is None
