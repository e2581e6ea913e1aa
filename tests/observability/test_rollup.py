"""Metric rollups (core/rollup.py) and the Metrics queries that read them, on PostgreSQL and SQLite.

Jobs and step runs are written straight into the tables with known times and durations, under a
clock the test moves, so every hour boundary is where the test puts it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, func, select, text, update

from core import rollup, stats
from core.cli import main
from core.config import load_settings
from core.deps import Dependencies, build_dependencies
from core.jobs import submit_job
from core.migrate import upgrade
from core.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    RUNNING,
    SPAN_DAY,
    SPAN_HOUR,
    Job,
    JobEvent,
    JobRollup,
    StepRollup,
)
from core.users import Actor
from tests.conftest import run_until_done, work
from tests.factories import make_user
from tests.lifecycle.test_lifecycle_cli import use_settings_env

NOW = datetime(2026, 6, 10, 12, 34, 56, tzinfo=UTC)
MODELS = ("openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet")
STEPS = (
    ("write_options", "OpenRouter"),
    ("choose_option", "Songsmith"),
    ("render_audio", "Suno"),
    ("write_image_prompt", "OpenRouter"),
    ("render_cover", "NanoBanana"),
    ("store", "Songsmith"),
)
REASONS = (
    "Suno had a server error (HTTP 500)",
    "NanoBanana refused the content (HTTP 400): flagged; edit the concept",
    "OpenRouter kept failing after 5 attempts (last: HTTP 503): busy",
)
RANGES = ("Last hour", "Last 24 hours", "Last 7 days", "Last 30 days")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request: pytest.FixtureRequest, deps: Dependencies, tmp_path: Path) -> Iterator[Dependencies]:
    """The suite's PostgreSQL Dependencies, or the same settings on a migrated SQLite file; clock at NOW."""
    clock = Clock(NOW)
    if request.param == "postgresql":
        yield dataclasses.replace(deps, clock=clock)
        return
    url = f"sqlite:///{tmp_path / 'rollup.db'}"
    upgrade(url)
    other = build_dependencies(load_settings(**{**dict(deps.settings), "database_url": url}), clock=clock)
    yield other
    other.close()


def add_job(
    deps: Dependencies,
    owner: Actor,
    created: datetime,
    *,
    status: str = COMPLETED,
    model: str = MODELS[0],
    runs: list[float | None] | None = None,
    error_step: str | None = None,
    error: str | None = None,
) -> uuid.UUID:
    """A job and one step run per duration in `runs` (None: still running), 40 s apart."""
    job_id = uuid.uuid4()
    runs = [1.0] * len(STEPS) if runs is None else runs
    with deps.sessionmaker.begin() as s:
        s.add(
            Job(
                id=job_id,
                user_id=owner.id,
                concept="c",
                status=status,
                llm_model=model,
                correlation_id="corr",
                error_step=error_step,
                error_message=error,
                created_at=created,
                updated_at=created + timedelta(seconds=40 * len(runs)),
            )
        )
        for k, seconds in enumerate(runs):
            step, service = STEPS[k]
            start = created + timedelta(seconds=40 * k)
            end = None if seconds is None else start + timedelta(seconds=seconds)
            s.add(
                JobEvent(
                    job_id=job_id,
                    attempt=1,
                    kind="step",
                    step=step,
                    service=service,
                    status="running" if end is None else "succeeded",
                    started_at=start,
                    finished_at=end,
                )
            )
    return job_id


def seed(deps: Dependencies, owners: list[Actor], n: int = 160) -> None:
    """n jobs over the last 3 days: every status, both models, failures with reasons, on hour edges too."""
    rng = random.Random(7)
    for i in range(n):
        created = NOW - timedelta(seconds=rng.randint(1, 3 * 86400))
        if i % 10 == 0:  # exactly on an hour boundary
            created = created.replace(minute=0, second=0, microsecond=0)
        status = (COMPLETED, COMPLETED, COMPLETED, FAILED, CANCELLED, RUNNING)[i % 6]
        durations = [rng.lognormvariate(math.log(d), 0.6) for d in (3, 0.005, 45, 2, 12, 0.2)]
        runs: list[float | None] = list(durations)
        error_step = error = None
        if status == FAILED:
            stop = 1 + i % 5
            runs, error_step, error = runs[:stop], STEPS[stop - 1][0], REASONS[i % 3]
        elif status in (CANCELLED, RUNNING):
            runs = [*runs[:2], None]
        add_job(
            deps,
            owners[i % len(owners)],
            created,
            status=status,
            model=MODELS[i % 2],
            runs=runs,
            error_step=error_step,
            error=error,
        )


