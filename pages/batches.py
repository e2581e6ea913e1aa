"""Batches: progress of each batch; with ?id= one batch's jobs, retry failed, cancel the rest, results CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import batches
from core.jobs import list_jobs
from core.models import JOB_STATUSES
from ui.auth import require_actor
from ui.deps import get_dependencies
from ui.widgets import duration_text, guarded, jobs_frame, plain

actor = require_actor()
deps = get_dependencies()
batch_id = st.query_params.get("id")


def eta_text(b: batches.BatchProgress) -> str:
    if not b.active:
        return "done"
    return duration_text(b.eta_seconds) if b.eta_seconds is not None else "—"


def counts_text(b: batches.BatchProgress) -> str:
    return " · ".join(f"{n} {st_}" for st_, n in b.counts.items() if n)


def batch_list() -> None:
    st.title("Batches")
    st.page_link("pages/batch.py", label="New batch", icon=":material/playlist_add:")
    items = guarded(lambda: batches.list_batches(deps, actor))
    if items is None:
        return
    if not items:
        st.info("No batches yet. Upload a file or paste concepts on the New batch page.")
        return
    frame = pd.DataFrame(
        [
            {
                "Name": b.name,
                "Owner": b.owner,
                "Created": b.created_at.strftime("%Y-%m-%d %H:%M"),
                "Progress": b.fraction,
                "Jobs": f"{b.done:,} / {b.total:,}",
                "Status": counts_text(b),
                "Rate / min": b.rate_per_minute or 0.0,
                "Time left": eta_text(b),
                "id": str(b.id),
            }
            for b in items
        ]
    )
    picked = st.dataframe(
        frame.drop(columns=["id"]),
        hide_index=True,
        width="stretch",
        column_config={"Progress": st.column_config.ProgressColumn("Progress", min_value=0, max_value=1)},
        on_select="rerun",
        selection_mode="single-row",
        key="batches.table",
    )
    rows = picked.selection.rows if picked else []
    if rows:
        st.switch_page("pages/batches.py", query_params={"id": frame.iloc[rows[0]]["id"]})
    if any(b.active for b in items):
        st.caption("Updating every 3 s while a batch runs.")


def batch_detail(bid: str) -> None:
    b = guarded(lambda: batches.get_batch(deps, actor, bid))
    if b is None:
        return
    st.title(plain(b.name))
    st.caption(
        f"Owner {b.owner} · created {b.created_at:%Y-%m-%d %H:%M} · {plain(b.source_filename or 'pasted')}"
    )
    left = f"{eta_text(b)} left" if b.active else "all done"
    st.progress(b.fraction, text=f"{b.done:,} of {b.total:,} finished · {left}")
    cols = st.columns(len(JOB_STATUSES) + 1)
    for col, status in zip(cols, JOB_STATUSES, strict=False):
        col.metric(status.capitalize(), f"{b.counts.get(status, 0):,}")
    cols[-1].metric("Per minute", f"{b.rate_per_minute or 0:.1f}")
    left, mid, right = st.columns(3)
    if left.button(
        "Retry all failed", icon=":material/replay:", key="batches.retry", disabled=not b.counts["failed"]
    ):
        done = guarded(lambda: batches.retry_failed_in_batch(deps, actor, b.id))
        if done is not None:
            st.toast(done.message)
            st.rerun()
    if mid.button("Cancel remaining", icon=":material/cancel:", key="batches.cancel", disabled=not b.active):
        done = guarded(lambda: batches.cancel_remaining(deps, actor, b.id))
        if done is not None:
            st.toast(done.message)
            st.rerun()
    data = guarded(lambda: batches.results_csv(deps, actor, b.id))
    if data is not None:
        right.download_button(
            "Download results (CSV)",
            data,
            file_name=f"batch-{str(b.id)[:8]}-results.csv",
            mime="text/csv",
            icon=":material/download:",
            key="batches.download",
        )
    status = st.selectbox("Jobs with status", ["all", *JOB_STATUSES], key="batches.status")
    page = guarded(
        lambda: list_jobs(deps, actor, batch_id=b.id, status=None if status == "all" else status, limit=200)
    )
    if page is not None:
        frame = jobs_frame(page.items)
        st.dataframe(frame.drop(columns=["id"]), hide_index=True, width="stretch")
        st.caption(f"Showing {len(page.items)} job(s), newest first.")
    if st.button("All batches", icon=":material/arrow_back:", key="batches.back"):
        st.query_params.clear()
        st.rerun()


def _active() -> bool:
    if batch_id:
        b = guarded(lambda: batches.get_batch(deps, actor, batch_id))
        return bool(b and b.active)
    return any(b.active for b in (guarded(lambda: batches.list_batches(deps, actor)) or []))


@st.fragment(run_every="3s" if _active() else None)
def live() -> None:
    if batch_id:
        batch_detail(batch_id)
    else:
        batch_list()


live()
