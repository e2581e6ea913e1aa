"""Aggregates for the Metrics page, computed in SQL and returned as small frames.

Date buckets use date_trunc (PostgreSQL) or strftime (SQLite); percentiles use percentile_cont on
PostgreSQL and pandas over a bounded sample on SQLite. Non-admins only ever see their own jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Float, and_, case, cast, func, literal, literal_column, or_, select, text

from core.models import COMPLETED, FAILED, RUNNING, Job, JobEvent, User
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
SQLITE_SAMPLE = 20_000  # rows per percentile query on SQLite (no percentile_cont there)
TOP_N = 20


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


def _pg(deps: Dependencies) -> bool:
    return deps.engine.dialect.name == "postgresql"


def _bucket(deps: Dependencies, column: Any, bucket: str) -> Any:
    if _pg(deps):
        return func.date_trunc(bucket, func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d 00:00:00" if bucket == "day" else "%Y-%m-%d %H:00:00", column)


def _seconds(deps: Dependencies, start: Any, end: Any) -> Any:
    if _pg(deps):
        return func.date_part("epoch", end - start)  # float8; EXTRACT gives numeric (slow to sort)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _job_scope(actor: Actor, f: StatsFilter) -> list[Any]:
    where: list[Any] = [Job.created_at >= f.since, Job.created_at < f.until]
    if not actor.is_admin:
        where.append(Job.user_id == actor.id)
    if f.model:
        where.append(Job.llm_model == f.model)
    return where


def _frame(deps: Dependencies, query: Any, columns: list[str]) -> pd.DataFrame:
    with deps.engine.begin() as conn:
        if _pg(deps):  # sorts for GROUP BY and percentiles stay in memory
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
        rows = conn.execute(query).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def success_rate(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Per time bucket and model: jobs created, completed, failed, success rate of the finished ones."""
    bucket = _bucket(deps, Job.created_at, f.bucket).label("bucket")
    q = (
        select(
            bucket,
            Job.llm_model,
            func.count().label("jobs"),
            func.sum(case((Job.status == COMPLETED, 1), else_=0)),
            func.sum(case((Job.status == FAILED, 1), else_=0)),
        )
        .where(*_job_scope(actor, f))
        .group_by(bucket, Job.llm_model)
        .order_by(bucket)
    )
    df = _frame(deps, q, ["bucket", "model", "jobs", "completed", "failed"])
    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    finished = df["completed"] + df["failed"]
    df["success_rate"] = (df["completed"] / finished.where(finished > 0)).astype(float)
    return df


def _durations(deps: Dependencies, actor: Actor, f: StatsFilter, group: Any) -> pd.DataFrame:
    """p50/p95/mean/max of finished step runs (job_events kind=step) grouped by `group`."""
    seconds = cast(_seconds(deps, JobEvent.started_at, JobEvent.finished_at), Float)
    where: list[Any] = [
        JobEvent.kind == "step",
        JobEvent.started_at >= f.since,
        JobEvent.started_at < f.until,
        JobEvent.finished_at.is_not(None),
    ]
    if not actor.is_admin or f.model:
        where.append(JobEvent.job_id.in_(select(Job.id).where(*_job_scope(actor, _wide(f)))))
    if _pg(deps):
        # COLLATE "C": byte-wise grouping, far cheaper than the database's locale collation.
        runs = select(group.collate("C").label("key"), seconds.label("d")).where(*where).subquery()
        pcts = func.percentile_cont(literal_column("ARRAY[0.5, 0.95]")).within_group(runs.c.d)
        q = (
            select(runs.c.key, func.count(), pcts, func.avg(runs.c.d), func.max(runs.c.d))
            .group_by(runs.c.key)
            .order_by(runs.c.key)
        )
        df = _frame(deps, q, ["key", "runs", "pct", "mean", "max"])
        df.insert(2, "p50", [p[0] for p in df["pct"]])
        df.insert(3, "p95", [p[1] for p in df["pct"]])
        return df.drop(columns=["pct"])
    sample = _frame(
        deps,
        select(group.label("key"), seconds).where(*where).order_by(JobEvent.id.desc()).limit(SQLITE_SAMPLE),
        ["key", "seconds"],
    )
    if sample.empty:
        return pd.DataFrame(columns=["key", "runs", "p50", "p95", "mean", "max"])
    g = sample.groupby("key")["seconds"]
    out = pd.DataFrame(
        {
            "runs": g.size(),
            "p50": g.quantile(0.5),
            "p95": g.quantile(0.95),
            "mean": g.mean(),
            "max": g.max(),
        }
    )
    return out.reset_index()


def _wide(f: StatsFilter) -> StatsFilter:
    """Jobs created a little before the range still have step runs inside it."""
    return StatsFilter(since=f.since - timedelta(days=1), until=f.until, bucket=f.bucket, model=f.model)


def step_durations(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    return _durations(deps, actor, f, JobEvent.step).rename(columns={"key": "step"})


def provider_latency(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Step-run time per external service (a render includes the provider's queue and render time)."""
    df = _durations(deps, actor, f, func.coalesce(JobEvent.service, literal("")))
    df = df.rename(columns={"key": "provider"})
    return df[~df["provider"].isin(["", "Songsmith"])].reset_index(drop=True)


def _reason(deps: Dependencies) -> Any:
    text = func.coalesce(Job.error_message, literal(""))
    if _pg(deps):
        return func.left(func.split_part(func.split_part(text, ";", 1), ":", 1), 80)
    return func.substr(text, 1, 60)


def failures(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Failed jobs by the step that failed and the leading part of the reason, most frequent first."""
    reason = _reason(deps).label("reason")
    step = func.coalesce(Job.error_step, literal("?")).label("step")
    q = (
        select(step, reason, func.count().label("n"))
        .where(*_job_scope(actor, f), Job.status == FAILED)
        .group_by(step, reason)
        .order_by(func.count().desc())
        .limit(TOP_N)
    )
    return _frame(deps, q, ["step", "reason", "jobs"])


def jobs_per_user(deps: Dependencies, actor: Actor, f: StatsFilter) -> pd.DataFrame:
    """Admins only: jobs created per user in the range (top users first); others get an empty frame."""
    columns = ["user", "jobs", "completed", "failed"]
    if not actor.is_admin:
        return pd.DataFrame(columns=columns)
    per_user = (
        select(
            Job.user_id,
            func.count().label("jobs"),
            func.sum(case((Job.status == COMPLETED, 1), else_=0)).label("completed"),
            func.sum(case((Job.status == FAILED, 1), else_=0)).label("failed"),
        )
        .where(*_job_scope(actor, f))
        .group_by(Job.user_id)
        .order_by(func.count().desc())
        .limit(TOP_N)
        .subquery()
    )
    q = (
        select(User.username, per_user.c.jobs, per_user.c.completed, per_user.c.failed)
        .join(User, User.id == per_user.c.user_id)
        .order_by(per_user.c.jobs.desc())
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
