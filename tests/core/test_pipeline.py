"""A job's whole life against the simulator over real HTTP, with real PostgreSQL, Redis and RQ."""

from __future__ import annotations

import io
import wave

import pytest
from PIL import Image
from sqlalchemy import select

from core.jobs import get_job, submit_job
from core.models import Job, JobEvent
from core.pipeline import STEPS
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user


def test_a_job_runs_every_step_and_stores_valid_files(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, "A rainy-night jazz ballad about a lighthouse keeper")
    assert job.status == "pending"
    assert deps.queues.interactive.count == 1

    assert run_until_done(deps, [job.id]) == {str(job.id): "completed"}

    detail = get_job(deps, alice, job.id)
    assert [r.step for r in detail.steps] == list(STEPS)
    assert all(r.status == "succeeded" and r.duration_seconds is not None for r in detail.steps)
    assert {r.step: r.service for r in detail.steps}["render_audio"] == "Suno"
    assert len(detail.song_options or []) == 3 and detail.chosen_option is not None
    assert detail.image_prompt and detail.music_task_id and detail.image_task_id

    audio = deps.storage.read(detail.audio.path)
    with wave.open(io.BytesIO(audio)) as w:
        assert w.getnframes() > 0 and w.getframerate() > 0
    with Image.open(io.BytesIO(deps.storage.read(detail.image.path))) as img:
        img.load()
        assert img.width > 0 and img.format == "PNG"

    statuses = [e.status for e in detail.events if e.kind == "status"]
    assert statuses == ["pending", "running", "completed"]
    stats = sim_control(sim, "/_sim/stats", method="GET")
    assert stats["submissions"]["music"] == 1 and stats["submissions"]["image"] == 1


FAULTS = [
    ("write_options", {"endpoint": "chat", "kind": "status", "status": 401, "times": -1}, "API key"),
    ("render_audio", {"endpoint": "suno_generate", "kind": "task_sensitive"}, "sensitive"),
    (
        "write_image_prompt",
        {"endpoint": "chat", "kind": "status", "status": 400, "times": -1, "match": "image_prompt"},
        "rejected",
    ),
    ("render_cover", {"endpoint": "image_create", "kind": "task_fail"}, ""),
    ("render_audio", {"endpoint": "audio_file", "kind": "status", "status": 404, "times": -1}, "404"),
]


@pytest.mark.parametrize(("step", "fault", "words"), FAULTS, ids=[f"{s}-{f['kind']}" for s, f, _ in FAULTS])
def test_a_fault_at_a_provider_step_fails_the_job_there(deps, sim, step, fault, words):
    sim_control(sim, "/_sim/faults", {"faults": [fault]})
    alice = make_user(deps)
    job = submit_job(deps, alice, "An upbeat synth-pop song about a bicycle")
    assert run_until_done(deps, [job.id]) == {str(job.id): "failed"}
    detail = get_job(deps, alice, job.id)
    assert detail.error_step == step
    assert detail.error_message and words.lower() in detail.error_message.lower()
    ran = [r.step for r in detail.steps]
    assert ran == list(STEPS[: STEPS.index(step) + 1]), "no later step may run"
    assert detail.steps[-1].status == "failed"
    assert detail.audio is None or step != "render_audio"


def test_double_submit_with_one_token_creates_one_job(deps, sim):
    alice = make_user(deps)
    first = submit_job(deps, alice, "A sea shanty about spreadsheets", idempotency_key="tok-1")
    second = submit_job(deps, alice, "A sea shanty about spreadsheets", idempotency_key="tok-1")
    assert first.id == second.id
    with deps.sessionmaker() as s:
        assert len(s.scalars(select(Job)).all()) == 1
    assert deps.queues.interactive.count == 1


def test_a_duplicate_delivery_of_a_step_does_not_run_it_twice(deps, sim):
    from core.pipeline.runner import run_step

    alice = make_user(deps)
    job = submit_job(deps, alice, "A lullaby for a robot")
    with deps.sessionmaker() as s:
        first = s.get(Job, job.id).rq_job_id
    assert run_step(deps, str(job.id), "write_options", 1, delivery="not-the-named-one") == "superseded"
    assert run_step(deps, str(job.id), "write_options", 1, delivery=first) == "advanced"
    # The same RQ message delivered again: the job has moved on, so it is a no-op.
    assert run_step(deps, str(job.id), "write_options", 1, delivery=first) == "stale"
    stats = sim_control(sim, "/_sim/stats", method="GET")
    assert stats["submissions"]["llm"] == 1
    with deps.sessionmaker() as s:
        runs = s.scalars(
            select(JobEvent).where(JobEvent.kind == "step", JobEvent.step == "write_options")
        ).all()
        assert len(runs) == 1
