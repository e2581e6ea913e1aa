"""Runs one step of one job: claim it, call the step, persist what it produced, enqueue what comes next.

No database transaction stays open across a provider call: claim (tx 1) → step (HTTP) → apply (tx 2)
→ enqueue after commit. A lease on the job row turns a duplicate RQ delivery into a no-op.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from rq.timeouts import BaseTimeoutException
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, defer
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from core import metrics
from core.deps import Dependencies
from core.logs import get_logger
from core.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    Artifact,
    Job,
    JobEvent,
)
from core.pipeline import STEPS, next_step
from core.pipeline.errors import StepFailed
from core.pipeline.steps import STEP_FUNCTIONS, Done, JobSnapshot, StepContext, StepResult, Wait
from core.providers.errors import AmbiguousSubmitError, ProviderError, RetryableProviderError
from core.queueing import enqueue_step, new_rq_job_id
from core.storage import StorageError

log = get_logger("songsmith.pipeline")

# Steps that submit a paid remote task: (task id column, submit counter column).
SUBMIT_STEPS = {
    "render_audio": ("music_task_id", "music_submit_attempts"),
    "render_cover": ("image_task_id", "image_submit_attempts"),
}


@dataclass(frozen=True)
class Claim:
    snapshot: JobSnapshot
    step_started_at: datetime
    event_id: int
    priority: str


@dataclass(frozen=True)
class Scheduled:
    step: str
    rq_job_id: str
    delay: float


def run_step(deps: Dependencies, job_id: str, step: str, attempt: int, *, delivery: str) -> str:
    """Returns a short outcome word (claimed-elsewhere, waiting, advanced, completed, failed, ...)."""
    if step not in STEP_FUNCTIONS:
        log.error("unknown_step", job_id=job_id, step=step)
        return "unknown-step"
    claim = _claim(deps, uuid.UUID(job_id), step, attempt, delivery)
    if isinstance(claim, str):
        log.info("step_skipped", job_id=job_id, step=step, reason=claim)
        if claim == "cancelled":
            _tell_gates_cancelled(deps, uuid.UUID(job_id), step)
        return claim
    for gate in deps.gates:
        wait = gate.admit(deps, claim.snapshot, step)
        if wait is not None:
            gated = partial(_on_gated, deps, claim=claim, step=step, delay=wait, gate=gate)
            return _finish(deps, claim, step, delivery, gated)
    log.info("step_started", job_id=job_id, step=step, attempt=attempt)
    ctx = StepContext(
        job=claim.snapshot,
        settings=deps.settings,
        llm=deps.llm,
        music=deps.music,
        image=deps.image,
        downloader=deps.downloader,
        storage=deps.storage,
        now=deps.clock(),
        step_started_at=claim.step_started_at,
        artifact_exists=lambda art_id: _artifact_exists(deps, art_id),
    )
    apply: Any
    try:
        result = STEP_FUNCTIONS[step](ctx)
        apply = partial(_on_result, deps, claim=claim, step=step, result=result)
    except RetryableProviderError as exc:
        apply = partial(_on_retryable, deps, claim=claim, step=step, exc=exc)
    except (ProviderError, StepFailed, StorageError) as exc:
        reason = exc.message if isinstance(exc, ProviderError) else str(exc)
        clear_no = isinstance(exc, ProviderError) and not isinstance(exc, AmbiguousSubmitError)
        apply = partial(_on_failed, deps, claim=claim, step=step, reason=reason, unsubmit=clear_no)
    except BaseTimeoutException:
        # RQ's job timeout: in an inline worker it arrives here as an exception (a forking worker's
        # horse is killed instead). Either way RQ retries this delivery, which re-takes its lease.
        raise
    except Exception:
        log.exception("step_crashed", job_id=job_id, step=step)
        reason = (
            f"Unexpected error in step {step}; reference {claim.snapshot.correlation_id}. "
            "Retry the job, and report it if it happens again."
        )
        apply = partial(_on_failed, deps, claim=claim, step=step, reason=reason)
    salvage = None
    if isinstance(apply.keywords.get("result"), Wait):
        task_cols = {c for c, _ in SUBMIT_STEPS.values()}
        salvage = {k: v for k, v in apply.keywords["result"].updates.items() if k in task_cols} or None
    outcome = _finish(deps, claim, step, delivery, apply, salvage=salvage)
    release_gates(deps, claim.snapshot, step, outcome)
    return outcome


def _on_gated(
    deps: Dependencies, s: Session, job: Job, *, claim: Claim, step: str, delay: float, gate: object
) -> tuple[str, Scheduled | None]:
    """A gate (provider rate limit, in-flight cap) said not yet: try the same step again later."""
    del deps, s
    _undo_submit_marker(job, step, claim, ambiguous=False)
    log.info("step_gated", job_id=str(job.id), step=step, gate=type(gate).__name__, delay=round(delay, 2))
    return "gated", Scheduled(step, new_rq_job_id(str(job.id), step), delay)


def _tell_gates_cancelled(deps: Dependencies, job_id: uuid.UUID, step: str) -> None:
    """A job cancelled between runs may still hold a gate's slot (an in-flight cap): free it now."""
    if not deps.gates:
        return
    with deps.sessionmaker() as s:
        job = s.get(Job, job_id)
        snapshot = JobSnapshot.of(job) if job is not None else None
    if snapshot is not None:
        release_gates(deps, snapshot, step, "cancelled")


