"""Job detail's timeline: attempts, their steps with inputs and outputs, retries, errors; a Gantt chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.deps import Dependencies
from core.jobs import read_artifact
from core.users import Actor
from core.views import ArtifactView, EventView, JobDetail, StepRun
from ui.widgets import duration_text, plain

# Steps whose service line names the model too; the cover is "NanoBanana" on its own.
MODEL_SHOWN = {"write_options", "render_audio", "write_image_prompt"}
HOVER = "%{y}<br>%{customdata[0]} · %{customdata[1]}<br>%{customdata[2]}<extra></extra>"
STATUS_MARKS = {"succeeded": "✅", "failed": "❌", "running": "⏳", "cancelled": "⛔"}


def service_text(run: StepRun) -> str:
    """ "OpenRouter · <model>", "Suno · <version>", "NanoBanana"; "Songsmith" for in-house steps."""
    if not run.service:
        return "—"
    if run.model and run.step in MODEL_SHOWN:
        return f"{run.service} · {run.model}"
    return run.service


def build_gantt(job: JobDetail, *, now: datetime | None = None) -> go.Figure:
    """One horizontal bar per step run, coloured by attempt; a run still going ends at `now`."""
    end_of_open = now or datetime.now(UTC)
    fig = go.Figure()
    for attempt in sorted({r.attempt for r in job.steps}):
        runs = [r for r in job.steps if r.attempt == attempt]
        ends = [r.finished_at or end_of_open for r in runs]
        fig.add_trace(
            go.Bar(
                name=f"Attempt {attempt}",
                orientation="h",
                y=[r.label for r in runs],
                base=[r.started_at for r in runs],
                x=[
                    (end - r.started_at) / timedelta(milliseconds=1)
                    for r, end in zip(runs, ends, strict=True)
                ],
                customdata=[[r.status, duration_text(r.duration_seconds), service_text(r)] for r in runs],
                hovertemplate=HOVER,
            )
        )
    fig.update_layout(
        barmode="overlay",
        height=120 + 32 * len({r.label for r in job.steps}),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title="Step durations across attempts",
        legend_title_text="",
    )
    fig.update_xaxes(type="date", title_text="")
    fig.update_yaxes(autorange="reversed", title_text="")
    return fig


def group_by_attempt(job: JobDetail) -> dict[int, list[EventView | StepRun]]:
    """Each attempt's events in the order they were written; step rows become their StepRun."""
    runs = iter(job.steps)  # job.steps are the kind=step events in the same id order
    grouped: dict[int, list[EventView | StepRun]] = {}
    for event in job.events:
        item: EventView | StepRun = next(runs) if event.kind == "step" else event
        grouped.setdefault(event.attempt, []).append(item)
    return grouped


def _latest_output(job: JobDetail, step: str, attempt: int) -> dict[str, Any]:
    done = [r for r in job.steps if r.step == step and r.attempt <= attempt and r.status == "succeeded"]
    return (done[-1].output or {}) if done else {}


def _chosen(job: JobDetail, attempt: int) -> tuple[int | None, dict[str, Any]]:
    options = _latest_output(job, "write_options", attempt).get("options") or job.song_options or []
    index = _latest_output(job, "choose_option", attempt).get("chosen_index", job.chosen_index)
    if index is not None and 0 <= index < len(options):
        return index, options[index]
    return index, job.chosen_option or {}


def options_table(options: list[dict[str, Any]], chosen: int | None) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Chosen": "✓" if i == chosen else "",
                "Title": o.get("title", ""),
                "Style": o.get("style", ""),
                "Lyrics": str(o.get("lyrics", ""))[:80],
            }
            for i, o in enumerate(options)
        ],
        columns=["Chosen", "Title", "Style", "Lyrics"],
    )


def _artifacts(job: JobDetail) -> dict[str, ArtifactView]:
    return {a.path: a for a in (job.audio, job.image, *job.previous_artifacts) if a is not None}


def show_artifact(deps: Dependencies, actor: Actor, art: ArtifactView, *, where: str) -> None:
    data, ctype, name = read_artifact(deps, actor, art.id)
    if art.kind == "audio":
        st.audio(data, format=ctype)
    else:
        st.image(data, caption=f"Cover v{art.version}", width=320)
    label = f"Download {'song' if art.kind == 'audio' else 'cover'} v{art.version}"
    st.download_button(label, data, file_name=name, mime=ctype, key=f"job.dl.{where}.{art.id}")


