"""Session-state keys and typed accessors: ids and primitives only, never ORM objects."""

from __future__ import annotations

import hashlib
import uuid

import streamlit as st

from core.users import Actor

USER_ID = "auth.user_id"
USERNAME = "auth.username"
ROLE = "auth.role"
SESSION_TOKEN = "auth.session_token"  # the browser session token (hashed server-side)
COOKIE_SCRIPT = "auth.cookie_script"  # the set/clear-cookie snippet this session renders
SUBMIT_TOKEN = "submit.token"
LAST_JOB = "submit.last_job"
JOB_FLASH = "job.flash"
JOBS_FLASH = "jobs.flash"


def current_actor() -> Actor | None:
    uid = st.session_state.get(USER_ID)
    if uid is None:
        return None
    return Actor(
        id=int(uid), username=str(st.session_state.get(USERNAME, "")), role=str(st.session_state.get(ROLE))
    )


def set_actor(actor: Actor | None) -> None:
    if actor is None:
        for key in (USER_ID, USERNAME, ROLE):
            st.session_state.pop(key, None)
        return
    st.session_state[USER_ID] = actor.id
    st.session_state[USERNAME] = actor.username
    st.session_state[ROLE] = actor.role


def form_token(key: str) -> str:
    """One idempotency token per form, rotated after a successful submit."""
    if key not in st.session_state:
        st.session_state[key] = uuid.uuid4().hex
    return str(st.session_state[key])


def submission_key(key: str, text: str) -> str:
    """The idempotency key of one submission: this form's token plus a digest of what was typed."""
    digest = hashlib.sha256(text.strip().encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"{form_token(key)[:32]}:{digest}"


def rotate_token(key: str) -> None:
    st.session_state[key] = uuid.uuid4().hex
