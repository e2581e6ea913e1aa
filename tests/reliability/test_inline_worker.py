"""The default worker runs steps in its own process: it must still heartbeat and honour RQ's timeouts."""

from __future__ import annotations

import time
from datetime import UTC

from rq import Queue, get_current_job
from rq.job import Job as RQJob
from sqlalchemy import func, select

from core.jobs import submit_job
from core.models import Job, JobEvent
from tests.conftest import override_deps, run_until_done, sim_control
from tests.factories import make_user
from worker.inline import InlineWorker


def slow_task(seconds: float) -> dict[str, float]:
    """Sleeps like a long provider call, then reports what RQ heard from this job meanwhile."""
    job = get_current_job()
    assert job is not None
    started = time.time()
    time.sleep(seconds)
    beat = RQJob.fetch(job.id, connection=job.connection).last_heartbeat
    assert beat is not None
    return {"started": started, "last_heartbeat": beat.replace(tzinfo=UTC).timestamp()}


def test_a_long_job_keeps_heartbeating_so_the_reconciler_does_not_take_it_for_dead(deps):
    queue = Queue("inline-beat", connection=deps.redis)
    rq_job = queue.enqueue(slow_task, 2.6)
    InlineWorker([queue], connection=deps.redis, job_monitoring_interval=1).work(burst=True)
    rq_job.refresh()
    result = rq_job.return_value()
    assert result is not None, rq_job.latest_result()
    # A SimpleWorker would leave last_heartbeat at the start; beats every second move it on.
    assert result["last_heartbeat"] - result["started"] >= 1.5


def test_rqs_job_timeout_retries_the_step_instead_of_failing_the_job(deps, sim):
    alice = make_user(deps)
    # The first LLM call outlives the 1 s job timeout; RQ's retry runs the step again.
    slow = {"endpoint": "chat", "kind": "slow", "seconds": 3, "times": 1}
    sim_control(sim, "/_sim/faults", {"faults": [slow]})
    with override_deps(deps, job_timeout_seconds=1) as d:
        job = submit_job(d, alice, "A sea shanty about a slow modem")
        statuses = run_until_done(d, [job.id], timeout=60)
    assert statuses == {str(job.id): "completed"}
    with deps.sessionmaker() as s:
        runs = s.scalar(
            select(func.count()).where(
                JobEvent.job_id == job.id, JobEvent.kind == "step", JobEvent.step == "write_options"
            )
        )
        row = s.get(Job, job.id)
    assert runs == 1, "the retried delivery resumed the same step run"
    assert row.error_message is None
    log = sim_control(sim, "/_sim/stats", method="GET")["requests"]
    chats = [r for r in log if r.get("endpoint") == "chat"]
    assert len(chats) >= 3, "the timed-out call, then write_options again and the image prompt"
