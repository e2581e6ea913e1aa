"""Login and logout: the gate in front of every page."""

from __future__ import annotations

import streamlit as st

from core.auth import authenticate
from core.errors import UserError
from core.users import Actor
from ui import state
from ui.deps import get_dependencies


def login_page() -> None:
    st.title("Songsmith")
    st.caption("Sign in to turn concepts into finished songs with cover art.")
    with st.form("login.form"):
        username = st.text_input("Username", key="login.username")
        password = st.text_input("Password", type="password", key="login.password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            actor = authenticate(get_dependencies(), username, password)
        except UserError as exc:
            st.error(exc.message)
            return
        state.set_actor(actor)
        st.rerun()


def logout() -> None:
    state.set_actor(None)
    st.rerun()


def require_actor() -> Actor:
    """Pages call this first; app.py only routes logged-in sessions to them, so this is a second lock."""
    actor = state.current_actor()
    if actor is None:
        st.warning("Please sign in.")
        st.stop()
    return actor