def _step_io(deps: Dependencies, actor: Actor, job: JobDetail, run: StepRun) -> None:
    out = run.output or {}
    if run.step == "write_options":
        st.caption(f"Input: the concept · model requested {job.llm_model}")
        if out.get("options"):
            chosen, _ = _chosen(job, run.attempt)
            st.dataframe(options_table(out["options"], chosen), hide_index=True, width="stretch")
    elif run.step == "choose_option" and out:
        title = plain(out.get("title", ""))
        st.caption(f"Chose option {out.get('chosen_index', 0) + 1}: “{title}” ({out.get('reason')})")
    elif run.step == "render_audio":
        _, option = _chosen(job, run.attempt)
        st.caption(f"Input: “{plain(option.get('title', ''))}” · style {plain(option.get('style', ''))}")
        with st.expander("Lyrics"):
            st.text(option.get("lyrics", ""))
        if out.get("tracks"):
            track = plain(out.get("title"))
            st.caption(f"Track “{track}”, {out.get('duration')} s, {out.get('tracks')} track(s) made")
    elif run.step == "write_image_prompt" and out.get("prompt"):
        st.caption("Image prompt")
        st.text(out["prompt"])
    elif run.step == "render_cover":
        st.caption("Input prompt")
        st.text(
            _latest_output(job, "write_image_prompt", run.attempt).get("prompt") or job.image_prompt or ""
        )
    art = _artifacts(job).get(out.get("audio_path") or out.get("image_path") or "")
    if art is not None:
        show_artifact(deps, actor, art, where=f"a{run.attempt}")


def _step_block(deps: Dependencies, actor: Actor, job: JobDetail, run: StepRun) -> None:
    mark = STATUS_MARKS.get(run.status, "•")
    ended = run.finished_at.strftime("%H:%M:%S") if run.finished_at else "…"
    st.markdown(f"**{mark} {run.label}** — {run.status}")
    line = (
        f"{run.started_at:%H:%M:%S} → {ended} · {duration_text(run.duration_seconds)} · "
        f"{plain(service_text(run))}"  # the model name is whatever the provider reported
    )
    task = (run.remote_task_id or "").replace("`", "")  # provider text: cannot close the code span
    st.caption(line + (f" · task `{task}`" if task else ""))
    if run.output and run.output.get("checks"):
        st.caption(f"Checked the remote task {run.output['checks']} time(s)")
    _step_io(deps, actor, job, run)
    if run.status == "failed" and run.message:
        st.error(plain(run.message))


def _event_line(event: EventView) -> None:
    at = event.at.strftime("%H:%M:%S")
    if event.kind == "retry":
        out = event.output or {}
        why = f"HTTP {out['status']}" if out.get("status") else "no response"
        st.warning(
            f"{at} · {event.service} retry {out.get('retry', '?')} ({why}): {plain(event.message)} "
            f"— next try in {out.get('delay', '?')} s",
            icon=":material/replay:",
        )
        return
    who = f" by {event.actor}" if event.actor else ""
    note = f" — {plain(event.message)}" if event.message else ""
    st.caption(f"{at} · **{event.status}**{who}{note}")


def render_attempts(deps: Dependencies, actor: Actor, job: JobDetail) -> None:
    grouped = group_by_attempt(job)
    for attempt, items in grouped.items():
        with st.expander(f"Attempt {attempt}", expanded=attempt == job.attempt):
            for item in items:
                if isinstance(item, StepRun):
                    _step_block(deps, actor, job, item)
                else:
                    _event_line(item)


def render_previous_versions(deps: Dependencies, actor: Actor, job: JobDetail) -> None:
    if not job.previous_artifacts:
        return
    st.subheader("Previous versions")
    for art in sorted(job.previous_artifacts, key=lambda a: (a.kind, -a.version)):
        with st.container(border=True):
            st.caption(
                f"{art.kind} v{art.version} · {art.created_at:%Y-%m-%d %H:%M:%S} · {art.size_bytes:,} bytes"
            )
            show_artifact(deps, actor, art, where="prev")
