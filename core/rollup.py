"""Hourly rollups of jobs and step runs for the Metrics page, kept up to date incrementally.

Like a Prometheus histogram: a step_rollup row holds, for the runs that started in one hour for one owner,
job model, step and service, their count, sum and max seconds and their counts in fixed log-spaced
buckets, so p50/p95 over any set of rows is a SUM of integer columns and an interpolation inside one
bucket. job_rollup counts jobs by the hour they were created. refresh() recomputes every hour touched
since its last run (DELETE + INSERT ... SELECT GROUP BY, one transaction); core.stats reads the rollups
for whole hours before that run and the raw tables only for the live tail after it.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, and_, case, cast, delete, func, insert, literal, select, text, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.logs import get_logger
from core.models import (
    ALL_USERS,
    FAILED,
    HISTOGRAM_BUCKETS,
    JOB_STATUSES,
    SPAN_DAY,
    SPAN_HOUR,
    Job,
    JobEvent,
    JobRollup,
    RollupState,
    StepRollup,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql import ColumnElement, Select

    from core.deps import Dependencies

log = get_logger("songsmith.rollup")

STATE = "metrics"
LOCK_KEY = 0x534F4E47524F4C4C  # pg advisory lock: one refresh at a time ("SONGROLL")
BUCKETS_PER_OCTAVE = 4
FIRST_EDGE = 0.01  # seconds
# Upper edges of buckets 0..78; bucket 79 is everything from EDGES[-1] (~2.06 h) up.
EDGES: tuple[float, ...] = tuple(
    FIRST_EDGE * 2 ** (k / BUCKETS_PER_OCTAVE) for k in range(HISTOGRAM_BUCKETS - 1)
)
BUCKET_COLUMNS: tuple[str, ...] = tuple(f"b{i:02d}" for i in range(HISTOGRAM_BUCKETS))
JOB_KEYS = ("user_id", "span", "hour", "model", "status", "error_step", "reason")
STEP_KEYS = ("user_id", "span", "hour", "model", "step", "service")
STEP_VALUES = ("runs", "seconds_sum", "seconds_max", *BUCKET_COLUMNS)


# ---- SQL building blocks, shared by refresh() and core.stats' live tail ----


def hour_of(dialect: str, column: Any) -> ColumnElement[int]:
    """Whole hours since the Unix epoch (UTC) of a timestamp column."""
    if dialect == "postgresql":
        return cast(func.floor(func.date_part("epoch", column) / 3600.0), Integer)  # float8, not numeric
    return cast(func.strftime("%s", column), Integer) // 3600


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    if dialect == "postgresql":
        return func.date_part("epoch", end - start)  # float8; EXTRACT gives numeric (slow)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def bucket_of(dialect: str, seconds: Any) -> ColumnElement[int]:
    """The histogram bucket of a duration: 0 below 10 ms, then 4 per octave, the last one open-ended."""
    steps = func.ln(seconds / FIRST_EDGE) * (BUCKETS_PER_OCTAVE / math.log(2))
    # Non-negative here, so SQLite's CAST (which truncates) is a floor; PostgreSQL's CAST rounds.
    index = cast(func.floor(steps), Integer) if dialect == "postgresql" else cast(steps, Integer)
    return case(
        (seconds < FIRST_EDGE, 0),
        (seconds >= EDGES[-1], HISTOGRAM_BUCKETS - 1),
        else_=index + 1,
    )


def failure_reason(dialect: str, message: Any) -> ColumnElement[str]:
    """The leading part of an error message, which the Failures chart groups by."""
    message = func.coalesce(message, literal(""))
    if dialect == "postgresql":
        return func.left(func.split_part(func.split_part(message, ";", 1), ":", 1), 80)
    return func.substr(message, 1, 60)


def job_rows(dialect: str, where: Sequence[Any]) -> Select[Any]:
    """Raw jobs grouped as job_rollup hour rows (per owner), restricted by `where`."""
    failed = Job.status == FAILED
    keys = {
        "user_id": Job.user_id,
        "hour": hour_of(dialect, Job.created_at),
        "model": Job.llm_model,
        "status": Job.status,
        "error_step": case((failed, func.coalesce(Job.error_step, literal("?"))), else_=literal("")),
        "reason": case((failed, failure_reason(dialect, Job.error_message)), else_=literal("")),
    }
    columns = keys | {"span": literal(SPAN_HOUR)}
    # In JOB_KEYS order: core.stats puts these rows in a UNION ALL with job_rollup's, column by column.
    return (
        select(*(columns[k].label(k) for k in JOB_KEYS), func.count().label("jobs"))
        .where(*where)
        .group_by(*keys.values())
    )


def step_rows(dialect: str, where: Sequence[Any], *, with_jobs: bool = True) -> Select[Any]:
    """Finished step runs grouped as step_rollup rows, restricted by `where` (on job_events and jobs).

    Two levels: runs are first grouped by key and bucket (the bucket is computed once per run), and
    those few rows are pivoted into the wide bucket columns.
    """
    seconds = seconds_between(dialect, JobEvent.started_at, JobEvent.finished_at)
    keys = {
        "hour": hour_of(dialect, JobEvent.started_at),
        "step": func.coalesce(JobEvent.step, literal("")),
        "service": func.coalesce(JobEvent.service, literal("")),
    }
    if with_jobs:
        keys |= {"user_id": Job.user_id, "model": Job.llm_model}
    constants = {"span": literal(SPAN_HOUR)}
    if not with_jobs:  # core.stats' admin tail: no owner or model needed
        constants |= {"user_id": literal(ALL_USERS), "model": literal("")}
    bucket = bucket_of(dialect, seconds)
    by_bucket = select(
        *(c.label(k) for k, c in (keys | constants).items()),
        bucket.label("bucket"),
        func.count().label("n"),
        func.sum(seconds).label("s"),
        func.max(seconds).label("m"),
    ).select_from(JobEvent)
    if with_jobs:
        by_bucket = by_bucket.join(Job, Job.id == JobEvent.job_id)
    by_bucket = (
        by_bucket.where(JobEvent.kind == "step", JobEvent.finished_at.is_not(None), *where)
        .group_by(*keys.values(), bucket)
        .subquery("by_bucket")
    )
    c = by_bucket.c
    return select(
        *(c[k] for k in STEP_KEYS),
        func.sum(c.n).label("runs"),
        func.sum(c.s).label("seconds_sum"),
        func.max(c.m).label("seconds_max"),
        *(func.sum(case((c.bucket == i, c.n), else_=0)).label(b) for i, b in enumerate(BUCKET_COLUMNS)),
    ).group_by(*(c[k] for k in STEP_KEYS))


def _sums(table: Any) -> dict[str, Any]:
    if table is JobRollup.__table__:
        return {"jobs": func.sum(table.c.jobs)}
    sums = {n: func.sum(table.c[n]) for n in STEP_VALUES}
    sums["seconds_max"] = func.max(table.c.seconds_max)
    return sums


def _all_users_rows(table: Any, keys: Sequence[str], hours: range) -> Select[Any]:
    """The ALL_USERS hour rows of some hours, summed from the owners' hour rows already in `table`."""
    group = [table.c[k] for k in keys if k not in ("user_id", "span")]
    return (
        select(
            literal(ALL_USERS).label("user_id"),
            literal(SPAN_HOUR).label("span"),
            *group,
            *(agg.label(n) for n, agg in _sums(table).items()),
        )
        .where(
            table.c.user_id != ALL_USERS,
            table.c.span == SPAN_HOUR,
            table.c.hour >= hours.start,
            table.c.hour < hours.stop,
        )
        .group_by(*group)
    )