def release_gates(deps: Dependencies, snapshot: JobSnapshot, step: str, outcome: str) -> None:
    """Tell every gate a step run is over; a gate failure is logged, never raised into a step."""
    for gate in deps.gates:
        try:
            gate.release(deps, snapshot, step, outcome)
        except Exception:
            log.exception("gate_release_failed", job_id=str(snapshot.id), gate=type(gate).__name__)


# What a claim reads: the checks below plus every field a step sees (JobSnapshot).
_CLAIM_COLUMNS = tuple(
    getattr(Job, name)
    for name in dict.fromkeys(
        (
            "status",
            "current_step",
            "rq_job_id",
            "cancel_requested",
            "started_at",
            "priority",
            *JobSnapshot.__dataclass_fields__,
        )
    )
)
# Loaded lazily (never) when a run finishes: the step's result only writes them.
_WRITE_ONLY_ON_FINISH = tuple(
    defer(getattr(Job, name), raiseload=True)
    for name in ("concept", "llm_usage", "song_options", "chosen_option", "music_result", "image_result")
)


def _claim(deps: Dependencies, job_id: uuid.UUID, step: str, attempt: int, delivery: str) -> Claim | str:
    """One locked read and one conditional update in Core: a claim runs for every step run and every
    status check, and the ORM's load-modify-flush costs several times the statements themselves."""
    now = deps.clock()
    with deps.sessionmaker.begin() as s:
        row = s.execute(select(*_CLAIM_COLUMNS).where(Job.id == job_id).with_for_update()).first()
        if row is None:
            return "missing"
        if row.status not in ACTIVE_STATUSES or row.attempt != attempt or row.current_step != step:
            return "stale"
        if row.rq_job_id is not None and row.rq_job_id != delivery:
            # The row names the one delivery expected next; the reconciler may have replaced a
            # stalled one, and the old one must then do nothing when it finally arrives.
            return "superseded"
        if row.cancel_requested:
            job = s.get(Job, job_id)
            assert job is not None
            _mark_cancelled(s, job, now)
            return "cancelled"
        values: dict[str, Any] = {
            "lease_owner": delivery,
            "lease_until": now + timedelta(seconds=deps.settings.lease_seconds),
            "updated_at": now,
        }
        starting = row.status == PENDING
        if starting:
            values.update(status=RUNNING, started_at=row.started_at or now)
        task_col = SUBMIT_STEPS.get(step)
        if task_col and getattr(row, task_col[0]) is None:
            # The "submitting" marker is committed before the paid call (contract 2.8).
            values[task_col[1]] = getattr(row, task_col[1]) + 1
        claimed = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.attempt == attempt,
                Job.current_step == step,
                Job.status.in_(ACTIVE_STATUSES),
                or_(Job.rq_job_id.is_(None), Job.rq_job_id == delivery),
                or_(Job.lease_until.is_(None), Job.lease_until < now, Job.lease_owner == delivery),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return "claimed-elsewhere"
        if starting:
            running = _status_event_values(job_id, attempt, RUNNING, now, step=step)
            s.execute(insert(JobEvent).values(**running))
        event_id, step_started_at = _open_step_event(s, job_id, attempt, step, now)
        fields = JobSnapshot.__dataclass_fields__
        return Claim(
            snapshot=JobSnapshot(**{name: values.get(name, getattr(row, name)) for name in fields}),
            step_started_at=step_started_at,
            event_id=event_id,
            priority=row.priority,
        )


def _finish(
    deps: Dependencies,
    claim: Claim,
    step: str,
    delivery: str,
    apply: Any,
    *,
    salvage: dict[str, Any] | None = None,
) -> str:
    # The step's result (maybe a paid task id) exists only in memory until this commit: a dropped
    # connection here is retried on a fresh one rather than thrown away with the delivery.
    for attempt_no in Retrying(
        retry=retry_if_exception_type(OperationalError),
        stop=stop_after_attempt(4),
        wait=wait_exponential_jitter(multiplier=0.2, max=3),
        reraise=True,
    ):
        with attempt_no:
            return _finish_once(deps, claim, step, delivery, apply, salvage)
    raise AssertionError("unreachable")


