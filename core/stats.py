"""Aggregates for the Metrics page, computed in SQL and returned as small frames.

Each chart reads the hourly rollups (core/rollup.py) for the whole hours before their last refresh and
the raw jobs and job_events only for the rest of the range: its first part-hour and the live tail since
that refresh, so a job finished a second ago shows. Both sides are grouped alike and summed in one
UNION ALL query; p50/p95 are read from the histogram buckets. Non-admins only ever see their own jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import BigInteger, and_, case, cast, false, func, or_, select, text, union_all

from core import rollup
from core.models import (
    ALL_USERS,
    COMPLETED,
    FAILED,
    RUNNING,
    SPAN_DAY,
    SPAN_HOUR,
    Job,
    JobEvent,
    JobRollup,
    StepRollup,
    User,
)
from core.queueing import queue_depths

if TYPE_CHECKING:
    from core.deps import Dependencies
    from core.users import Actor

RANGES: dict[str, tuple[timedelta, str]] = {
    "Last hour": (timedelta(hours=1), "hour"),
    "Last 24 hours": (timedelta(hours=24), "hour"),
    "Last 7 days": (timedelta(days=7), "day"),
    "Last 30 days": (timedelta(days=30), "day"),
}
DEFAULT_RANGE = "Last 24 hours"
TOP_N = 20
DURATION_COLUMNS = ["key", "runs", "p50", "p95", "mean", "max"]


@dataclass(frozen=True)
class StatsFilter:
    since: datetime
    until: datetime
    bucket: str = "hour"  # hour | day
    model: str | None = None


def make_filter(now: datetime, range_label: str = DEFAULT_RANGE, model: str | None = None) -> StatsFilter:
    span, bucket = RANGES.get(range_label, RANGES[DEFAULT_RANGE])
    return StatsFilter(since=now - span, until=now, bucket=bucket, model=model or None)


def model_choices(deps: Dependencies) -> list[str]:
    models = [deps.settings.openrouter_default_model, *deps.settings.fallback_models]
    return list(dict.fromkeys(models))


def refreshed_at(deps: Dependencies) -> datetime | None:
    """When the rollups were last refreshed (None: never, and every chart reads the raw tables)."""
    return rollup.refreshed_at(deps)


@dataclass(frozen=True)
class _Spans:
    """Which rollup rows cover the range (hour rows, day rows) and which [since, until) pieces are raw."""

    hours: tuple[range, ...] = ()
    days: range = range(0)  # in hours, whole UTC days
    raw: tuple[tuple[datetime, datetime], ...] = ()

    def rolled_where(self, table: Any) -> Any:
        c = table.c
        parts = [and_(c.span == SPAN_HOUR, c.hour >= r.start, c.hour < r.stop) for r in self.hours if r]
        if self.days:
            parts.append(and_(c.span == SPAN_DAY, c.hour >= self.days.start, c.hour < self.days.stop))
        return or_(*parts) if parts else false()

    def raw_where(self, column: Any) -> Any:
        parts = [and_(column >= lo, column < hi) for lo, hi in self.raw]
        return or_(*parts) if parts else false()

    @property
    def rolled(self) -> bool:
        return bool(self.days) or any(self.hours)


def _spans(deps: Dependencies, f: StatsFilter, *, days: bool = True) -> _Spans:
    """Rollups for the whole hours (and whole days, unless the chart buckets by hour) before their last
    refresh; raw rows for the part-hour at the start and everything from the hour of that refresh on."""
    first, last = rollup.ceil_hour(f.since), rollup.floor_hour(f.until)
    refreshed = rollup.refreshed_at(deps)
    if refreshed is not None:
        last = min(last, rollup.floor_hour(refreshed))  # that hour was still filling up
    if refreshed is None or last <= first:
        return _Spans(raw=((f.since, f.until),))
    pieces = ((f.since, rollup.hour_start(first)), (rollup.hour_start(last), f.until))
    raw = tuple((lo, hi) for lo, hi in pieces if lo < hi)
    day_first, day_last = -(-first // 24) * 24, last // 24 * 24
    if not days or day_last <= day_first:
        return _Spans(hours=(range(first, last),), raw=raw)
    hours = (range(first, day_first), range(day_last, last))
    return _Spans(hours=hours, days=range(day_first, day_last), raw=raw)


def _union(rolled: Any, raw: Any, spans: _Spans) -> Any:
    parts = ([rolled] if spans.rolled else []) + ([raw] if spans.raw else [])
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("src")


def _owner(table: Any, actor: Actor, per_user: bool) -> Any:
    if per_user:  # admins only: every owner's own rows
        return table.c.user_id != ALL_USERS
    return table.c.user_id == (ALL_USERS if actor.is_admin else actor.id)


def _job_source(
    deps: Dependencies,
    actor: Actor,
    f: StatsFilter,
    *,
    per_user: bool = False,
    failed: bool = False,
    days: bool = True,
) -> Any:
    """job_rollup-shaped rows of the range: rollups where they cover it, raw jobs grouped alike elsewhere."""
    spans = _spans(deps, f, days=days)
    t = JobRollup.__table__
    rolled_where = [_owner(t, actor, per_user), spans.rolled_where(t)]
    raw_where = [spans.raw_where(Job.created_at)]
    if not actor.is_admin:
        raw_where.append(Job.user_id == actor.id)
    if f.model:
        rolled_where.append(t.c.model == f.model)
        raw_where.append(Job.llm_model == f.model)
    if failed:
        rolled_where.append(t.c.status == FAILED)
        raw_where.append(Job.status == FAILED)
    rolled = select(*(t.c[k] for k in (*rollup.JOB_KEYS, "jobs"))).where(*rolled_where)
    return _union(rolled, rollup.job_rows(deps.engine.dialect.name, raw_where), spans)


def _step_source(deps: Dependencies, actor: Actor, f: StatsFilter) -> Any:
    """step_rollup-shaped rows of the range (finished step runs by the hour they started)."""
    spans = _spans(deps, f)
    t = StepRollup.__table__
    rolled_where = [_owner(t, actor, False), spans.rolled_where(t)]
    raw_where = [spans.raw_where(JobEvent.started_at)]
    if not actor.is_admin:
        raw_where.append(Job.user_id == actor.id)
    if f.model:
        rolled_where.append(t.c.model == f.model)
        raw_where.append(Job.llm_model == f.model)
    rolled = select(*(t.c[k] for k in (*rollup.STEP_KEYS, *rollup.STEP_VALUES))).where(*rolled_where)
    # An admin's tail without a model filter needs nothing from jobs: skip the join.
    with_jobs = not actor.is_admin or bool(f.model)
    raw = rollup.step_rows(deps.engine.dialect.name, raw_where, with_jobs=with_jobs)
    return _union(rolled, raw, spans)


def _total(column: Any) -> Any:
    return cast(func.sum(column), BigInteger)  # PostgreSQL's SUM(bigint) is numeric


def _frame(deps: Dependencies, query: Any, columns: list[str]) -> pd.DataFrame:
    with deps.engine.begin() as conn:
        if deps.engine.dialect.name == "postgresql":  # sorts for GROUP BY stay in memory
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
        rows = conn.execute(query).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def success_rate(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Per time bucket and model: jobs created, completed, failed, success rate of the finished ones."""
    hours = 1 if f.bucket == "hour" else 24
    src = _job_source(deps, actor, f, days=hours == 24)
    bucket = (src.c.hour // hours).label("bucket")
    q = (
        select(
            bucket,
            src.c.model,
            _total(src.c.jobs),
            _total(case((src.c.status == COMPLETED, src.c.jobs), else_=0)),
            _total(case((src.c.status == FAILED, src.c.jobs), else_=0)),
        )
        .group_by(bucket, src.c.model)
        .order_by(bucket, src.c.model)
    )
    df = _frame(deps, q, ["bucket", "model", "jobs", "completed", "failed"])
    df["bucket"] = pd.to_datetime(df["bucket"].astype("int64") * hours * 3600, unit="s", utc=True)
    finished = df["completed"] + df["failed"]
    df["success_rate"] = (df["completed"] / finished.where(finished > 0)).astype(float)
    return df


def _durations(deps: Dependencies, actor: Actor, f: StatsFilter, key: str) -> pd.DataFrame:
    """Runs, p50/p95 (from the histogram), mean and max of finished step runs, grouped by `key`."""
    src = _step_source(deps, actor, f)
    q = select(
        src.c[key],
        _total(src.c.runs),
        func.sum(src.c.seconds_sum),
        func.max(src.c.seconds_max),
        *(_total(src.c[b]) for b in rollup.BUCKET_COLUMNS),
    ).group_by(src.c[key])
    df = _frame(deps, q, ["key", "runs", "sum", "max", *rollup.BUCKET_COLUMNS])
    if df.empty:
        return pd.DataFrame(columns=DURATION_COLUMNS)
    counts = df[list(rollup.BUCKET_COLUMNS)].astype("int64").to_numpy()
    maxima = df["max"].astype(float).to_numpy()
    out = pd.DataFrame(
        {
            "key": df["key"],
            "runs": df["runs"].astype("int64"),
            "p50": [rollup.quantile(c, 0.5, m) for c, m in zip(counts, maxima, strict=True)],
            "p95": [rollup.quantile(c, 0.95, m) for c, m in zip(counts, maxima, strict=True)],
            "mean": df["sum"].astype(float) / df["runs"].astype(float),
            "max": maxima,
        }
    )
    return out.sort_values("key", kind="stable").reset_index(drop=True)


def step_durations(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    return _durations(deps, actor, f, "step").rename(columns={"key": "step"})


def provider_latency(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Step-run time per external service (a render includes the provider's queue and render time)."""
    df = _durations(deps, actor, f, "service").rename(columns={"key": "provider"})
    return df[~df["provider"].isin(["", "Songsmith"])].reset_index(drop=True)


def failures(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Failed jobs by the step that failed and the leading part of the reason, most frequent first."""
    src = _job_source(deps, actor, f, failed=True)
    n = _total(src.c.jobs)
    q = (
        select(src.c.error_step, src.c.reason, n)
        .group_by(src.c.error_step, src.c.reason)
        .order_by(n.desc(), src.c.error_step, src.c.reason)
        .limit(TOP_N)
    )
    return _frame(deps, q, ["step", "reason", "jobs"])


def jobs_per_user(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Admins only: jobs created per user in the range (top users first); others get an empty frame."""
    columns = ["user", "jobs", "completed", "failed"]
    if not actor.is_admin:
        return pd.DataFrame(columns=columns)
    src = _job_source(deps, actor, f, per_user=True)
    jobs = _total(src.c.jobs)
    per_user = (
        select(
            src.c.user_id,
            jobs.label("jobs"),
            _total(case((src.c.status == COMPLETED, src.c.jobs), else_=0)).label("completed"),
            _total(case((src.c.status == FAILED, src.c.jobs), else_=0)).label("failed"),
        )
        .group_by(src.c.user_id)
        .order_by(jobs.desc(), src.c.user_id)
        .limit(TOP_N)
        .subquery()
    )
    q = (
        select(User.username, per_user.c.jobs, per_user.c.completed, per_user.c.failed)
        .join(User, User.id == per_user.c.user_id)
        .order_by(per_user.c.jobs.desc(), User.username)
    )
    return _frame(deps, q, columns)


def in_flight(deps: Dependencies, actor: Actor | None = None) -> dict[str, int]:
    """Remote tasks submitted and not finished yet, per provider (all users unless a non-admin asks)."""
    q = select(Job.current_step, func.count()).where(
        Job.status == RUNNING,
        or_(
            and_(Job.current_step == "render_audio", Job.music_task_id.is_not(None)),
            and_(Job.current_step == "render_cover", Job.image_task_id.is_not(None)),
        ),
    )
    if actor is not None and not actor.is_admin:
        q = q.where(Job.user_id == actor.id)
    with deps.engine.connect() as conn:
        rows = dict(conn.execute(q.group_by(Job.current_step)).all())
    return {"suno": int(rows.get("render_audio", 0)), "nanobanana": int(rows.get("render_cover", 0))}


def live_now(deps: Dependencies, actor: Actor) -> pd.DataFrame:
    """Queue depth per queue and state (shared by everyone) and this scope's remote tasks in flight."""
    rows = [
        {"what": f"{queue} · {state}", "count": n}
        for queue, counts in queue_depths(deps.queues).items()
        for state, n in counts.items()
    ]
    rows += [{"what": f"in flight · {p}", "count": n} for p, n in in_flight(deps, actor).items()]
    return pd.DataFrame(rows, columns=["what", "count"])
