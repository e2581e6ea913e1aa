"""Retry and regenerate against the simulator: which steps run again, which paid tasks are reused."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from core.errors import NotFound
from core.jobs import get_job, read_artifact, submit_job
from core.lifecycle import cancel_job, regenerate_job, retry_job, retry_many
from core.models import Job, JobEvent
from core.pipeline import STEPS
from tests.conftest import run_until_done, sim_control, work
from tests.factories import make_user

CONCEPT = "An upbeat synth-pop song about a bicycle"


def stats(sim) -> dict:
    return sim_control(sim, "/_sim/stats", method="GET")


def fail_with(deps, sim, actor, fault: dict) -> str:
    sim_control(sim, "/_sim/faults", {"faults": [fault]})
    job = submit_job(deps, actor, CONCEPT)
    assert run_until_done(deps, [job.id]) == {str(job.id): "failed"}
    sim_control(sim, "/_sim/faults", method="DELETE")
    return str(job.id)


def steps_of(deps, actor, job_id, attempt: int) -> list[str]:
    return [r.step for r in get_job(deps, actor, job_id).steps if r.attempt == attempt]


def test_retry_from_the_failed_step_keeps_earlier_outputs_and_skips_succeeded_steps(deps, sim):
    alice = make_user(deps)
    fault = {"endpoint": "chat", "kind": "status", "status": 400, "times": -1, "match": "image_prompt"}
    job_id = fail_with(deps, sim, alice, fault)
    before = get_job(deps, alice, job_id)
    counts = stats(sim)["submissions"]

    outcome = retry_job(deps, alice, job_id)
    assert outcome.retried and outcome.status == "pending" and outcome.attempt == 2
    assert run_until_done(deps, [job_id]) == {job_id: "completed"}

    after = get_job(deps, alice, job_id)
    assert steps_of(deps, alice, job_id, 2) == ["write_image_prompt", "render_cover", "store"]
    assert after.song_options == before.song_options and after.music_task_id == before.music_task_id
    now = stats(sim)["submissions"]
    assert now["music"] == counts["music"] == 1, "the song is not paid for twice"
    assert now["llm"] == counts["llm"] + 1, "only the image prompt is asked again"
    assert now["image"] == 1
    retry_events = [e for e in after.events if e.message == "retry from write_image_prompt"]
    assert [(e.attempt, e.actor, e.status) for e in retry_events] == [(2, "alice", "pending")]


def test_retry_polls_the_paid_song_task_again_when_only_the_download_failed(deps, sim):
    alice = make_user(deps)
    job_id = fail_with(deps, sim, alice, {"endpoint": "audio_file", "kind": "status", "status": 404})
    task = get_job(deps, alice, job_id).music_task_id
    assert task

    outcome = retry_job(deps, alice, job_id)
    assert outcome.retried and "reusing the paid Suno task" in outcome.message
    assert run_until_done(deps, [job_id]) == {job_id: "completed"}
    detail = get_job(deps, alice, job_id)
    assert detail.music_task_id == task and detail.audio is not None
    assert stats(sim)["submissions"]["music"] == 1, "one music submission in total"
    runs = [r for r in detail.steps if r.step == "render_audio"]
    assert [(r.attempt, r.remote_task_id) for r in runs] == [(1, task), (2, task)]


def test_retry_submits_a_new_song_task_when_the_old_one_failed_at_the_provider(deps, sim):
    alice = make_user(deps)
    job_id = fail_with(deps, sim, alice, {"endpoint": "suno_generate", "kind": "task_sensitive"})
    old_task = get_job(deps, alice, job_id).music_task_id

    outcome = retry_job(deps, alice, job_id)
    assert outcome.retried and "failed at the provider" in outcome.message
    assert run_until_done(deps, [job_id]) == {job_id: "completed"}
    detail = get_job(deps, alice, job_id)
    assert detail.music_task_id and detail.music_task_id != old_task
    assert stats(sim)["submissions"]["music"] == 2
    assert steps_of(deps, alice, job_id, 2) == ["render_audio", "write_image_prompt", "render_cover", "store"]


def test_retry_from_the_start_runs_every_step_again(deps, sim):
    alice = make_user(deps)
    job_id = fail_with(deps, sim, alice, {"endpoint": "image_create", "kind": "task_fail"})
    outcome = retry_job(deps, alice, job_id, from_start=True)
    assert outcome.retried and outcome.current_step == STEPS[0]
    assert run_until_done(deps, [job_id]) == {job_id: "completed"}
    assert steps_of(deps, alice, job_id, 2) == list(STEPS)
    counts = stats(sim)["submissions"]
    assert (counts["llm"], counts["music"], counts["image"]) == (4, 2, 2)


def test_retry_of_a_cancelled_job_resumes_polling_the_same_paid_task(deps, sim):
    alice = make_user(deps)
    sim_control(sim, "/_sim/config", {"latency": {"music": 30}})
    job = submit_job(deps, alice, CONCEPT)
    while not (task := get_job(deps, alice, job.id).music_task_id):
        work(deps)
    assert cancel_job(deps, alice, job.id).startswith("Cancelled")
    assert retry_job(deps, alice, job.id).retried
    sim_control(sim, "/_sim/advance", {"seconds": 60})  # the paid task finishes while nobody polls
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}
    assert get_job(deps, alice, job.id).music_task_id == task
    assert stats(sim)["submissions"]["music"] == 1


def test_concurrent_retries_make_exactly_one_new_attempt_and_one_enqueue(deps, sim):
    alice = make_user(deps)
    job_id = fail_with(deps, sim, alice, {"endpoint": "chat", "kind": "status", "status": 401, "times": -1})
    assert deps.queues.interactive.count == 0
    barrier = threading.Barrier(8)
    results, errors = [], []

    def click() -> None:
        barrier.wait()
        try:
            results.append(retry_job(deps, alice, job_id, seen_attempt=1))
        except Exception as exc:  # noqa: BLE001 - the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.retried for r in results) == 1
    assert all("already retried" in r.message for r in results if not r.retried)
    assert deps.queues.interactive.count == 1
    with deps.sessionmaker() as s:
        assert s.get(Job, uuid.UUID(job_id)).attempt == 2
        retries = s.scalars(select(JobEvent).where(JobEvent.message.like("retry from%"))).all()
    assert len(retries) == 1

    again = retry_job(deps, alice, job_id, seen_attempt=1)
    assert not again.retried and again.attempt == 2 and deps.queues.interactive.count == 1


def test_retry_refuses_jobs_that_are_not_failed_or_cancelled(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    pending = retry_job(deps, alice, job.id)
    assert not pending.retried and "still pending" in pending.message
    run_until_done(deps, [job.id])
    done = retry_job(deps, alice, job.id)
    assert not done.retried and "Regenerate" in done.message
    assert deps.queues.interactive.count == 0


def test_regenerating_the_cover_keeps_the_old_cover_as_a_downloadable_version(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    run_until_done(deps, [job.id])
    first = get_job(deps, alice, job.id)

    outcome = regenerate_job(deps, alice, job.id, from_step="render_cover")
    assert outcome.retried and outcome.attempt == 2
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}
    after = get_job(deps, alice, job.id)
    assert after.image.version == 2 and after.image.id != first.image.id
    assert after.audio.id == first.audio.id, "the song is kept"
    assert [(a.kind, a.version) for a in after.previous_artifacts] == [("image", 1)]
    data, ctype, _ = read_artifact(deps, alice, first.image.id)
    assert data == deps.storage.read(first.image.path) and ctype.startswith("image/")
    assert steps_of(deps, alice, job.id, 2) == ["render_cover", "store"]
    counts = stats(sim)["submissions"]
    assert (counts["llm"], counts["music"], counts["image"]) == (2, 1, 2)


def test_regenerating_the_song_makes_a_new_song_and_cover_and_keeps_both_old_ones(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    run_until_done(deps, [job.id])
    assert regenerate_job(deps, alice, job.id, from_step="render_audio").retried
    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}
    after = get_job(deps, alice, job.id)
    assert (after.audio.version, after.image.version) == (2, 2)
    assert sorted((a.kind, a.version) for a in after.previous_artifacts) == [("audio", 1), ("image", 1)]
    assert stats(sim)["submissions"]["music"] == 2


def test_regenerate_needs_a_completed_job(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    outcome = regenerate_job(deps, alice, job.id, from_step="render_audio")
    assert not outcome.retried and "Only a completed job" in outcome.message


def test_bulk_retry_retries_failed_jobs_and_reports_the_others(deps, sim):
    alice = make_user(deps)
    failed = fail_with(deps, sim, alice, {"endpoint": "chat", "kind": "status", "status": 401, "times": -1})
    pending = submit_job(deps, alice, CONCEPT)
    result = retry_many(deps, alice, [failed, str(pending.id)])
    assert [str(j) for j in result.retried] == [failed]
    assert len(result.messages) == 1 and "still pending" in result.messages[0]


def test_another_users_job_is_not_found_for_retry_cancel_and_regenerate(deps, sim):
    alice, bob = make_user(deps), make_user(deps, "bob")
    job_id = fail_with(deps, sim, bob, {"endpoint": "chat", "kind": "status", "status": 401, "times": -1})
    with pytest.raises(NotFound):
        retry_job(deps, alice, job_id)
    with pytest.raises(NotFound):
        cancel_job(deps, alice, job_id)
    with pytest.raises(NotFound):
        regenerate_job(deps, alice, job_id, from_step="render_cover")
    assert "not found" in retry_many(deps, alice, [job_id]).messages[0]
    with deps.sessionmaker() as s:
        assert s.get(Job, uuid.UUID(job_id)).attempt == 1
    admin = make_user(deps, "root", admin=True)
    assert retry_job(deps, admin, job_id).retried, "admins may act on every job"
