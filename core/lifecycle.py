"""Retry, regenerate and cancel: each one conditional UPDATE on the job row, then enqueue after commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.deps import Dependencies
from core.errors import NotFound, UserError
from core.jobs import _load_owned, _summary
from core.logs import get_logger
from core.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    TERMINAL_STATUSES,
    Job,
    JobEvent,
    User,
)
from core.pipeline import STEP_LABELS, STEPS
from core.pipeline.runner import SUBMIT_STEPS, Scheduled, release_gates, schedule
from core.pipeline.steps import JobSnapshot
from core.providers.errors import PermanentProviderError, ProviderError
from core.queueing import new_rq_job_id
from core.users import Actor, model_for
from core.views import BulkRetry, RetryOutcome

log = get_logger("songsmith.lifecycle")

RETRYABLE_STATUSES = (FAILED, CANCELLED)
REGENERATE_STEPS = ("render_audio", "render_cover")
RegenerateStep = Literal["render_audio", "render_cover"]

# What each step produced on the job row; retrying from a step clears that step's and later outputs.
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    "write_options": ("song_options", "llm_model_used", "llm_usage"),
    "choose_option": ("chosen_index", "chosen_option"),
    "render_audio": ("music_task_id", "music_result"),
    "write_image_prompt": ("image_prompt",),
    "render_cover": ("image_task_id", "image_result"),
    "store": (),
}
SUBMIT_COUNTERS = {step: cols[1] for step, cols in SUBMIT_STEPS.items()}


@dataclass(frozen=True)
class _Seen:
    """The row as the caller saw it; the UPDATE only applies if status and attempt are unchanged."""

    id: uuid.UUID
    user_id: int
    status: str
    attempt: int
    error_step: str | None
    current_step: str | None
    music_task_id: str | None
    image_task_id: str | None
    correlation_id: str
    priority: str


def _read(deps: Dependencies, actor: Actor, job_id: uuid.UUID | str) -> _Seen:
    with deps.sessionmaker() as s:
        j = _load_owned(s, actor, job_id)
        return _Seen(
            j.id,
            j.user_id,
            j.status,
            j.attempt,
            j.error_step,
            j.current_step,
            j.music_task_id,
            j.image_task_id,
            j.correlation_id,
            j.priority,
        )


def _outcome(deps: Dependencies, job_id: uuid.UUID, *, retried: bool, message: str) -> RetryOutcome:
    with deps.sessionmaker() as s:
        job = s.get(Job, job_id)
        assert job is not None
        owner = s.get(User, job.user_id)
        summary = _summary(job, owner.username if owner else "?")
    return RetryOutcome(**summary.model_dump(), retried=retried, message=message)


def _cleared_from(step: str) -> dict[str, Any]:
    """Column values that undo `step` and every later step (task ids, results, submit counters)."""
    values: dict[str, Any] = {}
    for later in STEPS[STEPS.index(step) :]:
        values.update(dict.fromkeys(STEP_OUTPUTS[later]))
        if later in SUBMIT_COUNTERS:
            values[SUBMIT_COUNTERS[later]] = 0
    return values


def _restart_values(deps: Dependencies, seen: _Seen, step: str) -> dict[str, Any]:
    now = deps.clock()
    return {
        "status": PENDING,
        "attempt": seen.attempt + 1,
        "current_step": step,
        "error_step": None,
        "error_message": None,
        "finished_at": None,
        "step_retries": 0,
        "step_polls": 0,
        "cancel_requested": False,
        "lease_owner": None,
        "lease_until": None,
        "rq_job_id": new_rq_job_id(str(seen.id), step),
        "next_run_at": now,
        "updated_at": now,
    }


def remote_task_reusable(deps: Dependencies, step: str, task_id: str, request_id: str) -> tuple[bool, str]:
    """Whether a retry may poll the paid task it already has instead of paying for a new one.

    One poll (a free GET) decides, before any transaction opens:
    - the task is still running or has succeeded → keep it: a deadline expiry or a failed download
      (404, timeout) is retried by polling the same task and fetching its files again;
    - the provider says the task failed (error, content flagged as sensitive, no audio) or no longer
      knows the id (a permanent error) → drop it, so the step submits a new task;
    - the provider cannot be reached right now → keep it: the runner's own retries poll it again.
    """
    client = deps.music if step == "render_audio" else deps.image
    try:
        status = client.poll(task_id, request_id=request_id)
    except PermanentProviderError as exc:
        return False, f"the {client.name} task {task_id} can no longer be fetched ({exc.message})"
    except ProviderError:
        return True, f"the {client.name} task {task_id} could not be checked now; polling it again"
    if status.state == "failed":
        return False, f"the {client.name} task {task_id} failed at the provider ({status.raw_status})"
    return True, f"reusing the paid {client.name} task {task_id} ({status.raw_status or status.state})"


def retry_job(
    deps: Dependencies,
    actor: Actor,
    job_id: uuid.UUID | str,
    *,
    from_start: bool = False,
    seen_attempt: int | None = None,
) -> RetryOutcome:
    """Retry a failed or cancelled job once, however many clicks, tabs or users ask at the same time.

    From the failed step (default): outputs of the steps that succeeded stay, so those steps do not
    run (or get paid for) again; a render step keeps its remote task when `remote_task_reusable`
    says so, otherwise its task id is cleared and its submit counter reset (the user asked for a new
    paid task; that also lifts the "may already be charged" guard). From the start: every output and
    task id is cleared; stored artifacts stay as previous versions. Either way the LLM model is the
    owner's current choice, so "choose another model in Settings, then retry" works.
    """
    seen = _read(deps, actor, job_id)
    expected = seen.attempt if seen_attempt is None else seen_attempt
    if seen.status not in RETRYABLE_STATUSES or seen.attempt != expected:
        return _outcome(deps, seen.id, retried=False, message=_not_retryable(seen, expected))
    step = STEPS[0] if from_start else (seen.error_step or seen.current_step or STEPS[0])
    values = _restart_values(deps, seen, step)
    values.update(_cleared_from(STEPS[0] if from_start else step))
    note = None
    task_id = {"render_audio": seen.music_task_id, "render_cover": seen.image_task_id}.get(step)
    if not from_start and task_id:
        keep, note = remote_task_reusable(deps, step, task_id, seen.correlation_id)
        if keep:
            task_col, counter = SUBMIT_STEPS[step]
            values.pop(task_col)
            values.pop(counter)
    if from_start:
        values.update(audio_artifact_id=None, image_artifact_id=None)
    where = (Job.status.in_(RETRYABLE_STATUSES), Job.attempt == expected)
    message = f"retry from {step}"
    return _restart(deps, actor, seen, step, values, where, message, note)


def regenerate_job(
    deps: Dependencies,
    actor: Actor,
    job_id: uuid.UUID | str,
    *,
    from_step: RegenerateStep,
    seen_attempt: int | None = None,
) -> RetryOutcome:
    """Run a completed job again from the song or the cover step, as a new attempt.

    The pipeline is linear, so regenerating the song re-runs everything after it too (a new image
    prompt and cover made for the new song); regenerating the cover re-renders only the cover from
    the same prompt. The task ids of those steps are cleared, so a new paid task is submitted; the
    current files stay current until the new ones are stored, and then remain as previous versions.
    """
    if from_step not in REGENERATE_STEPS:
        raise UserError("Regenerate starts from the song (render_audio) or the cover (render_cover).")
    seen = _read(deps, actor, job_id)
    expected = seen.attempt if seen_attempt is None else seen_attempt
    if seen.status != COMPLETED or seen.attempt != expected:
        if seen.attempt != expected:
            msg = _not_retryable(seen, expected)
        else:
            msg = f"Only a completed job can be regenerated; this one is {seen.status}."
        return _outcome(deps, seen.id, retried=False, message=msg)
    values = {**_restart_values(deps, seen, from_step), **_cleared_from(from_step)}
    where = (Job.status == COMPLETED, Job.attempt == expected)
    return _restart(deps, actor, seen, from_step, values, where, f"regenerate from {from_step}", None)


def _restart(
    deps: Dependencies,
    actor: Actor,
    seen: _Seen,
    step: str,
    values: dict[str, Any],
    where: tuple[Any, ...],
    message: str,
    note: str | None,
) -> RetryOutcome:
    now = deps.clock()
    with deps.sessionmaker.begin() as s:
        values["llm_model"] = model_for(s, deps.settings, seen.user_id)
        changed = s.execute(
            update(Job)
            .where(Job.id == seen.id, *where)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 1:
            s.add(
                JobEvent(
                    job_id=seen.id,
                    attempt=values["attempt"],
                    kind="status",
                    step=step,
                    status=PENDING,
                    started_at=now,
                    finished_at=now,
                    actor=actor.username,
                    message=message,
                    output={"note": note} if note else None,
                )
            )
    if changed != 1:
        return _outcome(deps, seen.id, retried=False, message=_lost_race(deps, seen))
    log.info("job_restarted", job_id=str(seen.id), step=step, attempt=values["attempt"], how=message)
    scheduled = Scheduled(step, values["rq_job_id"], 0.0)
    schedule(deps, str(seen.id), scheduled, values["attempt"], seen.correlation_id, seen.priority)
    label = STEP_LABELS.get(step, step)
    text = f"Attempt {values['attempt']} started from “{label}”." + (f" Note: {note}." if note else "")
    return _outcome(deps, seen.id, retried=True, message=text)


def _not_retryable(seen: _Seen, expected: int) -> str:
    if seen.attempt != expected:
        return f"Someone already retried this job: it is on attempt {seen.attempt}, now {seen.status}."
    if seen.status == COMPLETED:
        return "This job completed; nothing to retry (use Regenerate song or cover for a new version)."
    return f"This job is still {seen.status}; only failed or cancelled jobs can be retried."


def _lost_race(deps: Dependencies, seen: _Seen) -> str:
    with deps.sessionmaker() as s:
        job = s.get(Job, seen.id)
        assert job is not None
        who = s.scalars(
            select(JobEvent.actor)
            .where(JobEvent.job_id == seen.id, JobEvent.kind == "status", JobEvent.actor.is_not(None))
            .order_by(JobEvent.id.desc())
            .limit(1)
        ).first()
        return (
            f"Someone{f' ({who})' if who else ''} already retried this job at the same moment: "
            f"it is on attempt {job.attempt}, now {job.status}. Nothing was changed."
        )


def retry_many(
    deps: Dependencies, actor: Actor, job_ids: Iterable[uuid.UUID | str], *, from_start: bool = False
) -> BulkRetry:
    """The Jobs page's bulk action: retry each failed or cancelled job, report the others in one line each."""
    retried: list[uuid.UUID] = []
    messages: list[str] = []
    for job_id in job_ids:
        try:
            outcome = retry_job(deps, actor, job_id, from_start=from_start)
        except NotFound:
            messages.append(f"{job_id}: not found.")
            continue
        if outcome.retried:
            retried.append(outcome.id)
        else:
            messages.append(f"{str(outcome.id)[:8]}: {outcome.message}")
    return BulkRetry(retried=retried, messages=messages)


