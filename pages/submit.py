"""Submit one concept: validated in core, idempotent on a per-form token."""

from __future__ import annotations

import streamlit as st

from core.jobs import submit_job
from ui import state
from ui.auth import require_actor
from ui.deps import get_dependencies
from ui.widgets import guarded

actor = require_actor()
deps = get_dependencies()
st.title("New song")
st.caption("Describe the song you want: genre, mood, instruments, story. We write, sing and illustrate it.")

with st.form("submit.form"):
    concept = st.text_area(
        "Concept",
        key="submit.concept",
        height=140,
        max_chars=deps.settings.concept_max_chars,
        placeholder="A rainy-night jazz ballad about a lighthouse keeper",
    )
    clicked = st.form_submit_button("Create song", type="primary", icon=":material/music_note:")

if clicked:
    # The key joins the form's token with the text: a double click (or a rerun) of the same text
    # returns the same job; new text makes a new job; "Make another version" rotates the token.
    key = state.submission_key(state.SUBMIT_TOKEN, concept or "")
    job = guarded(lambda: submit_job(deps, actor, concept, idempotency_key=key))
    if job is not None:
        fresh = st.session_state.get(state.LAST_JOB) != str(job.id)
        st.session_state[state.LAST_JOB] = str(job.id)
        st.success(f"Job created: {job.id}" if fresh else f"Already created from this text: {job.id}")

last = st.session_state.get(state.LAST_JOB)
if last:
    st.page_link(
        "pages/job.py",
        label="Open the job you just created",
        icon=":material/open_in_new:",
        query_params={"id": last},
    )
    if st.button("Make another version of the same text", key="submit.another", icon=":material/refresh:"):
        state.rotate_token(state.SUBMIT_TOKEN)
        st.session_state.pop(state.LAST_JOB, None)
        st.rerun()
