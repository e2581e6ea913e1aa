"""Pipeline health: success rate, durations, provider latency, failures, queue depth (core.stats)."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from core import stats
from ui.auth import require_actor
from ui.deps import get_dependencies
from ui.widgets import guarded

actor = require_actor()
deps = get_dependencies()
st.title("Metrics")
refreshed = guarded(lambda: stats.refreshed_at(deps))
when = f"aggregates as of {refreshed:%Y-%m-%d %H:%M:%S} UTC + live since" if refreshed else "all live data"
st.caption(f"{'All jobs' if actor.is_admin else 'Your jobs only'} · {when}")

left, right = st.columns(2)
range_label = left.selectbox(
    "Time range", list(stats.RANGES), index=list(stats.RANGES).index(stats.DEFAULT_RANGE), key="metrics.range"
)
model = right.selectbox("Model", ["All models", *stats.model_choices(deps)], key="metrics.model")
flt = stats.make_filter(deps.clock(), range_label, None if model == "All models" else model)


def chart(fig) -> None:
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=320)
    st.plotly_chart(fig, width="stretch")


def empty(what: str) -> None:
    st.info(f"No {what} in this time range yet.")


@st.fragment(run_every="10s")
def live() -> None:
    now = guarded(lambda: stats.live_now(deps, actor))
    if now is None:
        return
    chart(px.bar(now, x="what", y="count", title="Queue depth and remote tasks in flight (now)"))


live()

success = guarded(lambda: stats.success_rate(deps, actor, flt))
if success is not None:
    if success.empty:
        empty("jobs")
    else:
        fig = px.line(
            success, x="bucket", y="success_rate", color="model", markers=True, title="Success rate"
        )
        fig.update_yaxes(tickformat=".0%", range=[0, 1.05])
        chart(fig)

steps = guarded(lambda: stats.step_durations(deps, actor, flt))
if steps is not None:
    if steps.empty:
        empty("finished steps")
    else:
        long = steps.melt(id_vars=["step"], value_vars=["p50", "p95"], var_name="percentile")
        chart(
            px.bar(long, x="step", y="value", color="percentile", barmode="group", title="Step duration (s)")
        )

latency = guarded(lambda: stats.provider_latency(deps, actor, flt))
if latency is not None:
    if latency.empty:
        empty("provider calls")
    else:
        long = latency.melt(id_vars=["provider"], value_vars=["p50", "p95"], var_name="percentile")
        chart(
            px.bar(
                long,
                x="provider",
                y="value",
                color="percentile",
                barmode="group",
                title="Provider step time (s)",
            )
        )

failed = guarded(lambda: stats.failures(deps, actor, flt))
if failed is not None:
    if failed.empty:
        empty("failures")
    else:
        chart(px.bar(failed, x="jobs", y="step", color="reason", orientation="h", title="Failures"))

if actor.is_admin:
    users = guarded(lambda: stats.jobs_per_user(deps, actor, flt))
    if users is not None:
        if users.empty:
            empty("jobs per user")
        else:
            chart(px.bar(users, x="user", y=["completed", "failed"], title="Jobs created per user"))