def cancel_job(deps: Dependencies, actor: Actor, job_id: uuid.UUID | str) -> str:
    """Stop a job before its next step; returns a message saying what happened.

    A job with no step holding a live lease (pending, or running but between steps, in backoff or
    waiting for its next poll of a remote task) is marked cancelled at once: its scheduled RQ run
    then finds it inactive and does nothing, so no poll and no paid call follow. A step that is
    running right now finishes its current call; the runner's claim of whatever comes next sees
    `cancel_requested` and marks the job cancelled instead of running it.
    """
    now = deps.clock()
    with deps.sessionmaker.begin() as s:
        job = _load_owned(s, actor, job_id)
        if job.status in TERMINAL_STATUSES:
            return f"This job is already {job.status}; nothing to cancel."
        if job.cancel_requested:
            return "Cancel was already requested; the job stops before its next step."
        free = or_(Job.lease_owner.is_(None), Job.lease_until.is_(None), Job.lease_until < now)
        stopped = s.execute(
            update(Job)
            .where(Job.id == job.id, Job.status.in_(ACTIVE_STATUSES), free)
            .values(
                status=CANCELLED,
                cancel_requested=True,
                finished_at=now,
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if stopped == 1:
            s.refresh(job)
            _close_open_steps(s, job.id, now)
            s.add(_event(job, CANCELLED, now, actor, "cancelled"))
            released = (JobSnapshot.of(job), job.current_step or "")
    if stopped == 1:
        release_gates(deps, *released, "cancelled")
        log.info("job_cancelled", job_id=str(job_id), by=actor.username)
        return "Cancelled. Nothing more will run for this job."
    with deps.sessionmaker.begin() as s:
        job = _load_owned(s, actor, job_id)
        asked = s.execute(
            update(Job)
            .where(Job.id == job.id, Job.status.in_(ACTIVE_STATUSES), Job.cancel_requested.is_(False))
            .values(cancel_requested=True, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        s.refresh(job)
        if asked != 1:
            return f"This job is now {job.status}; nothing to cancel."
        s.add(_event(job, "cancel_requested", now, actor, "cancel requested during a step"))
        log.info("job_cancel_requested", job_id=str(job.id), by=actor.username, step=job.current_step)
        label = STEP_LABELS.get(job.current_step or "", job.current_step)
        return f"Cancel requested: “{label}” is finishing its current call; nothing runs after it."


def _close_open_steps(s: Session, job_id: uuid.UUID, now: datetime) -> None:
    for event in s.scalars(
        select(JobEvent).where(
            JobEvent.job_id == job_id, JobEvent.kind == "step", JobEvent.finished_at.is_(None)
        )
    ):
        event.status, event.finished_at = "cancelled", now


def _event(job: Job, status: str, now: datetime, actor: Actor, message: str) -> JobEvent:
    return JobEvent(
        job_id=job.id,
        attempt=job.attempt,
        kind="status",
        step=job.current_step,
        status=status,
        started_at=now,
        finished_at=now,
        actor=actor.username,
        message=message,
    )


__all__ = ["cancel_job", "regenerate_job", "remote_task_reusable", "retry_job", "retry_many"]
