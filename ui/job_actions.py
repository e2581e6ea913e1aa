"""Action buttons: retry (from the failed step or the start), cancel, regenerate; the Jobs bulk retry."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.deps import Dependencies
from core.lifecycle import cancel_job, regenerate_job, retry_job, retry_many
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


def bulk_retry(deps: Dependencies, actor: Actor, frame: pd.DataFrame, rows: list[int]) -> None:
    """The Jobs page's "Retry selected failed" bar under a multi-row selection."""
    picked = frame.iloc[rows] if rows else frame.iloc[0:0]
    retryable = picked[picked["Status"].isin([FAILED, CANCELLED])]
    left, right = st.columns([1, 2])
    from_start = right.checkbox("From the start", key="jobs.bulk_from_start")
    label = f"Retry selected failed ({len(retryable)})"
    if left.button(label, icon=":material/replay:", disabled=retryable.empty, key="jobs.bulk_retry"):
        result = guarded(lambda: retry_many(deps, actor, list(retryable["id"]), from_start=from_start))
        if result is not None:
            lines = [f"{len(result.retried)} job(s) retried.", *result.messages]
            st.session_state[state.JOBS_FLASH] = "  \n".join(lines)
            st.rerun()
    if len(picked) > len(retryable):
        st.caption(f"{len(picked) - len(retryable)} selected job(s) are not failed or cancelled; skipped.")


def show_jobs_flash() -> None:
    message = st.session_state.pop(state.JOBS_FLASH, None)
    if message:
        st.success(message)
