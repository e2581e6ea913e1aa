"""One job: status, timeline, options, lyrics, prompt, player, cover and downloads; live while running."""

from __future__ import annotations

import streamlit as st

from core.jobs import get_job, read_artifact
from core.models import ACTIVE_STATUSES
from core.pipeline import STEP_LABELS
from ui.auth import require_actor
from ui.deps import get_dependencies
from ui.job_actions import job_actions, show_flash
from ui.timeline import build_gantt, render_attempts, render_previous_versions
from ui.widgets import duration_text, guarded, plain, status_badge, timeline_frame

actor = require_actor()
deps = get_dependencies()
job_id = st.query_params.get("id", "")
if not job_id:
    st.info("Open a job from the Jobs page.")
    st.page_link("pages/jobs.py", label="Go to Jobs", icon=":material/queue_music:")
    st.stop()

first = guarded(lambda: get_job(deps, actor, job_id))
if first is None:
    st.stop()
st.title(plain(first.title or "Untitled song"))
show_flash()
job_actions(deps, actor, first)


@st.fragment(run_every="2s" if first.status in ACTIVE_STATUSES else None)
def live() -> None:
    job = guarded(lambda: get_job(deps, actor, job_id))
    if job is None:
        return
    status_badge(job.status)
    cols = st.columns(3)
    cols[0].metric("Current step", STEP_LABELS.get(job.current_step or "", "—"))
    cols[1].metric("Attempt", job.attempt)
    cols[2].metric("Duration", duration_text(job.duration_seconds))
    st.caption(f"Model: {plain(job.llm_model)}")
    st.caption(f"Concept: {plain(job.concept)}")
    st.caption(f"Correlation id: `{job.correlation_id}`")
    if job.error_message:
        st.error(f"Failed at **{job.error_step}**: {plain(job.error_message)}")
    st.subheader("Timeline")
    st.dataframe(timeline_frame(job), hide_index=True, width="stretch")
    if job.steps:
        st.plotly_chart(build_gantt(job), key="job.gantt")
    media = st.columns(2)
    if job.chosen_option:
        with media[0].expander("Lyrics", expanded=job.status == "completed"):
            st.text(job.chosen_option.get("lyrics", ""))
    if job.audio:
        data, ctype, name = read_artifact(deps, actor, job.audio.id)
        media[0].audio(data, format=ctype)
        media[0].download_button("Download song", data, file_name=name, mime=ctype, key="job.dl_audio")
    if job.image:
        data, ctype, name = read_artifact(deps, actor, job.image.id)
        media[1].image(data, caption="Cover", width=360)
        media[1].download_button("Download cover", data, file_name=name, mime=ctype, key="job.dl_image")
    st.subheader("Attempts")
    render_attempts(deps, actor, job)
    render_previous_versions(deps, actor, job)
    if first.status in ACTIVE_STATUSES and job.status not in ACTIVE_STATUSES:
        st.rerun()


live()
