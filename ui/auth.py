"""Sign-in, sign-out and the gate in front of every page; a browser refresh keeps the user signed in.

Streamlit cannot set cookies from Python, so after a password sign-in the app renders a tiny
same-origin component whose script writes `songsmith_session=<token>` (path=/, SameSite=Strict,
absolute expiry, Secure when SESSION_COOKIE_SECURE). A new browser session (a refresh, a new tab)
sends it on the websocket handshake; `st.context.cookies` reads it and `core.sessions.resume_session`
accepts it only if its sha256 is a known, unexpired, unrevoked session of an active user. The token
is re-checked on every rerun, so a sign-out elsewhere ends this session too. Sign-out revokes the row
first (that is what makes the token worthless) and then clears the cookie.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import streamlit as st

from core.auth import header_sign_in, sign_in
from core.config import Settings, load_settings
from core.errors import UserError
from core.sessions import resume_session, revoke_session
from core.users import Actor
from ui import state
from ui.deps import get_dependencies

HEADER_ERROR = "auth.header_error"
_SCRIPT_SAFE = {ord(c): f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"}


def _plain(values: object, *, lower: bool = False) -> dict[str, str]:
    # Only real string pairs: under AppTest the session client is a stand-in without a request.
    if not isinstance(values, Mapping):
        return {}
    pairs = [(k, v) for k, v in values.items() if isinstance(k, str) and isinstance(v, str)]
    return {(k.lower() if lower else k): v for k, v in pairs}


def request_cookies() -> Mapping[str, str]:
    """The cookies of the request that opened this browser session (AppTest cannot seed these)."""
    return _plain(st.context.cookies)


def request_headers() -> Mapping[str, str]:
    """Request headers, keys lower-cased (HTTP header names are case-insensitive)."""
    return _plain(st.context.headers, lower=True)


def _cookie_script(name: str, value: str, expires: datetime | None, *, secure: bool) -> str:
    parts = [f"{name}={value}", "path=/", "SameSite=Strict"]
    if expires is None:
        parts.append("max-age=0")
    else:
        parts.append(f"expires={format_datetime(expires.astimezone(UTC), usegmt=True)}")
    if secure:
        parts.append("Secure")
    # A JS string literal that cannot end the <script> element or the string, whatever the value holds.
    cookie = json.dumps("; ".join(parts)).translate(_SCRIPT_SAFE)
    # The component iframe is same-origin (srcdoc + allow-same-origin), so both documents share cookies.
    return (
        "<script>try { window.parent.document.cookie = "
        f"{cookie}; }} catch (e) {{ document.cookie = {cookie}; }}</script>"
    )


def render_cookie() -> None:
    """app.py calls this on every run; the same snippet each rerun, so the browser keeps one iframe."""
    script = st.session_state.get(state.COOKIE_SCRIPT)
    if script:
        with st.sidebar:
            st.iframe(script, height=1)


def _forget(clear_cookie: bool) -> None:
    state.set_actor(None)
    st.session_state.pop(state.SESSION_TOKEN, None)
    if clear_cookie:
        settings = _settings()
        st.session_state[state.COOKIE_SCRIPT] = _cookie_script(
            settings.session_cookie_name, "", None, secure=settings.session_cookie_secure
        )


def _header_user() -> Actor | None:
    deps = get_dependencies()
    try:
        actor = header_sign_in(deps, request_headers().get(deps.settings.auth_header.lower()))
    except UserError as exc:
        state.set_actor(None)
        st.session_state[HEADER_ERROR] = exc.message
        return None
    st.session_state.pop(HEADER_ERROR, None)
    state.set_actor(actor)
    return actor


def _settings() -> Settings:
    # Cheap (no connections): an anonymous first page load should not wait for the Dependencies.
    return load_settings()


def current_user() -> Actor | None:
    """The signed-in actor for this run, restoring it from the session cookie after a refresh."""
    settings = _settings()
    if settings.auth_mode == "header":
        return _header_user()
    actor = state.current_actor()
    token = st.session_state.get(state.SESSION_TOKEN)
    if actor is not None:
        if token is None:  # seeded by server code only (tests); a browser cannot write session_state
            return actor
        deps = get_dependencies()
        again = resume_session(deps, token)
        if again is not None and again.id == actor.id:
            state.set_actor(again)  # picks up a role change
            return again
        _forget(clear_cookie=True)  # revoked (signed out elsewhere), expired or deactivated
        return None
    cookie = request_cookies().get(settings.session_cookie_name)
    if not cookie:
        return None
    restored = resume_session(get_dependencies(), cookie)
    if restored is None:
        _forget(clear_cookie=True)  # tampered, expired or revoked: drop it from the browser
        return None
    state.set_actor(restored)
    st.session_state[state.SESSION_TOKEN] = cookie
    return restored


def login_page() -> None:
    st.title("Songsmith")
    if _settings().auth_mode == "header":
        st.error(st.session_state.get(HEADER_ERROR) or "You are not signed in.")
        st.caption("This deployment signs you in through its proxy; reload the page after signing in there.")
        return
    st.caption("Sign in to turn concepts into finished songs with cover art.")
    with st.form("login.form"):
        username = st.text_input("Username", key="login.username")
        password = st.text_input("Password", type="password", key="login.password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        deps = get_dependencies()
        try:
            result = sign_in(deps, username, password)
        except UserError as exc:
            st.error(exc.message)
            return
        settings = deps.settings
        state.set_actor(result.actor)
        st.session_state[state.SESSION_TOKEN] = result.token
        expires = datetime.now(UTC) + timedelta(hours=settings.session_ttl_hours)
        st.session_state[state.COOKIE_SCRIPT] = _cookie_script(
            settings.session_cookie_name, result.token, expires, secure=settings.session_cookie_secure
        )
        st.rerun()


def sign_out_control(actor: Actor) -> None:
    """The sidebar's account line and Sign out (none in header mode: the proxy owns the session)."""
    st.caption(f"Signed in as **{actor.username}** ({actor.role})")
    if _settings().auth_mode == "header":
        st.caption("Signed in by your organisation's proxy.")
        return
    if st.button("Sign out", key="app.logout", icon=":material/logout:"):
        logout()


def logout() -> None:
    revoke_session(get_dependencies(), st.session_state.get(state.SESSION_TOKEN))
    _forget(clear_cookie=True)
    st.rerun()


def require_actor() -> Actor:
    """Pages call this first; app.py only routes signed-in sessions to them, so this is a second lock."""
    actor = state.current_actor()
    if actor is None:
        st.warning("Please sign in.")
        st.stop()
    return actor
