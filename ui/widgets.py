"""Shared renderers: status badges, the step timeline, the friendly error box."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from core.errors import UserError
from core.logs import get_logger
from core.views import JobDetail, JobSummary

log = get_logger("songsmith.ui")
T = TypeVar("T")

STATUS_ICONS = {
    "pending": ":material/schedule:",
    "running": ":material/progress_activity:",
    "completed": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}
STATUS_COLORS = {
    "pending": "gray",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "orange",
}


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$=])")


def plain(text: object) -> str:
    """User or model text placed inside markdown (titles, captions, alerts): every markdown and HTML
    metacharacter is escaped, so a concept or an LLM reply cannot become a link, an image, a heading,
    a formula or markup. Streamlit never renders raw HTML here (no unsafe_allow_html anywhere)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


def guarded(fn: Callable[[], T]) -> T | None:
    """Run a core call: UserError → its message; anything else → a generic message, logged, no traceback."""
    try:
        return fn()
    except UserError as exc:
        st.error(exc.message)
    except Exception:
        log.exception("ui_error")
        st.error("Something went wrong on our side. Try again in a moment.")
    return None


def status_badge(status: str) -> None:
    st.badge(status.capitalize(), icon=STATUS_ICONS.get(status), color=STATUS_COLORS.get(status, "gray"))


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def jobs_frame(items: list[JobSummary]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Created": j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "Status": j.status,
                "Step": j.current_step or j.error_step or "",
                "Title": j.title or "",
                "Concept": j.concept[:120],
                "Duration": duration_text(j.duration_seconds),
                "Owner": j.owner,
                "id": str(j.id),
            }
            for j in items
        ],
        columns=["Created", "Status", "Step", "Title", "Concept", "Duration", "Owner", "id"],
    )


def timeline_frame(job: JobDetail) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Attempt": r.attempt,
                "Step": r.label,
                "Status": r.status,
                "Service": " · ".join(x for x in (r.service, r.model) if x),
                "Started": r.started_at.strftime("%H:%M:%S"),
                "Duration": duration_text(r.duration_seconds),
                "Remote task": r.remote_task_id or "",
                "Note": r.message or "",
            }
            for r in job.steps
        ],
        columns=["Attempt", "Step", "Status", "Service", "Started", "Duration", "Remote task", "Note"],
    )


def options_frame(job: JobDetail) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for i, opt in enumerate(job.song_options or []):
        rows.append(
            {
                "Chosen": "✓" if i == job.chosen_index else "",
                "Title": opt.get("title", ""),
                "Style": opt.get("style", ""),
                "Lyrics": str(opt.get("lyrics", ""))[:80],
            }
        )
    return pd.DataFrame(rows, columns=["Chosen", "Title", "Style", "Lyrics"])