def _finish_once(
    deps: Dependencies,
    claim: Claim,
    step: str,
    delivery: str,
    apply: Any,
    salvage: dict[str, Any] | None,
) -> str:
    with deps.sessionmaker.begin() as s:
        job = s.get(Job, claim.snapshot.id, with_for_update=True, options=_WRITE_ONLY_ON_FINISH)
        if job is None or job.lease_owner != delivery or job.current_step != step:
            # Someone declared this run dead and moved on; still keep a paid task id it obtained,
            # so the next run polls that task instead of paying for another.
            for column, value in (salvage or {}).items():
                if job is not None and getattr(job, column) is None and job.attempt == claim.snapshot.attempt:
                    setattr(job, column, value)
            log.warning("lease_lost", job_id=str(claim.snapshot.id), step=step, salvaged=bool(salvage))
            return "lease-lost"
        with s.no_autoflush:  # one UPDATE of the job row at commit, not one per query inside apply
            outcome, scheduled = apply(s, job)
        job.lease_owner = None
        job.lease_until = None
        job.updated_at = deps.clock()
        if scheduled is not None:
            job.rq_job_id = scheduled.rq_job_id
            job.next_run_at = deps.clock() + timedelta(seconds=scheduled.delay)
        correlation_id, priority, attempt = job.correlation_id, job.priority, job.attempt
        job_times = (job.created_at, job.finished_at)
    metrics.step_finished(step, outcome, claim.step_started_at, deps.clock(), *job_times)
    if scheduled is not None:
        schedule(deps, str(claim.snapshot.id), scheduled, attempt, correlation_id, priority)
    log.info("step_finished", job_id=str(claim.snapshot.id), step=step, outcome=outcome)
    return outcome


def schedule(
    deps: Dependencies, job_id: str, scheduled: Scheduled, attempt: int, correlation_id: str, priority: str
) -> None:
    """Enqueue after commit; if Redis refuses, the reconciler re-enqueues from the database later."""
    try:
        enqueue_step(
            deps.settings,
            deps.queues.for_priority(priority),
            job_id=job_id,
            step=scheduled.step,
            attempt=attempt,
            correlation_id=correlation_id,
            rq_job_id=scheduled.rq_job_id,
            delay=scheduled.delay,
        )
    except Exception:
        log.exception("enqueue_failed", job_id=job_id, step=scheduled.step)


def _on_result(
    deps: Dependencies, s: Session, job: Job, *, claim: Claim, step: str, result: StepResult
) -> tuple[str, Scheduled | None]:
    now = deps.clock()
    for column, value in result.updates.items():
        setattr(job, column, value)
    event = s.get(JobEvent, claim.event_id)
    assert event is not None
    event.service, event.model = result.service, result.model
    event.remote_task_id = result.remote_task_id or event.remote_task_id
    if isinstance(result, Wait):
        if result.polled:
            job.step_polls += 1
        event.output = {**(event.output or {}), **result.output, "checks": job.step_polls}
        return "waiting", Scheduled(step, new_rq_job_id(str(job.id), step), result.delay)
    if result.artifact is not None:
        _add_artifact(s, job, result, now)
    event.status, event.finished_at = "succeeded", now
    event.output = {**(event.output or {}), **result.output}
    job.step_retries = 0
    job.step_polls = 0
    nxt = next_step(step)
    if nxt is None:
        job.status, job.finished_at, job.current_step = COMPLETED, now, None
        s.add(_status_event(job, COMPLETED, now))
        return "completed", None
    job.current_step = nxt
    return "advanced", Scheduled(nxt, new_rq_job_id(str(job.id), nxt), 0.0)


def _add_artifact(s: Session, job: Job, result: Done, now: datetime) -> None:
    art = result.artifact
    assert art is not None
    version = (
        s.scalar(
            select(func.max(Artifact.version)).where(Artifact.job_id == job.id, Artifact.kind == art.kind)
        )
        or 0
    ) + 1
    row = Artifact(
        job_id=job.id,
        kind=art.kind,
        version=version,
        path=art.stored.path,
        content_type=art.content_type,
        size_bytes=art.stored.size_bytes,
        sha256=art.stored.sha256,
        source_url=art.source_url,
        created_at=now,
    )
    s.add(row)
    s.flush()
    if art.kind == "audio":
        job.audio_artifact_id = row.id
    else:
        job.image_artifact_id = row.id


