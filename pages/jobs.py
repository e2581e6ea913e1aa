"""This user's jobs, newest first, with a status filter and keyset pages; live while any job runs."""

from __future__ import annotations

import streamlit as st

from core.auth import list_users
from core.jobs import list_jobs
from core.models import ACTIVE_STATUSES, JOB_STATUSES
from ui.auth import require_actor
from ui.deps import get_dependencies
from ui.job_actions import bulk_retry, show_jobs_flash
from ui.widgets import guarded, jobs_frame

actor = require_actor()
deps = get_dependencies()
st.title("Jobs")

status = st.selectbox("Status", ["all", *JOB_STATUSES], key="jobs.status")
owner_id: int | None = None
if actor.is_admin:  # admins see everyone's jobs and can narrow them to one user
    owners = {u.id: u.username for u in list_users(deps, actor)}
    owner_id = st.selectbox(
        "Owner", [None, *owners], format_func=lambda i: owners.get(i, "everyone"), key="jobs.owner"
    )
cursors: list[str | None] = st.session_state.setdefault("jobs.cursors", [None])
if st.session_state.get("jobs.last_status") != (status, owner_id):
    cursors[:] = [None]
    st.session_state["jobs.last_status"] = (status, owner_id)


def _page():
    wanted = None if status == "all" else status
    return list_jobs(deps, actor, status=wanted, owner_id=owner_id, cursor=cursors[-1], limit=50)


page = guarded(_page)
running = bool(page and any(j.status in ACTIVE_STATUSES for j in page.items))


show_jobs_flash()
bulk = st.toggle("Select jobs to retry", key="jobs.bulk", help="pick rows, then retry the failed ones")


@st.fragment(run_every="2s" if running else None)
def job_table() -> None:
    current = guarded(_page)
    if current is None:
        return
    if not current.items:
        st.info("No jobs here yet. Submit a concept on the Submit page.")
        return
    frame = jobs_frame(current.items)
    picked = st.dataframe(
        frame.drop(columns=["id"] if not actor.is_admin else ["id"]),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row" if bulk else "single-row",
        key="jobs.table_bulk" if bulk else "jobs.table",
    )
    rows = picked.selection.rows if picked else []
    if bulk:
        bulk_retry(deps, actor, frame, rows)
    elif rows:
        st.switch_page("pages/job.py", query_params={"id": frame.iloc[rows[0]]["id"]})
    if running and not any(j.status in ACTIVE_STATUSES for j in current.items):
        st.rerun()


job_table()
left, right = st.columns(2)
if len(cursors) > 1 and left.button("Newer", key="jobs.prev", icon=":material/chevron_left:"):
    cursors.pop()
    st.rerun()
if page and page.next_cursor and right.button("Older", key="jobs.next", icon=":material/chevron_right:"):
    cursors.append(page.next_cursor)
    st.rerun()
st.caption(f"Page {len(cursors)} · tick the box at the left of a row to open the job")
