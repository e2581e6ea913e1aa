"""Cancel at every status: nothing further is submitted or polled, and the job ends cancelled."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable

from core.jobs import get_job, submit_job
from core.lifecycle import cancel_job
from core.models import Job
from tests.conftest import run_until_done, sim_control, work
from tests.factories import make_user

CONCEPT = "A slow ambient piece about a lighthouse"


def stats(sim) -> dict:
    return sim_control(sim, "/_sim/stats", method="GET")


def polls(sim) -> int:
    return sum(1 for r in stats(sim)["requests"] if r.get("endpoint") == "suno_poll")


def cancel_when(deps, actor, job_id, ready: Callable[[Job], bool]) -> tuple[threading.Thread, list[str]]:
    """Cancel from another thread (a second browser tab) once the job row satisfies `ready`."""
    said: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with deps.sessionmaker() as s:
                job = s.get(Job, uuid.UUID(str(job_id)))
                if job is not None and ready(job):
                    said.append(cancel_job(deps, actor, job_id))
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=watch)
    thread.start()
    return thread, said


def test_cancelling_a_pending_job_stops_it_before_any_step(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    assert cancel_job(deps, alice, job.id) == "Cancelled. Nothing more will run for this job."
    work(deps)
    detail = get_job(deps, alice, job.id)
    assert detail.status == "cancelled" and detail.steps == []
    assert stats(sim)["submissions"] == {"llm": 0, "music": 0, "image": 0}
    cancelled = [e for e in detail.events if e.status == "cancelled"]
    assert [(e.kind, e.actor) for e in cancelled] == [("status", "alice")]


def test_cancelling_during_an_llm_call_stops_at_the_next_step(deps, sim):
    alice = make_user(deps)
    sim_control(sim, "/_sim/config", {"latency": {"llm": 1.0}})
    job = submit_job(deps, alice, CONCEPT)
    thread, said = cancel_when(deps, alice, job.id, lambda j: j.lease_owner is not None)
    work(deps)
    thread.join()
    assert said and said[0].startswith("Cancel requested")
    assert run_until_done(deps, [job.id]) == {str(job.id): "cancelled"}
    detail = get_job(deps, alice, job.id)
    assert [(r.step, r.status) for r in detail.steps] == [("write_options", "succeeded")]
    assert stats(sim)["submissions"] == {"llm": 1, "music": 0, "image": 0}


def test_cancelling_between_polls_of_a_remote_task_stops_polling_at_once(deps, sim):
    alice = make_user(deps)
    sim_control(sim, "/_sim/config", {"latency": {"music": 30}})
    job = submit_job(deps, alice, CONCEPT)
    work(deps)
    while polls(sim) < 2:
        work(deps)
        time.sleep(0.05)
    with deps.sessionmaker() as s:
        row = s.get(Job, job.id)
        assert row.status == "running" and row.music_task_id and row.lease_owner is None
    assert cancel_job(deps, alice, job.id).startswith("Cancelled")
    seen = polls(sim)
    time.sleep(0.4)
    work(deps, burst_rounds=2)
    detail = get_job(deps, alice, job.id)
    assert detail.status == "cancelled" and polls(sim) == seen, "no poll after the cancel"
    audio = [r for r in detail.steps if r.step == "render_audio"]
    assert [r.status for r in audio] == ["cancelled"] and audio[0].finished_at is not None
    assert stats(sim)["submissions"] == {"llm": 1, "music": 1, "image": 0}


def test_cancelling_during_a_poll_ends_cancelled_at_the_next_scheduled_check(deps, sim):
    alice = make_user(deps)
    sim_control(sim, "/_sim/config", {"latency": {"music": 30}})
    fault = {"endpoint": "suno_poll", "kind": "slow", "seconds": 1.0, "times": 1}
    sim_control(sim, "/_sim/faults", {"faults": [fault]})
    job = submit_job(deps, alice, CONCEPT)
    thread, said = cancel_when(
        deps, alice, job.id, lambda j: j.music_task_id is not None and j.lease_owner is not None
    )
    assert run_until_done(deps, [job.id], timeout=20) == {str(job.id): "cancelled"}
    thread.join()
    assert said and said[0].startswith("Cancel requested")
    assert polls(sim) == 1, "the poll in flight finished; no further poll was made"
    assert stats(sim)["submissions"] == {"llm": 1, "music": 1, "image": 0}


def test_cancelling_twice_or_a_finished_job_is_a_clear_no_op(deps, sim):
    alice = make_user(deps)
    job = submit_job(deps, alice, CONCEPT)
    assert cancel_job(deps, alice, job.id).startswith("Cancelled")
    assert cancel_job(deps, alice, job.id) == "This job is already cancelled; nothing to cancel."
    done = submit_job(deps, alice, "A happy polka about a teapot")
    run_until_done(deps, [done.id])
    assert cancel_job(deps, alice, done.id) == "This job is already completed; nothing to cancel."
    assert get_job(deps, alice, done.id).status == "completed"


class RecordingGate:
    """A StepGate that admits everything and remembers what it was told."""

    def __init__(self) -> None:
        self.released: list[tuple[str, str]] = []

    def admit(self, deps, job, step):  # noqa: ARG002 - the StepGate protocol
        return None

    def release(self, deps, job, step, outcome):  # noqa: ARG002 - the StepGate protocol
        self.released.append((step, outcome))


def test_cancelling_between_polls_tells_the_gates_the_step_is_over(deps, sim):
    gate = RecordingGate()
    gated = dataclasses.replace(deps, gates=(gate,))
    alice = make_user(deps)
    sim_control(sim, "/_sim/config", {"latency": {"music": 30}})
    job = submit_job(gated, alice, CONCEPT)
    with deps.sessionmaker.begin() as s:  # the song step has submitted and waits for its first poll
        row = s.get(Job, job.id)
        row.status, row.current_step, row.music_task_id = "running", "render_audio", "task-1"
    assert cancel_job(gated, alice, job.id).startswith("Cancelled")
    assert gate.released == [("render_audio", "cancelled")]
