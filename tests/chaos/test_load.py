"""Load: many jobs from 10 threads through the service layer while every fault hits, one after another.

At the end the database, RQ's registries and the simulator's request log must tell the same story.
CHAOS_LOAD_JOBS sets the job count (see README "Chaos suite" for how long 5,000 take here).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from sqlalchemy import func, select

from core.jobs import submit_job
from core.lifecycle import retry_job
from core.models import ACTIVE_STATUSES, COMPLETED, FAILED, Job
from tests.chaos.helpers import (
    LLM_STEPS,
    audit,
    disk_refuses_writes,
    env_int,
    fleet,
    provider_down,
    reconciling,
    redis_loses_everything,
    settle,
    step_of,
    terminate_pg_backends,
    wait_for,
)
from tests.conftest import override_deps
from tests.factories import make_user

pytestmark = pytest.mark.slow
JOBS = env_int("CHAOS_LOAD_JOBS", 60)
THREADS = 10
STORAGE_REASONS = ("Could not write the artifact to storage: ", "The stored ")


@pytest.mark.timeout(max(600, JOBS * 6))
def test_load_with_every_fault_in_turn(deps, sim, settings, redis_url, tmp_path, chaos_report):
    outage = min(float(env_int("CHAOS_OUTAGE_SECONDS", 60)), 10.0)
    tuned = {"step_retry_budget": 40, "retry_max_seconds": 2.0}
    settings = settings.model_copy(update=tuned)
    settings.artifact_dir.mkdir(parents=True, exist_ok=True)
    users = [make_user(deps, f"load{i}") for i in range(THREADS)]
    ids: list[uuid.UUID] = []
    extra: list[uuid.UUID] = []  # top-ups submitted when the load drained before a fault
    # The scenario is volume under faults, not slow calls: a 50 ms LLM keeps thousands of jobs moving.
    sim.control("/_sim/config", {"latency": {"llm": 0.05}})
    patience = max(300.0, JOBS * 0.3)  # the queue is FIFO: the first completion follows every first step
    started = time.monotonic()
    with (
        override_deps(deps, **tuned) as d,
        fleet(settings, tmp_path) as workers,
        reconciling(d, 2.0),
    ):

        def submit_all(user) -> list[uuid.UUID]:
            share = JOBS // THREADS + (1 if users.index(user) < JOBS % THREADS else 0)
            return [
                submit_job(d, user, f"Load song {i} for {user.username}", idempotency_key=f"k{i}").id
                for i in range(share)
            ]

        def mid_step(name: str, steps: tuple[str, ...] | None = None) -> list[str]:
            """Wait until `name` executes a step (one of `steps`); when the load has drained, add a job so
            there is a step to interrupt (a fast machine finishes the 60 default jobs before the faults)."""

            def busy() -> list[str]:
                assert workers.procs[name].poll() is None, f"{name} died: {workers.log_tail(name)}"
                running = [r for r in workers.executing(d.redis, name) if not steps or step_of(r) in steps]
                if not running and _drained(d, ids):
                    extra.append(submit_job(d, users[0], f"Top-up song {len(extra)}").id)
                    ids.append(extra[-1])
                return running

            return wait_for(busy, 120, f"{name} mid-step", every=0.02)

        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(submit_all, u) for u in users]
            progress = lambda k: lambda: _completed(d) >= k  # noqa: E731
            wait_for(progress(1), patience, "a first completion", every=0.5)
            terminate_pg_backends(d)
            wait_for(progress(3), patience, "progress after postgres", every=0.5)
            redis_loses_everything(redis_url)
            wait_for(progress(5), patience, "progress after redis", every=0.5)
            with provider_down(sim, outage):
                pass
            for f in futures:
                ids += f.result()
            # After the flush RQ's worker registry no longer lists these workers: "mid-step" is read
            # from each worker's own executions set, which RQ writes again for every step it starts.
            delivery = mid_step("w1")
            workers.sigterm("w1")
            workers.procs["w1"].wait(120)
            workers.start("w1b")
            # In an LLM step: a SIGKILL mid paid submit may cost the one resubmit the contract allows.
            mid_step("w2", LLM_STEPS)
            workers.sigkill_group("w2")
            workers.start("w2b")
            with disk_refuses_writes(settings.artifact_dir):
                time.sleep(3)
        submitted_in = time.monotonic() - started
        assert len(ids) == JOBS + len(extra) and delivery
        for _ in range(3):  # the disk is back: a user retries what failed because of it
            settle(d, ids, len(ids) * 5)
            for job_id, owner in _failed_for_storage(d, ids):
                retry_job(d, next(u for u in users if u.id == owner), job_id)
        final = settle(d, ids, len(ids) * 5)
        took = time.monotonic() - started
        live_workers = {w.name for w in Worker.all(connection=d.redis)}
        tally = audit(d, sim, f"6 load ({JOBS} jobs, all faults)", ids)
        tally.notes.update(
            submitted_in=round(submitted_in, 1), took=round(took, 1), final=dict(final), top_ups=len(extra)
        )
        chaos_report.append(tally)
        leftovers = _rq_story(d, live_workers)
        sim_story = _sim_story(d, sim, ids)
    tally.assert_clean()
    assert leftovers == {"queued": 0, "scheduled": 0, "started-live": 0}, leftovers
    assert sim_story["music_tasks"] == sim_story["music_submissions"] == sim_story["jobs_with_music"]
    assert sim_story["image_tasks"] == sim_story["image_submissions"] == sim_story["jobs_with_image"]
    if sim_story["log_complete"]:
        assert sim_story["logged_music_submits"] == sim_story["music_submissions"]
        assert sim_story["logged_image_submits"] == sim_story["image_submissions"]
    assert tally.completed + tally.failed_with_reason == len(ids)


def _completed(deps) -> int:
    with deps.sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(Job).where(Job.status == COMPLETED)) or 0


def _drained(deps, ids) -> bool:
    """Every job so far has finished: nothing is left for a worker to be interrupted in."""
    with deps.sessionmaker() as s:
        active = s.scalar(
            select(func.count()).select_from(Job).where(Job.id.in_(ids), Job.status.in_(ACTIVE_STATUSES))
        )
    return not active


def _failed_for_storage(deps, ids) -> list[tuple[uuid.UUID, int]]:
    with deps.sessionmaker() as s:
        rows = s.execute(
            select(Job.id, Job.user_id, Job.error_message).where(Job.id.in_(ids), Job.status == FAILED)
        ).all()
    return [(i, u) for i, u, msg in rows if (msg or "").startswith(STORAGE_REASONS)]


def _rq_story(deps, live_workers: set[str]) -> dict[str, int]:
    """Nothing left to run: queues and schedules empty; a started entry may only belong to a worker
    that was SIGKILLed (RQ cleans those up on its own maintenance cycle, the DB already moved on)."""
    story = {"queued": 0, "scheduled": 0, "started-live": 0}
    for q in deps.queues.ordered():
        story["queued"] += q.count
        story["scheduled"] += q.scheduled_job_registry.count
        for rq_id in q.started_job_registry.get_job_ids():
            try:
                job = RQJob.fetch(rq_id, connection=deps.redis)
            except NoSuchJobError:
                continue
            if job.worker_name in live_workers:
                story["started-live"] += 1
    return story


def _sim_story(deps, sim, ids) -> dict[str, int]:
    stats = sim.stats()
    with deps.sessionmaker() as s:
        rows = s.execute(select(Job.music_task_id, Job.image_task_id).where(Job.id.in_(ids))).all()
    log = stats["requests"]
    ok = lambda e: [r for r in log if r.get("endpoint") == e and r.get("status") == 200]  # noqa: E731
    return {
        "music_tasks": len(stats["tasks"]["music"]),
        "music_submissions": stats["submissions"]["music"],
        "jobs_with_music": len({m for m, _ in rows if m}),
        "image_tasks": len(stats["tasks"]["image"]),
        "image_submissions": stats["submissions"]["image"],
        "jobs_with_image": len({i for _, i in rows if i}),
        "log_complete": int(len(log) < 2000),
        "logged_music_submits": len(ok("suno_generate")),
        "logged_image_submits": len(ok("image_create")),
    }
