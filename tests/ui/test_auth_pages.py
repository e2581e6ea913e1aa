"""Sign-in, refresh (a new session with the cookie), sign-out, the failed-attempt limit and header mode."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

import ui.auth
from core.models import User, UserSession
from core.sessions import revoke_session, start_session, token_hash
from tests.accounts.helpers import SECRET_CONCEPT, SECRET_LYRICS, SECRET_TITLE, owned_job
from tests.factories import make_user
from ui import state

COOKIE = "songsmith_session"


@pytest.fixture
def browser(monkeypatch):
    """What the browser sends when it opens a session: AppTest cannot seed st.context, so we do."""
    sent = {"cookies": {}, "headers": {}}
    monkeypatch.setattr(ui.auth, "request_cookies", lambda: dict(sent["cookies"]))
    monkeypatch.setattr(ui.auth, "request_headers", lambda: dict(sent["headers"]))
    return sent


def _signed_in_as(at) -> str | None:
    captions = [c.value for c in at.sidebar.caption if c.value.startswith("Signed in as")]
    return captions[0] if captions else None


def rerun_app(at):
    """Run app.py itself again. AppTest (1.67) reruns only the page a multipage run finished on, so
    the sidebar's Sign out would never be seen; a browser always runs app.py first."""
    at._page_hash = at._finished_page_script_hash = ""
    return at.run()


def _sign_in(open_app, username: str, password: str):
    at = open_app()
    at.text_input(key="login.username").input(username)
    at.text_input(key="login.password").input(password)
    at.button[0].click().run()
    assert not at.exception
    return at


def test_sign_in_starts_a_server_session_and_writes_the_cookie(open_app, deps, browser):
    make_user(deps, "alice", password="right-password")
    at = _sign_in(open_app, "alice", "right-password")
    assert _signed_in_as(at) == "Signed in as **alice** (analyst)"
    token = at.session_state[state.SESSION_TOKEN]
    with deps.sessionmaker() as s:
        row = s.scalars(select(UserSession)).one()
    assert row.token_hash == token_hash(token) and row.revoked_at is None
    script = at.session_state[state.COOKIE_SCRIPT]
    assert f"{COOKIE}={token}" in script and "SameSite=Strict" in script and "expires=" in script
    assert "right-password" not in script


def test_a_refresh_restores_the_user_from_the_cookie(open_app, deps, browser):
    make_user(deps, "alice", password="right-password")
    token = _sign_in(open_app, "alice", "right-password").session_state[state.SESSION_TOKEN]
    browser["cookies"] = {COOKIE: token}
    again = open_app()  # a new browser session: nothing in session_state, only the cookie
    assert not again.exception
    assert _signed_in_as(again) == "Signed in as **alice** (analyst)"
    assert not again.text_input


@pytest.mark.parametrize("damage", ["tamper", "expire", "revoke"])
def test_a_bad_cookie_gets_the_sign_in_page_and_is_cleared(open_app, deps, browser, damage):
    alice = make_user(deps)
    token = start_session(deps, alice)
    if damage == "tamper":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif damage == "expire":
        with deps.sessionmaker.begin() as s:
            s.get(UserSession, token_hash(token)).expires_at = deps.clock() - timedelta(minutes=1)
    else:
        revoke_session(deps, token)
    browser["cookies"] = {COOKIE: token}
    at = open_app()
    assert not at.exception
    assert _signed_in_as(at) is None and [b.label for b in at.button] == ["Sign in"]
    assert "max-age=0" in at.session_state[state.COOKIE_SCRIPT]


def test_sign_out_revokes_the_session_so_the_cookie_no_longer_works(open_app, deps, browser):
    make_user(deps, "alice", password="right-password")
    at = _sign_in(open_app, "alice", "right-password")
    token = at.session_state[state.SESSION_TOKEN]
    at.sidebar.button(key="app.logout").click()
    rerun_app(at)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert "max-age=0" in at.session_state[state.COOKIE_SCRIPT]
    with deps.sessionmaker() as s:
        assert s.get(UserSession, token_hash(token)).revoked_at is not None
    browser["cookies"] = {COOKIE: token}
    replay = open_app()
    assert _signed_in_as(replay) is None


def test_a_sign_out_elsewhere_ends_this_session_at_its_next_rerun(open_app, deps, browser):
    make_user(deps, "alice", password="right-password")
    at = _sign_in(open_app, "alice", "right-password")
    revoke_session(deps, at.session_state[state.SESSION_TOKEN])
    rerun_app(at)
    assert not at.exception
    assert _signed_in_as(at) is None


def test_repeated_failures_are_slowed_down_on_the_page(open_app, deps, browser):
    make_user(deps, "alice", password="right-password")
    at = open_app()
    for _ in range(deps.settings.login_max_failures):
        at.text_input(key="login.username").input("alice")
        at.text_input(key="login.password").input("wrong-password")
        at.button[0].click().run()
        assert [e.value for e in at.error] == ["Wrong username or password."]
    at.text_input(key="login.password").input("right-password")
    at.button[0].click().run()
    assert not at.exception
    assert "Too many failed sign-ins" in at.error[0].value
    assert _signed_in_as(at) is None
    assert at.text_input(key="login.username").value == "alice"


def test_header_mode_signs_in_the_proxy_user_and_creates_them(open_app, deps, browser, monkeypatch):
    monkeypatch.setenv("AUTH_MODE", "header")
    browser["headers"] = {"x-forwarded-user": "Dana"}
    at = open_app()
    assert not at.exception
    assert _signed_in_as(at) == "Signed in as **Dana** (analyst)"
    assert not [b for b in at.sidebar.button if b.label == "Sign out"]
    with deps.sessionmaker() as s:
        user = s.scalars(select(User)).one()
        assert s.scalars(select(UserSession)).first() is None, "the proxy owns the session"
    assert (user.username_key, user.role, user.password_hash) == ("dana", "analyst", None)


def test_header_mode_without_the_header_shows_no_password_form(open_app, deps, browser, monkeypatch):
    make_user(deps, "alice", password="right-password")
    monkeypatch.setenv("AUTH_MODE", "header")
    at = open_app()
    assert not at.exception
    assert _signed_in_as(at) is None and not at.text_input
    assert "proxy" in at.error[0].value


def test_password_mode_ignores_the_trusted_header(open_app, deps, browser):
    make_user(deps, "root", admin=True)
    browser["headers"] = {"x-forwarded-user": "root"}
    at = open_app()
    assert _signed_in_as(at) is None and [b.label for b in at.button] == ["Sign in"]


def test_another_users_job_by_url_is_not_found_and_shows_none_of_it(open_app, deps, sim):
    alice, mallory = make_user(deps), make_user(deps, "mallory")
    owned = owned_job(deps, alice)
    at = open_app(mallory, "pages/job.py", query={"id": str(owned.job_id)})
    at.query_params["id"] = str(owned.job_id)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Job not found."]
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.title, *at.text, *at.metric])
    for secret in (SECRET_CONCEPT, SECRET_TITLE, SECRET_LYRICS):
        assert secret not in shown
    assert not at.get("audio") and not at.get("image") and not at.dataframe