def frames(deps: Dependencies, actor: Actor) -> dict[str, pd.DataFrame]:
    out = {}
    for label in RANGES:
        for model in (None, MODELS[1]):
            f = stats.make_filter(deps.clock(), label, model)
            key = f"{label}/{model}"
            out[f"success {key}"] = stats.success_rate(deps, actor, f)
            out[f"steps {key}"] = stats.step_durations(deps, actor, f)
            out[f"providers {key}"] = stats.provider_latency(deps, actor, f)
            out[f"failures {key}"] = stats.failures(deps, actor, f)
            out[f"users {key}"] = stats.jobs_per_user(deps, actor, f)
    return out


def assert_same(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    assert before.keys() == after.keys()
    for name, frame in before.items():
        pd.testing.assert_frame_equal(
            frame.reset_index(drop=True),
            after[name].reset_index(drop=True),
            check_dtype=False,
            rtol=1e-9,
            obj=name,
        )


def rollup_rows(deps: Dependencies) -> list[tuple]:
    with deps.engine.connect() as conn:
        jobs = conn.execute(select(JobRollup.__table__).order_by(*JobRollup.__table__.primary_key)).all()
        steps = conn.execute(select(StepRollup.__table__).order_by(*StepRollup.__table__.primary_key)).all()
    return [tuple(r) for r in jobs] + [tuple(r) for r in steps]


def test_rollups_give_the_same_frames_as_the_raw_tables(db):
    alice, bob = make_user(db), make_user(db, "bob")
    root = make_user(db, "root", admin=True)
    seed(db, [alice, bob, root])
    raw = {a.username: frames(db, a) for a in (alice, bob, root)}
    assert stats.refreshed_at(db) is None  # never refreshed: everything above came from the raw tables

    report = rollup.refresh(db)
    assert report.full and report.hours > 60 and not report.skipped
    for actor in (alice, bob, root):
        assert_same(raw[actor.username], frames(db, actor))
    week = stats.make_filter(NOW, "Last 7 days")
    assert stats.success_rate(db, root, week)["jobs"].sum() == 160  # independent count: every job
    assert stats.failures(db, root, week)["jobs"].sum() == sum(1 for i in range(160) if i % 6 == 3)

    # Hours before the refresh really come from the rollups: remove their raw rows, nothing changes.
    with db.engine.begin() as conn:
        old = (Job.created_at >= NOW - timedelta(hours=23), Job.created_at < NOW - timedelta(hours=2))
        assert conn.execute(delete(Job).where(*old)).rowcount > 20
    for actor in (alice, bob, root):
        assert_same(raw[actor.username], frames(db, actor))


def test_day_rows_are_the_sum_of_their_hour_rows(db):
    alice = make_user(db)
    seed(db, [alice], n=60)
    rollup.refresh(db)
    with db.engine.connect() as conn:
        for table, value in ((JobRollup.__table__, "jobs"), (StepRollup.__table__, "runs")):
            by_span = select(table.c.span, func.sum(table.c[value])).group_by(table.c.span)
            sums = dict(conn.execute(by_span).all())
            assert sums[SPAN_DAY] == sums[SPAN_HOUR] > 0


def test_a_job_finished_after_the_refresh_shows_before_the_next_one(db):
    alice = make_user(db)
    rollup.refresh(db)
    db.clock.now = NOW + timedelta(minutes=3)
    add_job(db, alice, NOW + timedelta(minutes=1), runs=[2.0])
    f = stats.make_filter(db.clock(), "Last 24 hours")
    assert stats.success_rate(db, alice, f)[["jobs", "completed"]].sum().tolist() == [1, 1]
    steps = stats.step_durations(db, alice, f)
    assert steps["step"].tolist() == ["write_options"] and steps["runs"].tolist() == [1]
    assert steps["max"].iloc[0] == pytest.approx(2.0, rel=1e-3)


def test_an_old_job_finishing_late_is_picked_up_by_the_next_refresh(db):
    alice = make_user(db)
    created = NOW - timedelta(hours=5)
    job_id = add_job(db, alice, created, status=RUNNING, runs=[3.0, 0.01, None])
    rollup.refresh(db)
    f = stats.make_filter(NOW + timedelta(minutes=1), "Last 24 hours")
    assert stats.success_rate(db, alice, f)["completed"].sum() == 0
    assert "render_audio" not in stats.step_durations(db, alice, f)["step"].tolist()

    db.clock.now = NOW + timedelta(seconds=30)  # the render finished five hours after it started
    with db.engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(status=COMPLETED, updated_at=db.clock.now))
        conn.execute(
            update(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.finished_at.is_(None))
            .values(finished_at=db.clock.now, status="succeeded")
        )
    report = rollup.refresh(db)
    assert not report.full and report.hours >= 1
    assert stats.success_rate(db, alice, f)["completed"].sum() == 1
    audio = stats.step_durations(db, alice, f).set_index("step").loc["render_audio"]
    assert audio["runs"] == 1 and audio["max"] == pytest.approx(5 * 3600 - 80 + 30, rel=1e-3)