def _day_rows(table: Any, keys: Sequence[str], days: range) -> Select[Any]:
    """Day rows (every owner and ALL_USERS) of some UTC days, summed from the hour rows in `table`."""
    day = table.c.hour // 24 * 24
    group = [table.c[k] for k in keys if k not in ("span", "hour")]
    return (
        select(
            literal(SPAN_DAY).label("span"),
            day.label("hour"),
            *group,
            *(agg.label(n) for n, agg in _sums(table).items()),
        )
        .where(
            table.c.span == SPAN_HOUR,
            table.c.hour >= days.start * 24,
            table.c.hour < days.stop * 24,
        )
        .group_by(day, *group)
    )


# ---- hours ----


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def floor_hour(moment: datetime) -> int:
    return math.floor(moment.timestamp() / 3600)


def ceil_hour(moment: datetime) -> int:
    return math.ceil(moment.timestamp() / 3600)


def contiguous(hours: Sequence[int]) -> list[range]:
    """[3, 4, 5, 9] -> [range(3, 6), range(9, 10)]."""
    out: list[range] = []
    for h in sorted(set(hours)):
        if out and out[-1].stop == h:
            out[-1] = range(out[-1].start, h + 1)
        else:
            out.append(range(h, h + 1))
    return out


# ---- refresh ----


