"""Job detail's action buttons: retry (from the failed step or the start), cancel, regenerate."""

from __future__ import annotations

import streamlit as st

from core.deps import Dependencies
from core.lifecycle import cancel_job, regenerate_job, retry_job
from core.models import ACTIVE_STATUSES, CANCELLED, COMPLETED, FAILED
from core.pipeline import STEP_LABELS
from core.users import Actor
from core.views import JobSummary
from ui import state
from ui.widgets import guarded

FROM_STEP, FROM_START = "step", "start"


def _done(message: str | None, ok: bool = True) -> None:
    """Keep the message across the rerun that shows the job's new state."""
    if message:
        st.session_state[state.JOB_FLASH] = (message, ok)
        st.rerun()


def show_flash() -> None:
    flash = st.session_state.pop(state.JOB_FLASH, None)
    if flash:
        (st.success if flash[1] else st.info)(flash[0])


def job_actions(deps: Dependencies, actor: Actor, job: JobSummary) -> None:
    """The buttons carry the attempt shown, so two tabs clicking Retry make one new attempt."""
    if job.status in (FAILED, CANCELLED):
        step = job.error_step or job.current_step
        where = STEP_LABELS.get(step or "", "the first step")
        with st.form("job.retry_form", border=False):
            choice = st.radio(
                "Retry",
                [FROM_STEP, FROM_START],
                format_func=lambda c: (
                    f"From the failed step ({where})" if c == FROM_STEP else "From the start"
                ),
                key="job.retry_from",
                horizontal=True,
            )
            if st.form_submit_button("Retry", icon=":material/replay:", type="primary"):
                got = guarded(
                    lambda: retry_job(
                        deps, actor, job.id, from_start=choice == FROM_START, seen_attempt=job.attempt
                    )
                )
                if got is not None:
                    _done(got.message, got.retried)
    elif job.status in ACTIVE_STATUSES:
        if st.button("Cancel job", icon=":material/cancel:", key="job.cancel"):
            _done(guarded(lambda: cancel_job(deps, actor, job.id)))
    elif job.status == COMPLETED:
        left, right = st.columns(2)
        for col, step, label in ((left, "render_audio", "song"), (right, "render_cover", "cover")):
            if col.button(f"Regenerate {label}", icon=":material/autorenew:", key=f"job.regen_{label}"):
                got = guarded(
                    lambda step=step: regenerate_job(
                        deps, actor, job.id, from_step=step, seen_attempt=job.attempt
                    )
                )
                if got is not None:
                    _done(got.message, got.retried)
        st.caption("Regenerating the song also makes a new cover for it; earlier files stay as versions.")
