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
    token = state.form_token(state.SUBMIT_TOKEN)
    job = guarded(lambda: submit_job(deps, actor, concept, idempotency_key=token))
    if job is not None:
        state.rotate_token(state.SUBMIT_TOKEN)
        st.session_state[state.LAST_JOB] = str(job.id)
        st.success(f"Job created: {job.id}")

last = st.session_state.get(state.LAST_JOB)
if last:
    st.page_link(
        "pages/job.py",
        label="Open the job you just created",
        icon=":material/open_in_new:",
        query_params={"id": last},
    )