@dataclass(frozen=True)
class RefreshReport:
    hours: int = 0  # hours recomputed (every hour with data on a full build)
    full: bool = False
    skipped: bool = False  # another process was refreshing
    seconds: float = 0.0


def refreshed_at(deps: Dependencies) -> datetime | None:
    """The clock when the last refresh started, or None when the rollups were never built."""
    with deps.engine.connect() as conn:
        return conn.execute(select(RollupState.refreshed_at).where(RollupState.name == STATE)).scalar()


def refresh(deps: Dependencies) -> RefreshReport:
    """Recompute the rollup rows of every hour whose jobs or step runs changed since the last refresh.

    Idempotent, and safe from several processes: on PostgreSQL a transaction-scoped advisory lock lets
    one refresh run and the others skip; SQLite serializes writers. Changes committed while a refresh
    runs are seen by the next one, because it looks back from this one's start minus
    ROLLUP_OVERLAP_SECONDS (the slack for clock skew between hosts and long transactions).
    """
    clock = time.perf_counter()
    started = deps.clock()
    with deps.engine.begin() as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            if not conn.execute(select(func.pg_try_advisory_xact_lock(LOCK_KEY))).scalar():
                return RefreshReport(skipped=True)
            conn.execute(text("SET LOCAL work_mem = '256MB'"))
        last = conn.execute(select(RollupState.refreshed_at).where(RollupState.name == STATE)).scalar()
        if last is None:
            hours = _rebuild_all(conn, dialect)
        else:
            since = last - timedelta(seconds=deps.settings.rollup_overlap_seconds)
            dirty = _dirty_hours(conn, dialect, since)
            for span in contiguous(dirty):
                _recompute_hours(conn, dialect, span)
            for days in contiguous(sorted({h // 24 for h in dirty})):
                _recompute_days(conn, days)
            hours = len(dirty)
        _save_state(conn, dialect, started, deps.clock(), hours)
    if last is None and dialect == "postgresql":
        with deps.engine.begin() as conn:  # statistics now, not at autovacuum's leisure: good first plans
            conn.execute(text("ANALYZE job_rollup, step_rollup"))
    report = RefreshReport(hours=hours, full=last is None, seconds=time.perf_counter() - clock)
    log.info("rollup_refreshed", hours=report.hours, full=report.full, seconds=round(report.seconds, 3))
    return report


def _dirty_hours(conn: Connection, dialect: str, since: datetime) -> list[int]:
    """Hours holding a job changed since `since`, or a step run of such a job or one started since.

    Every write to a job or its step runs sets jobs.updated_at, so a run that finished late makes the
    hour it started in dirty through its job. Naming every status lets the (status, updated_at) index
    serve this as one range per status.
    """
    changed = and_(Job.status.in_(JOB_STATUSES), Job.updated_at >= since)
    jobs = select(hour_of(dialect, Job.created_at)).where(changed)
    runs_of_changed = (
        select(hour_of(dialect, JobEvent.started_at))
        .join(Job, Job.id == JobEvent.job_id)
        .where(changed, JobEvent.kind == "step")
    )
    started = select(hour_of(dialect, JobEvent.started_at)).where(
        JobEvent.started_at >= since, JobEvent.kind == "step"
    )
    return sorted(int(h) for h in conn.execute(union(jobs, runs_of_changed, started)).scalars())


TABLES = (JobRollup.__table__, StepRollup.__table__)


def _recompute_hours(conn: Connection, dialect: str, hours: range) -> None:
    lo, hi = hour_start(hours.start), hour_start(hours.stop)
    for table in TABLES:
        conn.execute(
            delete(table).where(
                table.c.span == SPAN_HOUR, table.c.hour >= hours.start, table.c.hour < hours.stop
            )
        )
    _insert(conn, JobRollup.__table__, job_rows(dialect, [Job.created_at >= lo, Job.created_at < hi]))
    runs = step_rows(dialect, [JobEvent.started_at >= lo, JobEvent.started_at < hi])
    _insert(conn, StepRollup.__table__, runs)
    _insert(conn, JobRollup.__table__, _all_users_rows(JobRollup.__table__, JOB_KEYS, hours))
    _insert(conn, StepRollup.__table__, _all_users_rows(StepRollup.__table__, STEP_KEYS, hours))


def _recompute_days(conn: Connection, days: range) -> None:
    for table, keys in zip(TABLES, (JOB_KEYS, STEP_KEYS), strict=True):
        conn.execute(
            delete(table).where(
                table.c.span == SPAN_DAY, table.c.hour >= days.start * 24, table.c.hour < days.stop * 24
            )
        )
        _insert(conn, table, _day_rows(table, keys, days))


def _rebuild_all(conn: Connection, dialect: str) -> int:
    for table in TABLES:
        conn.execute(delete(table))
    _insert(conn, JobRollup.__table__, job_rows(dialect, []))
    _insert(conn, StepRollup.__table__, step_rows(dialect, []))
    hours = [
        h
        for table in TABLES
        for h in conn.execute(select(func.min(table.c.hour), func.max(table.c.hour))).one()
        if h is not None
    ]
    if not hours:
        return 0
    every = range(min(hours), max(hours) + 1)
    _insert(conn, JobRollup.__table__, _all_users_rows(JobRollup.__table__, JOB_KEYS, every))
    _insert(conn, StepRollup.__table__, _all_users_rows(StepRollup.__table__, STEP_KEYS, every))
    _recompute_days(conn, range(every.start // 24, every.stop // 24 + 1))
    both = union(*(select(t.c.hour).where(t.c.span == SPAN_HOUR) for t in TABLES)).subquery()
    return conn.execute(select(func.count()).select_from(both)).scalar_one()


def _insert(conn: Connection, table: Any, rows: Select[Any]) -> None:
    """INSERT ... SELECT, columns matched by the labels `rows` gives them."""
    conn.execute(insert(table).from_select([c.key for c in rows.selected_columns], rows))


def _save_state(conn: Connection, dialect: str, started: datetime, finished: datetime, hours: int) -> None:
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = {"refreshed_at": started, "finished_at": finished, "hours": hours}
    stmt = upsert(RollupState).values(name=STATE, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))


# ---- reading a histogram ----


def bucket_bounds(index: int, maximum: float) -> tuple[float, float]:
    lo = 0.0 if index == 0 else EDGES[index - 1]
    hi = EDGES[index] if index < len(EDGES) else max(maximum, lo)
    return lo, min(hi, max(maximum, lo))


def quantile(counts: Sequence[int], q: float, maximum: float) -> float:
    """The q-quantile of a histogram: find the bucket holding rank q·n, interpolate inside it.

    Interpolation is geometric in the log-spaced buckets (linear in the first, which starts at 0), so
    the error is at most one bucket: a factor of 2^(1/4), about 19 %. Never above the exact maximum.
    """
    total = sum(counts)
    if total <= 0:
        return math.nan
    rank = q * total
    cumulative = list(_accumulate(counts))
    index = min(bisect.bisect_left(cumulative, rank), len(counts) - 1)
    while counts[index] == 0 and index < len(counts) - 1:  # rank 0 falls before the first non-empty one
        index += 1
    below = cumulative[index] - counts[index]
    fraction = min(max((rank - below) / counts[index], 0.0), 1.0)
    lo, hi = bucket_bounds(index, maximum)
    if lo <= 0.0:
        return lo + (hi - lo) * fraction
    return lo * (hi / lo) ** fraction


def _accumulate(counts: Sequence[int]) -> list[int]:
    out, running = [], 0
    for n in counts:
        running += int(n)
        out.append(running)
    return out
