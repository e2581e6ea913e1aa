"""Batch services against real PostgreSQL and Redis: preview, all-or-nothing create, progress, control."""

from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select, text

from core import batches
from core.batches import BatchRow
from core.errors import NotFound, UserError
from core.models import Batch, Job, JobEvent
from core.queueing import make_queues
from tests.conftest import run_until_done
from tests.factories import make_user

MUSICCAPS = Path("/work/shared/data/musiccaps-public.csv")


def count(deps, model, *where) -> int:
    with deps.sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_preview_reports_problems_with_row_numbers(deps):
    rows = [
        BatchRow(2, "A jazz ballad"),
        BatchRow(3, "   "),
        BatchRow(4, "x" * (deps.settings.concept_max_chars + 1)),
        BatchRow(5, "bell\x07 song"),
        BatchRow(6, "a  JAZZ ballad "),
        BatchRow(7, "Polka for robots"),
    ]
    p = batches.preview(deps, rows)
    assert p.total_rows == 6 and p.valid_rows == 2
    assert [(x.row, x.kind) for x in p.problems] == [
        (3, "empty"),
        (4, "too_long"),
        (5, "control_chars"),
        (6, "duplicate"),
    ]
    assert "row 2" in p.problems[-1].message
    assert p.concepts == ["A jazz ballad", "Polka for robots"]


def test_create_refuses_problem_rows_unless_skipped(deps):
    alice = make_user(deps)
    with pytest.raises(UserError, match="row 2"):
        batches.create_batch(deps, alice, ["ok concept", ""], name="b")
    assert count(deps, Batch) == 0
    made = batches.create_batch(deps, alice, ["ok concept", ""], name="b", skip_problems=True)
    assert made.total == 1 and made.counts["pending"] == 1


def test_create_batch_inserts_all_jobs_and_enqueues_them_on_the_batch_queue(deps):
    alice = make_user(deps)
    concepts = [f"concept number {i}" for i in range(300)]
    made = batches.create_batch(deps, alice, concepts, name="Three hundred", idempotency_key="k1")
    assert made.total == 300 and made.counts["pending"] == 300 and made.active
    assert count(deps, Job, Job.batch_id == made.id, Job.priority == "batch") == 300
    assert count(deps, JobEvent) == 300
    assert deps.queues.batch.count == 300 and deps.queues.interactive.count == 0
    with deps.sessionmaker() as s:
        stored = set(s.scalars(select(Job.rq_job_id).where(Job.batch_id == made.id)))
    assert stored == set(deps.queues.batch.job_ids)
    again = batches.create_batch(deps, alice, concepts, name="Three hundred", idempotency_key="k1")
    assert again.id == made.id and count(deps, Job) == 300 and deps.queues.batch.count == 300
    page = __import__("core.jobs", fromlist=["list_jobs"]).list_jobs(deps, alice, batch_id=made.id, limit=3)
    assert [j.concept for j in page.items] == [
        "concept number 299",
        "concept number 298",
        "concept number 297",
    ]


def test_failure_mid_transaction_leaves_no_batch_no_jobs_nothing_enqueued(deps):
    alice = make_user(deps)
    concepts = [f"row {i}" for i in range(500)] + ["poison row"] + [f"late {i}" for i in range(100)]
    with deps.engine.begin() as conn:
        conn.execute(text("ALTER TABLE jobs ADD CONSTRAINT inject_failure CHECK (concept <> 'poison row')"))
    try:
        with pytest.raises(Exception, match="inject_failure"):
            batches.create_batch(deps, alice, concepts, name="doomed")
    finally:
        with deps.engine.begin() as conn:
            conn.execute(text("ALTER TABLE jobs DROP CONSTRAINT inject_failure"))
    assert count(deps, Batch) == 0 and count(deps, Job) == 0 and count(deps, JobEvent) == 0
    assert deps.queues.batch.count == 0 and deps.redis.dbsize() == 0


def test_jobs_committed_when_redis_is_down_are_left_pending_for_the_reconciler(deps):
    alice = make_user(deps)
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    broken = dataclasses.replace(deps, redis=dead, queues=make_queues(deps.settings, dead))
    made = batches.create_batch(broken, alice, ["one", "two"], name="no redis")
    assert made.counts["pending"] == 2
    with deps.sessionmaker() as s:
        jobs = s.scalars(select(Job).where(Job.batch_id == made.id)).all()
    assert all(j.rq_job_id and j.next_run_at for j in jobs)
    assert deps.queues.batch.count == 0


