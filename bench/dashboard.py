"""Dashboard at scale: 1,000,000 jobs with step events in a scratch PostgreSQL database.

Seeds with INSERT ... SELECT over generate_series, runs ANALYZE, times every Metrics query (core.stats)
on the raw tables alone (a fresh install, before the first rollup refresh), builds the rollups
(core.rollup.refresh, timed), times one incremental refresh, then times every Metrics query and the
Jobs list page (core.jobs.list_jobs) again and prints each plan's index use; last, the time AppTest
takes to render the Jobs and Metrics pages as the admin. Targets: list page < 20 ms, each metrics
query < 300 ms. Not a test: `make bench`.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import event, text

from bench.env import scratch_redis
from core import rollup, stats
from core.config import load_settings
from core.deps import Dependencies, build_dependencies
from core.jobs import list_jobs
from core.migrate import upgrade
from core.users import Actor

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
JOBS = int(os.environ.get("BENCH_JOBS", "1000000"))
USERS = 20
LIST_TARGET_MS = 20.0
METRICS_TARGET_MS = 300.0
REPEAT = 5

SEED_USERS = """
INSERT INTO users (username, username_key, password_hash, role, is_active, created_at)
SELECT 'user' || g, 'user' || g, 'x', CASE WHEN g = 1 THEN 'admin' ELSE 'analyst' END, true,
  now() - interval '60 days'
FROM generate_series(1, :users) g
"""
# Skewed owners (user 2 owns ~1/6 of all jobs), 80 % completed, 12 % failed, a few running/pending.
SEED_JOBS = """
INSERT INTO jobs (id, user_id, concept, status, current_step, priority, llm_model, attempt, step_retries,
  step_polls, cancel_requested, music_submit_attempts, image_submit_attempts, music_task_id, image_task_id,
  correlation_id, created_at, started_at, finished_at, updated_at, error_step, error_message)
SELECT md5(g::text)::uuid, u, 'concept ' || g, st,
  CASE st WHEN 'running' THEN (ARRAY['render_audio','render_cover','write_options'])[1 + g % 3]
          WHEN 'pending' THEN 'write_options' WHEN 'failed' THEN es END,
  CASE WHEN g % 4 = 0 THEN 'batch' ELSE 'interactive' END,
  (ARRAY['openai/gpt-4o-mini', 'openai/gpt-4o', 'anthropic/claude-3.5-sonnet',
         'google/gemini-2.5-flash'])[1 + g % 4],
  1, 0, 0, false, 0, 0,
  CASE WHEN st = 'running' THEN 'task-' || g END, CASE WHEN st = 'running' THEN 'img-' || g END,
  md5('c' || g), ca, ca + interval '2 seconds', CASE WHEN st IN ('completed','failed','cancelled')
  THEN ca + (60 + (g % 240)) * interval '1 second' END, ca,
  CASE WHEN st = 'failed' THEN es END,
  CASE WHEN st = 'failed' THEN (ARRAY[
    'Suno had a server error (HTTP 500)', 'NanoBanana refused the content (HTTP 400): flagged',
    'OpenRouter kept failing after 5 attempts (last: HTTP 503): busy',
    'Unexpected error in step store; reference ' || md5(g::text)])[1 + g % 4] END
FROM (
  SELECT g, CASE WHEN g % 6 = 0 THEN 2 ELSE 1 + (g::bigint * 7919) % :users END AS u,
    CASE WHEN r < 0.80 THEN 'completed' WHEN r < 0.92 THEN 'failed' WHEN r < 0.995 THEN 'cancelled'
         WHEN r < 0.998 THEN 'running' ELSE 'pending' END AS st,
    (ARRAY['write_options','render_audio','write_image_prompt','render_cover','store'])[1 + g % 5] AS es,
    now() - (g::float / :jobs) * interval '30 days' AS ca
  FROM (SELECT g, random() AS r FROM generate_series(1, :jobs) g) s
) x
"""
# One step event per step reached (6 for completed jobs): ~5 per job.
SEED_EVENTS = """
INSERT INTO job_events (job_id, attempt, kind, step, status, service, model, started_at, finished_at)
SELECT j.id, 1, 'step', (ARRAY['write_options','choose_option','render_audio','write_image_prompt',
  'render_cover','store'])[k],
  CASE WHEN j.status = 'failed' AND k = n THEN 'failed' ELSE 'succeeded' END,
  (ARRAY['OpenRouter','Songsmith','Suno','OpenRouter','NanoBanana','Songsmith'])[k], NULL,
  j.started_at + (k - 1) * interval '30 seconds',
  j.started_at + (k - 1) * interval '30 seconds'
    + ((ARRAY[3, 0.01, 45, 2, 12, 0.2])[k] * (0.5 + random())) * interval '1 second'