def backoff_delay(deps: Dependencies, retries: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    cfg = deps.settings
    ceiling = min(cfg.retry_max_seconds, cfg.retry_base_seconds * (2**retries))
    delay = random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0
    if retry_after is not None:
        delay = max(delay, min(retry_after, cfg.retry_max_seconds * 5))
    return delay


def _on_retryable(
    deps: Dependencies, s: Session, job: Job, *, claim: Claim, step: str, exc: RetryableProviderError
) -> tuple[str, Scheduled | None]:
    now = deps.clock()
    _undo_submit_marker(job, step, claim, ambiguous=isinstance(exc, AmbiguousSubmitError))
    made = job.step_retries + 1
    status = f"HTTP {exc.status}" if exc.status else "no response"
    if job.step_retries >= deps.settings.step_retry_budget:
        reason = f"{exc.provider} kept failing after {made} attempts (last: {status}): {exc.message}"
        return _on_failed(deps, s, job, claim=claim, step=step, reason=reason)
    job.step_retries = made
    delay = backoff_delay(deps, made - 1, exc.retry_after)
    s.add(
        JobEvent(
            job_id=job.id,
            attempt=job.attempt,
            kind="retry",
            step=step,
            status="retrying",
            service=exc.provider,
            started_at=now,
            finished_at=now,
            message=exc.message,
            output={
                "status": exc.status,
                "retry_after": exc.retry_after,
                "delay": round(delay, 2),
                "retry": made,
            },
        )
    )
    return "retrying", Scheduled(step, new_rq_job_id(str(job.id), step), delay)


def _on_failed(
    deps: Dependencies, s: Session, job: Job, *, claim: Claim, step: str, reason: str, unsubmit: bool = False
) -> tuple[str, Scheduled | None]:
    now = deps.clock()
    if unsubmit:
        _undo_submit_marker(job, step, claim, ambiguous=False)
    event = s.get(JobEvent, claim.event_id)
    if event is not None and event.finished_at is None:
        event.status, event.finished_at, event.message = "failed", now, reason
    job.status, job.finished_at = FAILED, now
    job.error_step, job.error_message = step, reason
    s.add(_status_event(job, FAILED, now, step=step, message=reason))
    return "failed", None


def _undo_submit_marker(job: Job, step: str, claim: Claim, *, ambiguous: bool) -> None:
    """A submit that clearly was not accepted does not count toward the one-resubmit allowance."""
    cols = SUBMIT_STEPS.get(step)
    if cols and not ambiguous and getattr(claim.snapshot, cols[0]) is None and getattr(job, cols[0]) is None:
        setattr(job, cols[1], max(0, getattr(job, cols[1]) - 1))


def _mark_cancelled(s: Session, job: Job, now: datetime) -> None:
    for event in s.scalars(
        select(JobEvent).where(
            JobEvent.job_id == job.id, JobEvent.kind == "step", JobEvent.finished_at.is_(None)
        )
    ):
        event.status, event.finished_at = "cancelled", now
    job.status, job.finished_at, job.updated_at = CANCELLED, now, now
    job.lease_owner = job.lease_until = None
    s.add(_status_event(job, CANCELLED, now, step=job.current_step))


def _open_step_event(
    s: Session, job_id: uuid.UUID, attempt: int, step: str, now: datetime
) -> tuple[int, datetime]:
    """The step run's event: the open one a status check or a resumed run continues, else a new one."""
    found = s.execute(
        select(JobEvent.id, JobEvent.started_at)
        .where(
            JobEvent.job_id == job_id,
            JobEvent.attempt == attempt,
            JobEvent.kind == "step",
            JobEvent.step == step,
            JobEvent.finished_at.is_(None),
        )
        .order_by(JobEvent.id.desc())
        .limit(1)
    ).first()
    if found is not None:
        return found.id, found.started_at
    event_id = s.execute(
        insert(JobEvent)
        .values(job_id=job_id, attempt=attempt, kind="step", step=step, status="running", started_at=now)
        .returning(JobEvent.id)
    ).scalar_one()
    return event_id, now


def _status_event_values(
    job_id: uuid.UUID,
    attempt: int,
    status: str,
    now: datetime,
    *,
    step: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "attempt": attempt,
        "kind": "status",
        "step": step,
        "status": status,
        "started_at": now,
        "finished_at": now,
        "message": message,
    }


def _status_event(
    job: Job, status: str, now: datetime, *, step: str | None = None, message: str | None = None
) -> JobEvent:
    return JobEvent(**_status_event_values(job.id, job.attempt, status, now, step=step, message=message))


def _artifact_exists(deps: Dependencies, artifact_id: int | None) -> bool:
    if artifact_id is None:
        return False
    with deps.sessionmaker() as s:
        art = s.get(Artifact, artifact_id)
        return art is not None and deps.storage.exists(art.path)


__all__ = ["STEPS", "Scheduled", "backoff_delay", "run_step", "schedule"]