def test_owner_checks_on_every_batch_function(deps):
    alice, bob = make_user(deps, "alice"), make_user(deps, "bob")
    admin = make_user(deps, "root", admin=True)
    made = batches.create_batch(deps, alice, ["mine"], name="alice's")
    for fn in (
        batches.get_batch,
        batches.retry_failed_in_batch,
        batches.cancel_remaining,
        batches.results_csv,
    ):
        with pytest.raises(NotFound):
            fn(deps, bob, made.id)
        with pytest.raises(NotFound):
            fn(deps, bob, "not-a-uuid")
    assert batches.list_batches(deps, bob) == []
    assert [b.id for b in batches.list_batches(deps, admin)] == [made.id]
    assert batches.get_batch(deps, admin, made.id).owner == "alice"


def test_cancel_remaining_then_retry_failed(deps):
    alice = make_user(deps)
    made = batches.create_batch(deps, alice, [f"c{i}" for i in range(5)], name="ctl")
    with deps.sessionmaker.begin() as s:
        first = s.scalars(select(Job).where(Job.batch_id == made.id).order_by(Job.created_at)).first()
        first.status, first.error_step, first.error_message = "failed", "render_audio", "boom"
        first.music_task_id = "t-1"
    res = batches.cancel_remaining(deps, alice, made.id)
    assert res.affected == 4
    assert batches.get_batch(deps, alice, made.id).counts == {
        "pending": 0,
        "running": 0,
        "completed": 0,
        "failed": 1,
        "cancelled": 4,
    }
    before = deps.queues.batch.count
    res = batches.retry_failed_in_batch(deps, alice, made.id)
    assert res.affected == 1 and deps.queues.batch.count == before + 1
    with deps.sessionmaker() as s:
        job = s.get(Job, first.id)
        assert (job.status, job.current_step, job.attempt, job.music_task_id) == (
            "pending",
            "render_audio",
            2,
            None,
        )
        assert job.rq_job_id in deps.queues.batch.job_ids


def test_batch_runs_to_completion_and_results_csv_neutralises_formulas(deps):
    alice = make_user(deps)
    made = batches.create_batch(deps, alice, ['=HYPERLINK("x")', "@SUM(A1)", "calm lake"], name="r")
    with deps.sessionmaker() as s:
        ids = list(s.scalars(select(Job.id).where(Job.batch_id == made.id)))
    statuses = run_until_done(deps, ids, timeout=60)
    assert set(statuses.values()) == {"completed"}
    progress = batches.get_batch(deps, alice, made.id)
    assert progress.done == 3 and progress.fraction == 1.0 and not progress.active
    assert progress.rate_per_minute and progress.eta_seconds == 0.0
    data = batches.results_csv(deps, alice, made.id)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:6] == ["concept", "status", "title", "audio", "image", "error"]
    assert [r[0] for r in rows[1:]] == ['\'=HYPERLINK("x")', "'@SUM(A1)", "calm lake"]
    assert all(r[1] == "completed" and r[2] and r[3] and r[4] for r in rows[1:])


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_neutralise_formula_cells(value):
    assert batches.neutralise(value) == "'" + value
    assert batches.neutralise("plain") == "plain"


def test_musiccaps_end_to_end(deps):
    alice = make_user(deps)
    table = batches.read_upload(deps, MUSICCAPS.read_bytes(), MUSICCAPS.name)
    assert len(table.rows) == 5521 and table.columns[table.suggested] == "caption"
    rows = batches.rows_of(table, table.suggested)
    p = batches.preview(deps, rows)
    assert p.total_rows == 5521
    assert p.valid_rows + len(p.problems) == 5521 and p.valid_rows > 5400
    assert all(x.row >= 2 for x in p.problems)
    made = batches.create_batch(
        deps, alice, rows, name="MusicCaps", skip_problems=True, source_filename="m.csv"
    )
    assert made.total == p.valid_rows
    assert count(deps, Job, Job.batch_id == made.id) == p.valid_rows
    assert deps.queues.batch.count == p.valid_rows


def test_row_limit_refuses_whole_batch(deps):
    alice = make_user(deps)
    small = dataclasses.replace(deps, settings=deps.settings.model_copy(update={"batch_max_rows": 3}))
    with pytest.raises(UserError, match="limit is 3 rows"):
        batches.create_batch(small, alice, ["a", "b", "c", "d"], name="x")
    assert count(deps, Batch) == 0 and uuid  # nothing written