def test_refresh_again_changes_nothing(db):
    alice, bob = make_user(db), make_user(db, "bob")
    seed(db, [alice, bob], n=60)
    rollup.refresh(db)
    first = rollup_rows(db)
    db.clock.now = NOW + timedelta(seconds=20)
    assert not rollup.refresh(db).full
    assert rollup_rows(db) == first
    db.clock.now = NOW + timedelta(hours=2)
    rollup.refresh(db)
    assert rollup_rows(db) == first


def test_each_analyst_sees_only_their_own_jobs(db):
    alice, bob = make_user(db), make_user(db, "bob")
    root = make_user(db, "root", admin=True)
    for hours_ago in (30, 10, 3):
        add_job(db, alice, NOW - timedelta(hours=hours_ago), runs=[1.0, 0.01, 40.0])
    add_job(
        db, bob, NOW - timedelta(hours=4), status=FAILED, runs=[2.0], error_step="write_options", error="x"
    )
    rollup.refresh(db)
    db.clock.now = NOW + timedelta(minutes=1)
    add_job(db, bob, NOW, runs=[1.0])  # in the live tail
    f = stats.make_filter(db.clock(), "Last 7 days")
    assert stats.success_rate(db, alice, f)[["jobs", "completed", "failed"]].sum().tolist() == [3, 3, 0]
    assert stats.success_rate(db, bob, f)[["jobs", "completed", "failed"]].sum().tolist() == [2, 1, 1]
    assert stats.success_rate(db, root, f)["jobs"].sum() == 5
    assert stats.failures(db, alice, f).empty and stats.failures(db, bob, f)["jobs"].tolist() == [1]
    alice_steps = stats.step_durations(db, alice, f).set_index("step")["runs"].to_dict()
    assert alice_steps == {"choose_option": 3, "render_audio": 3, "write_options": 3}
    assert stats.step_durations(db, bob, f).set_index("step")["runs"].to_dict() == {"write_options": 2}
    assert stats.jobs_per_user(db, alice, f).empty
    users = stats.jobs_per_user(db, root, f)
    assert users.values.tolist() == [["alice", 3, 3, 0], ["bob", 2, 1, 1]]


