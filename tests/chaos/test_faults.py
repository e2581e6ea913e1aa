"""Infrastructure faults with jobs in every state: each ends with nothing stuck, paid twice or lost."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from core.jobs import submit_job
from core.lifecycle import retry_job
from core.models import FAILED, Job, JobEvent
from tests.chaos.helpers import (
    EVERY_STATE,
    LLM_STEPS,
    audit,
    disk_refuses_writes,
    drive_to_every_state,
    env_int,
    fleet,
    provider_down,
    reconciling,
    redis_loses_everything,
    rq_leftovers,
    settle,
    states,
    step_of,
    terminate_pg_backends,
    wait_for,
)
from tests.conftest import override_deps
from tests.factories import make_user

pytestmark = pytest.mark.slow
SETTLE = 150


def _finish(deps, sim, chaos_report, scenario, ids, *, timeout=SETTLE, seen=None):
    settle(deps, ids, timeout)
    tally = audit(deps, sim, scenario, ids)
    tally.notes["at_fault"] = dict(seen or {})
    chaos_report.append(tally)
    return tally


def test_postgres_connections_terminated_mid_step(deps, sim, settings, tmp_path, chaos_report):
    alice = make_user(deps)
    with fleet(settings, tmp_path) as workers, reconciling(deps):
        ids, seen = drive_to_every_state(deps, alice, label="postgres")
        killed = [terminate_pg_backends(deps)]
        for _ in range(2):
            time.sleep(1.0)
            killed.append(terminate_pg_backends(deps))
        # The app reconnects at once: the same Dependencies submit new jobs right after the fault.
        ids += [submit_job(deps, alice, f"An aftershock song {i}").id for i in range(3)]
        tally = _finish(deps, sim, chaos_report, "1 postgres backends terminated", ids, seen=seen)
        assert len(workers.alive()) == 2, "workers survive losing their database connections"
    assert sum(killed) > 0, "the fault hit live connections"
    tally.assert_clean()
    assert tally.completed == len(ids), "a database blip fails no job"


def test_redis_loses_its_dataset_with_jobs_queued_scheduled_and_running(
    deps, sim, settings, redis_url, tmp_path, chaos_report
):
    alice = make_user(deps)
    # A slow Suno submit keeps a paid call in flight when Redis forgets the job running it.
    sim.control(
        "/_sim/faults", {"faults": [{"endpoint": "suno_generate", "kind": "slow", "seconds": 3, "times": -1}]}
    )
    need = (*EVERY_STATE, "submitting")
    with fleet(settings, tmp_path) as workers, reconciling(deps):
        ids, seen = drive_to_every_state(deps, alice, need=need, label="redis")
        seen["rq_scheduled"] = deps.queues.interactive.scheduled_job_registry.count
        redis_loses_everything(redis_url)
        assert deps.queues.interactive.count == 0
        tally = _finish(deps, sim, chaos_report, "2 redis flushed + clients killed", ids, seen=seen)
        assert len(workers.alive()) == 2, "workers survive losing Redis"
    tally.assert_clean()
    assert tally.completed == len(ids), "the reconciler rebuilt every lost queue entry"


def test_a_provider_down_then_back_within_and_past_deadlines(deps, sim, settings, tmp_path, chaos_report):
    outage = float(env_int("CHAOS_OUTAGE_SECONDS", 60))
    deadline = max(5.0, outage / 2)
    # Retries back off to a few seconds and the budget outlasts the outage; the music step's
    # deadline does not, so a job already waiting on Suno when the provider vanished runs past it.
    tuned = {
        "retry_base_seconds": 1.0,
        "retry_max_seconds": 4.0,
        "step_retry_budget": int(outage) + 20,
        "music_deadline_seconds": deadline,
    }
    settings = settings.model_copy(update=tuned)
    alice = make_user(deps)
    with override_deps(deps, **tuned) as d, fleet(settings, tmp_path), reconciling(d):
        ids, seen = drive_to_every_state(d, alice, need=(*EVERY_STATE, "waiting-music"), label="outage")
        waiting_music = _waiting_on_music(d, ids)
        with provider_down(sim, outage):
            pass
        tally = _finish(d, sim, chaos_report, f"3 provider down {outage:.0f}s", ids, seen=seen)
    tally.assert_clean()
    with deps.sessionmaker() as s:
        rows = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(ids)))}
    failed = {i: j for i, j in rows.items() if j.status == FAILED}
    assert waiting_music <= set(failed), "waiting on Suno through the outage runs past the deadline"
    for job in failed.values():
        assert job.error_step == "render_audio", job.error_message
        assert "did not finish the task within" in job.error_message
    assert tally.completed >= seen["pending"] + seen["completed"], "jobs within their deadlines complete"


def _waiting_on_music(deps, ids) -> set:
    with deps.sessionmaker() as s:
        return set(
            s.scalars(
                select(Job.id).where(
                    Job.id.in_(ids),
                    Job.current_step == "render_audio",
                    Job.music_task_id.is_not(None),
                    Job.lease_owner.is_(None),
                )
            )
        )


def test_sigterm_lets_the_step_finish_then_sigkill_of_the_group_is_recovered(
    deps, sim, settings, tmp_path, chaos_report
):
    alice = make_user(deps)
    # Every paid submit and LLM call takes a while, so a horse is mid-step when the signal lands.
    slow = [{"endpoint": e, "kind": "slow", "seconds": 1.5, "times": -1} for e in ("chat", "suno_generate")]
    sim.control("/_sim/faults", {"faults": slow})
    with fleet(settings, tmp_path) as workers, reconciling(deps):
        ids, seen = drive_to_every_state(deps, alice, label="deploy")
        delivery = wait_for(lambda: workers.current_delivery(deps.redis, "w1"), 30, "w1 mid-step")
        workers.sigterm("w1")
        code = workers.procs["w1"].wait(60)
        assert code == 0, "warm shutdown exits cleanly"
        job_id = delivery.split("_", 1)[0]
        step = delivery.split("_", 1)[1].rsplit("_", 1)[0]
        workers.start("w1b")
        # SIGKILL during a paid submit leaves its outcome unknown, and the contract then allows one
        # resubmit (a possible second charge, logged as possible_double_charge): the kill lands in an
        # LLM call, so "no duplicated paid call" stays a hard assertion.
        in_llm = lambda: step_of(workers.current_delivery(deps.redis, "w2")) in LLM_STEPS  # noqa: E731
        wait_for(in_llm, 60, "w2 mid-LLM-step")
        workers.sigkill_group("w2")
        workers.start("w2b")
        tally = _finish(deps, sim, chaos_report, "4 sigterm + sigkill of group", ids, seen=seen)
    with deps.sessionmaker() as s:
        runs = list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.step == step)))
    assert any(r.status == "succeeded" for r in runs), f"{step} finished under warm shutdown"
    tally.assert_clean()
    assert tally.completed == len(ids)


def test_artifact_disk_refuses_writes_then_retry_succeeds(deps, sim, settings, tmp_path, chaos_report):
    alice = make_user(deps)
    artifact_dir = settings.artifact_dir
    artifact_dir.mkdir(parents=True, exist_ok=True)
    with fleet(settings, tmp_path), reconciling(deps):
        ids, seen = drive_to_every_state(deps, alice, label="disk")
        with disk_refuses_writes(artifact_dir):
            broken = settle(deps, ids, SETTLE)
            with deps.sessionmaker() as s:
                failed = list(s.scalars(select(Job).where(Job.id.in_(ids), Job.status == FAILED)))
            reasons = {j.error_message for j in failed}
        assert failed and not sum(v for k, v in broken.items() if k not in ("completed", "failed"))
        for reason in reasons:
            assert reason.startswith(("Could not write the artifact to storage: ", "The stored ")), reason
        for job in failed:
            assert retry_job(deps, alice, job.id).retried
        tally = _finish(deps, sim, chaos_report, "5 artifact disk refuses writes", ids, seen=seen)
    tally.notes["failed_during_fault"] = len(failed)
    tally.assert_clean()
    assert tally.completed == len(ids), "every job completes on retry, paying once"
    assert not any(rq_leftovers(deps).values())
    assert states(deps, ids)["completed"] == len(ids)
