"""Session: a logged-out, expired, revoked or tampered session reaches no page, only the sign-in page.

Every page app.py's navigation lists is tried in turn (found by parsing app.py, so a new page is
covered the day it lands). The browser's cookie is injected the way tests/ui/test_auth_pages.py does.
"""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.auth
from core.models import UserSession
from core.sessions import resume_session, revoke_session, start_session, token_hash
from tests.factories import make_user
from ui import state

APP = Path(__file__).resolve().parents[2] / "app.py"
COOKIE = "songsmith_session"


def app_pages() -> list[str]:
    pages = []
    for node in ast.walk(ast.parse(APP.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Page" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                pages.append(arg.value)
    return pages


PAGES = app_pages()


@pytest.fixture
def browser(monkeypatch):
    sent: dict = {"cookies": {}}
    monkeypatch.setattr(ui.auth, "request_cookies", lambda: dict(sent["cookies"]))
    monkeypatch.setattr(ui.auth, "request_headers", lambda: {})
    return sent


def _bad_token(deps, kind: str) -> str | None:
    if kind == "none":
        return None
    token = start_session(deps, make_user(deps, "alice"))
    if kind == "expired":
        with deps.sessionmaker.begin() as s:
            s.get(UserSession, token_hash(token)).expires_at = deps.clock() - timedelta(seconds=1)
    elif kind == "revoked":
        revoke_session(deps, token)
    elif kind == "tampered":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    return token


def _only_sign_in(at) -> bool:
    captions = [c.value for c in at.sidebar.caption]
    return (
        not at.exception
        and [t.value for t in at.title] == ["Songsmith"]
        and [b.label for b in at.button] == ["Sign in"]
        and not any(c.startswith("Signed in as") for c in captions)
    )


def test_the_page_list_is_read_from_app_py():
    assert len(PAGES) >= 7 and "pages/job.py" in PAGES and "pages/settings.py" in PAGES


@pytest.mark.parametrize("kind", ["none", "expired", "revoked", "tampered"])
def test_no_page_is_reachable_without_a_live_session(deps, open_app, browser, hostile, kind):
    token = _bad_token(deps, kind)
    if token:
        browser["cookies"] = {COOKIE: token}
    for page in PAGES:
        at = open_app(None, query={"id": "00000000-0000-0000-0000-000000000000"})
        hostile.held(f"{kind} session: only the sign-in page renders", _only_sign_in(at))
        try:
            at.switch_page(page)
        except ValueError as exc:  # AppTest: the page is not registered for this session
            hostile.held(f"{kind} session → {page}", "Known pages: ['Sign in']" in str(exc))
        else:
            at.run()
            hostile.held(f"{kind} session → {page} rendered", _only_sign_in(at))
        assert state.USER_ID not in at.session_state


@pytest.mark.parametrize("page", PAGES)
def test_each_page_run_on_its_own_still_demands_a_user(deps, open_app, hostile, page):
    """The second lock (require_actor): even run without app.py's gate a page shows nothing."""
    at = AppTest.from_file(str(APP.parent / page), default_timeout=30)
    at.query_params["id"] = "00000000-0000-0000-0000-000000000000"
    at.run()
    shown = [t.value for t in at.title] + [c.value for c in at.caption] + [m.value for m in at.markdown]
    ok = not at.exception and [w.value for w in at.warning] == ["Please sign in."] and not shown
    hostile.held(f"{page} run directly without a user", ok and not at.dataframe and not at.button)


def test_a_revoked_token_in_session_state_is_dropped_on_the_next_run(deps, open_app, browser, hostile):
    alice = make_user(deps, "alice")
    token = start_session(deps, alice)
    at = open_app(alice)
    at.session_state[state.SESSION_TOKEN] = token
    at.run()
    assert not at.exception and state.USER_ID in at.session_state
    revoke_session(deps, token)
    at._page_hash = at._finished_page_script_hash = ""  # run app.py itself, as a browser rerun does
    at.run()
    hostile.held(
        "revoked token in a live session", _only_sign_in(at) and state.USER_ID not in at.session_state
    )


def _tampered(token: str) -> list[str]:
    return [
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token[1:] + "A",
        token[:-1],
        token + "A",
        token.upper() if token.upper() != token else token.lower(),
        token_hash(token),  # the stored hash itself is not a token
        token[:20] + "\x00" + token[21:],
        token[:20] + "é" + token[21:],
        "' OR '1'='1' --" + "A" * 28,
        "A" * 43,
        "",
        " " + token,
        token + "\n",
    ]


def test_tampered_tokens_are_refused_by_core_sessions(deps, hostile):
    alice = make_user(deps, "alice")
    token = start_session(deps, alice)
    assert resume_session(deps, token) == alice  # the control: the real one works
    for bad in [*_tampered(token), None, 12345, b"bytes"]:
        hostile.held(f"resume with {bad!r}", resume_session(deps, bad) is None)  # type: ignore[arg-type]
        hostile.held(f"revoke with {bad!r}", revoke_session(deps, bad) is False)  # type: ignore[arg-type]
    assert resume_session(deps, token) == alice  # none of the attempts revoked the real session


def test_tampered_cookies_are_refused_through_ui_auth(deps, open_app, browser, hostile):
    token = start_session(deps, make_user(deps, "alice"))
    for bad in _tampered(token)[:6]:
        browser["cookies"] = {COOKIE: bad}
        at = open_app(None)
        hostile.held(
            f"cookie {bad[:12]!r}…",
            _only_sign_in(at) and "max-age=0" in at.session_state[state.COOKIE_SCRIPT],
        )
    browser["cookies"] = {COOKIE: token}
    assert not _only_sign_in(open_app(None))  # the control: the genuine cookie signs in