def test_percentiles_are_within_one_bucket_of_numpys(db):
    alice = make_user(db)
    rng = np.random.default_rng(3)
    audio = rng.lognormal(np.log(45), 0.5, 600)
    llm = rng.lognormal(np.log(3), 1.0, 600)
    start = NOW - timedelta(hours=20)
    job_id = add_job(db, alice, start, runs=[])
    with db.sessionmaker.begin() as s:
        for i, (a, b) in enumerate(zip(audio, llm, strict=True)):
            at = start + timedelta(seconds=60 * i)
            for step, seconds in (("render_audio", a), ("write_options", b)):
                end = at + timedelta(seconds=float(seconds))
                s.add(
                    JobEvent(
                        job_id=job_id,
                        attempt=1,
                        kind="step",
                        step=step,
                        status="ok",
                        started_at=at,
                        finished_at=end,
                    )
                )
    rollup.refresh(db)
    steps = stats.step_durations(db, alice, stats.make_filter(NOW, "Last 24 hours")).set_index("step")
    ratio = 2 ** (1 / rollup.BUCKETS_PER_OCTAVE)
    for step, values in (("render_audio", audio), ("write_options", llm)):
        row = steps.loc[step]
        assert row["runs"] == len(values)
        assert row["max"] == pytest.approx(values.max(), rel=1e-4)
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-4)
        for q, col in ((50, "p50"), (95, "p95")):
            assert 1 / ratio <= row[col] / np.percentile(values, q) <= ratio, (step, col)


def test_quantile_reads_a_histogram():
    counts = [0] * len(rollup.BUCKET_COLUMNS)
    assert math.isnan(rollup.quantile(counts, 0.5, 0.0))
    counts[0] = 10  # all under 10 ms: linear inside [0, 10 ms), never above the maximum
    assert rollup.quantile(counts, 0.5, 0.004) == pytest.approx(0.002)
    assert rollup.quantile(counts, 1.0, 0.004) == pytest.approx(0.004)
    counts = [0] * len(rollup.BUCKET_COLUMNS)
    counts[-1] = 4  # the open-ended bucket ends at the maximum
    assert rollup.EDGES[-1] <= rollup.quantile(counts, 0.5, 9000.0) <= 9000.0
    assert rollup.quantile(counts, 1.0, 9000.0) == pytest.approx(9000.0)


def test_empty_database_refreshes_and_shows_empty_frames(db):
    root = make_user(db, "root", admin=True)
    for _ in range(2):
        report = rollup.refresh(db)
        assert report.hours == 0 and not report.skipped
    f = stats.make_filter(NOW, "Last 30 days")
    assert stats.success_rate(db, root, f).empty and stats.step_durations(db, root, f).empty
    assert stats.provider_latency(db, root, f).empty and stats.failures(db, root, f).empty
    assert stats.jobs_per_user(db, root, f).empty
    assert list(stats.step_durations(db, root, f).columns) == ["step", "runs", "p50", "p95", "mean", "max"]


def test_a_second_refresh_while_one_runs_is_skipped(deps):
    alice = make_user(deps)
    add_job(deps, alice, deps.clock() - timedelta(hours=2))
    with deps.engine.connect() as holder, holder.begin():
        holder.execute(text(f"SELECT pg_advisory_xact_lock({rollup.LOCK_KEY})"))
        assert rollup.refresh(deps).skipped
    assert stats.refreshed_at(deps) is None
    assert not rollup.refresh(deps).skipped and stats.refreshed_at(deps) is not None


def test_the_cron_task_refreshes_the_rollups_through_rq(deps):
    alice = make_user(deps)
    add_job(deps, alice, deps.clock() - timedelta(hours=3))
    rq_job = deps.queues.interactive.enqueue("worker.cron.refresh_rollups")  # as worker.cron registers it
    work(deps)
    assert rq_job.get_status(refresh=True) == "finished"
    result = rq_job.return_value()
    assert result["full"] and result["hours"] >= 1 and not result["skipped"]
    f = stats.make_filter(deps.clock(), "Last 24 hours")
    with deps.engine.begin() as conn:  # served from the rollup now: the raw row may go
        conn.execute(delete(Job))
    assert stats.success_rate(deps, alice, f)["completed"].sum() == 1


def test_the_cli_builds_the_rollups_on_demand(deps, sim, settings, monkeypatch, capsys):
    """After an upgrade onto a big database an operator builds them at once, not at cron's first pass."""
    use_settings_env(settings, monkeypatch)
    job = submit_job(deps, make_user(deps), "A polka about a rollup")
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}
    capsys.readouterr()
    assert rollup.refreshed_at(deps) is None
    assert main(["refresh-rollups", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["full"] is True and report["hours"] >= 1 and not report["skipped"]
    assert rollup.refreshed_at(deps) is not None
    assert main(["refresh-rollups"]) == 0
    assert capsys.readouterr().out.startswith("rollups: refresh of ")