FROM (SELECT id, status, started_at, CASE status WHEN 'completed' THEN 6
        WHEN 'failed' THEN array_position(ARRAY['write_options','choose_option','render_audio',
          'write_image_prompt','render_cover','store'], error_step) ELSE 2 END AS n FROM jobs) j
CROSS JOIN LATERAL generate_series(1, j.n) k
"""
INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename IN ('jobs', 'job_events') AND indexdef NOT LIKE 'CREATE UNIQUE%'
"""


def scratch_database() -> tuple[str, str]:
    name = f"songsmith_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return name, f"{base}/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(deps: Dependencies) -> dict[str, float]:
    timings: dict[str, float] = {}
    with deps.engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        # Secondary indexes are dropped for the bulk load and rebuilt after (same definitions).
        indexes = conn.execute(text(INDEXES)).all()
        for name, _definition in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        for label, sql in (("users", SEED_USERS), ("jobs", SEED_JOBS), ("events", SEED_EVENTS)):
            started = time.perf_counter()
            conn.execute(text(sql), {"users": USERS, "jobs": JOBS})
            timings[label] = time.perf_counter() - started
            _say(f"seeded {label} in {timings[label]:.1f} s")
        started = time.perf_counter()
        for _name, definition in indexes:
            conn.execute(text(definition))
        timings["indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    with deps.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    timings["vacuum analyze"] = time.perf_counter() - started
    return timings


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Captured:
    """The SQL statements one call runs, to EXPLAIN them afterwards with the same parameters."""

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.statements: list[tuple[str, Any]] = []

    def __enter__(self) -> Captured:
        event.listen(self.deps.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.deps.engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_a: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.statements.append((statement, params))


def explain(deps: Dependencies, statement: str, params: Any) -> list[str]:
    with deps.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")  # as core.stats runs them
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).all()
    return [r[0] for r in rows]


def index_use(plan: list[str]) -> str:
    nodes = [
        line.strip().removeprefix("->").strip().split("  (")[0]
        for line in plan
        if "Scan" in line and ("Index" in line or "Seq" in line or "Bitmap" in line)
    ]
    return "; ".join(dict.fromkeys(nodes)) or "no scans"


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()  # warm the cache and the connection pool
    if time.perf_counter() - started > 1.0:  # far over target: one more run is enough
        started = time.perf_counter()
        result = fn()
        return _since(started), result
    samples = []
    result = None
    for _ in range(REPEAT):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def cases(deps: Dependencies, admin: Actor, analyst: Actor) -> list[tuple[str, float, Callable[[], Any]]]:
    now = deps.clock()
    day = stats.make_filter(now, "Last 24 hours")
    week = stats.make_filter(now, "Last 7 days")
    month = stats.make_filter(now, "Last 30 days")
    model_day = stats.make_filter(now, "Last 24 hours", "openai/gpt-4o")
    out: list[tuple[str, float, Callable[[], Any]]] = [
        (
            "Jobs list: one user, status=completed, newest 50",
            LIST_TARGET_MS,
            lambda: list_jobs(deps, analyst, status="completed", limit=50),
        ),
        (
            "Jobs list: one user, all statuses, newest 50",
            LIST_TARGET_MS,
            lambda: list_jobs(deps, analyst, limit=50),
        ),
    ]
    for scope, actor in (("admin", admin), ("analyst", analyst)):
        for label, flt in (("24 h", day), ("7 d", week), ("30 d", month), ("24 h, one model", model_day)):
            for name, fn in (
                ("success rate", stats.success_rate),
                ("step durations", stats.step_durations),
                ("provider latency", stats.provider_latency),
                ("failures", stats.failures),
            ):
                out.append((f"{name} ({scope}, {label})", METRICS_TARGET_MS, _bind(fn, deps, actor, flt)))
        out.append((f"live now ({scope})", METRICS_TARGET_MS, lambda a=actor: stats.in_flight(deps, a)))
    for label, flt in (("24 h", day), ("30 d", month)):
        out.append(
            (
                f"jobs per user (admin, {label})",
                METRICS_TARGET_MS,
                _bind(stats.jobs_per_user, deps, admin, flt),
            )
        )
    return out


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _bind(
    fn: Callable[..., Any], deps: Dependencies, actor: Actor, flt: stats.StatsFilter
) -> Callable[[], Any]:
    return lambda: fn(deps, actor, flt)


def measure(deps: Dependencies) -> list[dict[str, Any]]:
    admin, analyst = ACTORS
    rows = []
    for name, target, fn in cases(deps, admin, analyst):
        ms, _ = time_call(fn)
        with Captured(deps) as cap:
            fn()
        plans = [explain(deps, stmt, params) for stmt, params in cap.statements]
        sql_ms = sum(_execution_ms(p) for p in plans)
        uses = " | ".join(index_use(p) for p in plans)
        rows.append({"name": name, "ms": ms, "sql_ms": sql_ms, "target": target, "plan": uses})
        verdict = "ok" if ms < target else "MISS"
        _say(
            f"{ms:8.1f} ms (sql {sql_ms:7.1f} ms) target {target:.0f} ms {verdict}  {name}\n           {uses}"
        )
    return rows


# user2 is the busiest analyst: ~1/6 of all jobs.
ACTORS = (Actor(id=1, username="user1", role="admin"), Actor(id=2, username="user2", role="analyst"))


def measure_raw(deps: Dependencies) -> dict[str, float]:
    """Each Metrics query once on the raw tables alone, as before the first rollup refresh."""
    out = {}
    for name, _target, fn in cases(deps, *ACTORS):
        if name.startswith("Jobs list") or name.startswith("live now"):
            continue  # they never read the rollups
        started = time.perf_counter()
        fn()
        out[name] = _since(started)
        _say(f"{out[name]:8.1f} ms  raw tables  {name}")
    return out


def build_rollups(deps: Dependencies) -> dict[str, Any]:
    """The first (full) refresh, then one incremental refresh after a minute's worth of changes."""
    full = rollup.refresh(deps)
    _say(f"rollup refresh, first full build: {full.seconds:.1f} s ({full.hours} hours)")
    with deps.engine.begin() as conn:  # ~a minute of work: the newest jobs move on, a few old ones finish
        conn.execute(
            text(
                "UPDATE jobs SET updated_at = now() WHERE id IN (SELECT id FROM jobs ORDER BY created_at "
                "DESC LIMIT 50) OR id IN (SELECT id FROM jobs WHERE created_at < now() - interval '2 days' "
                "LIMIT 5)"
            )
        )
    incremental = rollup.refresh(deps)
    _say(f"rollup refresh, incremental: {incremental.seconds * 1000:.0f} ms ({incremental.hours} hours)")
    with deps.engine.connect() as conn:
        sizes = conn.execute(
            text(
                "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) "
                "FROM pg_stat_user_tables WHERE relname IN ('job_rollup', 'step_rollup') ORDER BY relname"
            )
        ).all()
    return {"full": full, "incremental": incremental, "sizes": sizes}


def render_pages(url: str) -> dict[str, float]:
    """Seconds for streamlit's AppTest to run app.py and render each page as the admin (user1)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ui import state

    with scratch_redis() as redis_url:
        env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        st.cache_resource.clear()
        out: dict[str, float] = {}
        try:
            at = AppTest.from_file(APP, default_timeout=300)
            admin = ACTORS[0]
            at.session_state[state.USER_ID] = admin.id
            at.session_state[state.USERNAME] = admin.username
            at.session_state[state.ROLE] = admin.role
            steps: list[tuple[str, Callable[[], Any]]] = [("app start, Submit page", at.run)]
            for page, label in (("pages/jobs.py", "Jobs"), ("pages/metrics.py", "Metrics, last 24 hours")):
                steps.append((f"{label} (first)", lambda p=page: at.switch_page(p).run()))
                steps.append((f"{label} (again)", lambda p=page: at.switch_page(p).run()))
            steps.append(
                (
                    "Metrics, last 30 days",
                    lambda: at.selectbox(key="metrics.range").select("Last 30 days").run(),
                )
            )
            for label, step in steps:
                started = time.perf_counter()
                step()
                out[label] = _since(started)
                problem = " EXCEPTION" if at.exception else ""
                _say(f"{out[label]:8.1f} ms  AppTest render  {label}{problem}")
        finally:
            st.cache_resource.clear()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return out


def _execution_ms(plan: list[str]) -> float:
    for line in plan:
        if line.startswith("Execution Time:"):
            return float(line.split()[2])
    return 0.0


def run(report: Any) -> None:
    name, url = scratch_database()
    _say(f"scratch database {name}: seeding {JOBS:,} jobs")
    deps = None
    try:
        upgrade(url)
        deps = build_dependencies(load_settings(database_url=url))
        timings = seed(deps)
        with deps.engine.connect() as conn:
            n_jobs = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
            n_events = conn.execute(text("SELECT count(*) FROM job_events")).scalar_one()
        raw = measure_raw(deps)
        built = build_rollups(deps)
        rows = measure(deps)
        renders = render_pages(url)
    finally:
        if deps is not None:
            deps.close()
        drop_database(name)
    misses = [r for r in rows if r["ms"] >= r["target"]]
    full, incremental = built["full"], built["incremental"]
    lines = [
        f"Seeded {n_jobs:,} jobs and {n_events:,} step events over 30 days, {USERS} users (one owns ~1/6) "
        f"with INSERT ... SELECT generate_series: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        + ".",
        "",
        f"Rollups (core/rollup.py): first full build **{full.seconds:.1f} s** ({full.hours} hours); an "
        f"incremental refresh after touching 55 jobs (50 newest, 5 older than 2 days) "
        f"**{incremental.seconds * 1000:.0f} ms** ({incremental.hours} hours recomputed). Rows: "
        + ", ".join(f"{n} {rows_:,} ({size})" for n, rows_, size in built["sizes"])
        + ".",
        "",
        f"`raw` is one run of the query on the raw tables alone (before the first refresh); `median` the "
        f"median of {REPEAT} runs after a warm-up with the rollups built; both are wall time through core "
        "(SQL + pandas). `sql` is PostgreSQL's own execution time from EXPLAIN ANALYZE.",
        "",
        "| query | raw ms | median ms | sql ms | target ms | result | plan (scans) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        ok = "ok" if r["ms"] < r["target"] else "**miss**"
        before = f"{raw[r['name']]:.0f}" if r["name"] in raw else "—"
        lines.append(
            f"| {r['name']} | {before} | {r['ms']:.1f} | {r['sql_ms']:.1f} | {r['target']:.0f} | {ok} "
            f"| {r['plan']} |"
        )
    lines.append("")
    lines.append(
        f"{len(rows) - len(misses)} of {len(rows)} within target."
        + (" Misses: " + "; ".join(r["name"] for r in misses) + "." if misses else "")
    )
    lines += [
        "",
        "AppTest (streamlit.testing) rendering app.py as the admin on this database, one run each:",
        "",
    ]
    lines += ["| page | ms |", "| --- | ---: |"]
    lines += [f"| {label} | {ms:.0f} |" for label, ms in renders.items()]
    report.add("Dashboard at scale", "\n".join(lines))
