"""Workers killed mid-step and Redis losing its queues: every job still completes, paid once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.jobs import get_job, submit_job
from core.models import Job
from core.reconciler import reconcile
from tests.conftest import override_deps, run_until_done, settings_env, sim_control
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def start_worker(settings, log: Path, worker_class: str = "inline") -> subprocess.Popen:
    env = settings_env(settings, LOG_JSON="true", WORKER_HEARTBEAT_SECONDS="1", WORKER_CLASS=worker_class)
    return subprocess.Popen(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def job_row(deps, job_id) -> Job:
    with deps.sessionmaker() as s:
        return s.scalars(select(Job).where(Job.id == job_id)).one()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_a_sigkilled_work_horse_is_resumed_and_the_song_is_paid_once(deps, sim, settings, tmp_path):
    alice = make_user(deps)
    # The first status check hangs in the work-horse long enough to kill it there.
    sim_control(sim, "/_sim/faults", {"faults": [{"endpoint": "suno_poll", "kind": "slow", "seconds": 4}]})
    worker = start_worker(settings, tmp_path / "worker.log", "fork")
    try:
        job = submit_job(deps, alice, "A punk song about a broken kettle")
        wait_for(lambda: job_row(deps, job.id).music_task_id, 30, "the Suno task id to be committed")
        horse = wait_for(lambda: children(worker.pid), 10, "a work-horse")
        time.sleep(0.5)
        os.kill(horse[0], signal.SIGKILL)
        wait_for(lambda: job_row(deps, job.id).status in ("completed", "failed"), 60, "the job to finish")
    finally:
        stop(worker)
    detail = get_job(deps, alice, job.id)
    assert detail.status == "completed", detail.error_message
    stats = sim_control(sim, "/_sim/stats", method="GET")
    assert stats["submissions"]["music"] == 1, "resumed polling the same paid task"
    assert detail.audio is not None and detail.image is not None


@pytest.mark.parametrize("worker_class", ["inline", "fork"])
def test_a_whole_worker_killed_mid_step_is_noticed_and_its_job_completes(
    deps, sim, settings, tmp_path, worker_class
):
    alice = make_user(deps)
    sim_control(sim, "/_sim/faults", {"faults": [{"endpoint": "suno_poll", "kind": "slow", "seconds": 5}]})
    fast = settings.model_copy(update={"abandoned_after_seconds": 3.0, "reconcile_grace_seconds": 0.0})
    first = start_worker(fast, tmp_path / "worker1.log", worker_class)
    try:
        job = submit_job(deps, alice, "A drum and bass track about a night bus")
        wait_for(lambda: job_row(deps, job.id).music_task_id, 30, "the Suno task id")

        def polling() -> bool:  # the first status check holds the lease while the slow poll hangs
            row = job_row(deps, job.id)
            return row.lease_owner is not None and row.music_task_id is not None

        wait_for(polling, 10, "a worker mid-poll")
        time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)  # the machine dies: parent and horse at once
        first.wait(10)
    finally:
        stop(first)
    second = start_worker(fast, tmp_path / "worker2.log", worker_class)
    started = time.monotonic()
    try:
        with override_deps(deps, abandoned_after_seconds=3.0, reconcile_grace_seconds=0.0) as d:

            def finished() -> bool:
                reconcile(d)
                return job_row(deps, job.id).status in ("completed", "failed")

            wait_for(finished, 60, "the job to be recovered")
        recovered_in = time.monotonic() - started
    finally:
        stop(second)
    assert job_row(deps, job.id).status == "completed"
    assert recovered_in < 60, "noticed within a minute"
    assert sim_control(sim, "/_sim/stats", method="GET")["submissions"]["music"] == 1


def test_jobs_pending_when_redis_is_flushed_are_re_enqueued_by_the_reconciler(deps, sim):
    alice = make_user(deps)
    jobs = [submit_job(deps, alice, f"A waltz about clock number {i}") for i in range(5)]
    # A few steps run before Redis loses everything (queued, scheduled and started state alike).
    from rq import SimpleWorker

    SimpleWorker(deps.queues.ordered(), connection=deps.redis).work(burst=True, max_jobs=4)
    deps.redis.flushdb()
    assert deps.queues.interactive.count == 0
    with override_deps(deps, reconcile_grace_seconds=0.0) as d:
        report = reconcile(d)
        assert len(report.requeued) == 5
        assert reconcile(d).requeued == [], "a second pass finds nothing to do"
        statuses = run_until_done(d, [j.id for j in jobs], timeout=60)
    assert set(statuses.values()) == {"completed"}
    stats = sim_control(sim, "/_sim/stats", method="GET")
    assert stats["submissions"]["music"] == 5 and stats["submissions"]["image"] == 5


def test_the_reconciler_leaves_healthy_jobs_alone(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, "A march for a tortoise")
    with override_deps(deps, reconcile_grace_seconds=0.0) as d:
        assert reconcile(d).requeued == [], "queued in RQ: nothing to do"
    assert deps.queues.interactive.count == 1
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}


def test_a_scheduled_check_stalled_without_a_scheduler_is_enqueued_directly(deps, sim):
    """RQ's scheduler lock outlives a killed worker by a minute; overdue checks must not wait for it."""
    from datetime import timedelta

    from rq import SimpleWorker
    from sqlalchemy import update

    alice = make_user(deps)
    with override_deps(
        deps, poll_initial_seconds=30.0, poll_max_seconds=30.0, reconcile_grace_seconds=0.0
    ) as d:
        job = submit_job(d, alice, "A bossa nova about a stalled scheduler")
        # Run without RQ's scheduler: the first Suno check lands in the scheduled registry and stays.
        for _ in range(4):
            SimpleWorker(d.queues.ordered(), connection=d.redis).work(burst=True)
        row = job_row(d, job.id)
        assert row.current_step == "render_audio" and row.music_task_id
        assert d.queues.interactive.scheduled_job_registry.count == 1
        old_delivery = row.rq_job_id
        with d.sessionmaker.begin() as s:  # the check fell due a minute ago
            due = d.clock() - timedelta(seconds=60)
            s.execute(update(Job).where(Job.id == job.id).values(next_run_at=due))
        report = reconcile(d)
        assert report.reasons == {str(job.id): "stalled"}
        assert job_row(d, job.id).rq_job_id != old_delivery
        assert d.queues.interactive.scheduled_job_registry.count == 0, "the replaced check left RQ"
    statuses = run_until_done(deps, [job.id], timeout=60)  # the old scheduled entry is superseded
    assert statuses == {str(job.id): "completed"}
    assert sim_control(sim, "/_sim/stats", method="GET")["submissions"]["music"] == 1
