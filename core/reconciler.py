"""Brings RQ back in line with the database, which is the source of truth for every job.

A job is active (pending/running) in the database but may have nothing in RQ that will move it on:
Redis was flushed or restarted, an enqueue after commit failed, a work-horse was SIGKILLed, or a whole
worker machine died mid-step. Each pass finds those jobs and enqueues their current step again. Doing
it twice is harmless: the runner's lease and its attempt/step checks make extra deliveries no-ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from sqlalchemy import select, update

from core.deps import Dependencies
from core.logs import get_logger
from core.models import ACTIVE_STATUSES, Job
from core.pipeline.runner import Scheduled, schedule
from core.queueing import new_rq_job_id

log = get_logger("songsmith.reconciler")

WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
DEAD = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


@dataclass
class ReconcileReport:
    checked: int = 0
    requeued: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)


def _rq_state(
    deps: Dependencies, rq_job_id: str | None, now: datetime, next_run_at: datetime | None = None
) -> str:
    """healthy | missing | dead | abandoned | stalled | finished — what RQ will still do for this run."""
    if not rq_job_id:
        return "missing"
    try:
        rq_job = RQJob.fetch(rq_job_id, connection=deps.redis)
    except NoSuchJobError:
        return "missing"
    status = rq_job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED and next_run_at is not None:
        # Overdue in RQ's scheduled registry: no scheduler is running (its lock outlives a killed
        # worker by a minute or more), so this check would sit there; enqueue the step directly.
        overdue = (now - next_run_at).total_seconds()
        return "stalled" if overdue > deps.settings.scheduled_overdue_seconds else "healthy"
    if status in WAITING:
        return "healthy"
    if status in DEAD:
        return "dead"
    if status == JobStatus.STARTED:
        beat = rq_job.last_heartbeat or rq_job.started_at
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        stale = beat is None or (now - beat).total_seconds() > deps.settings.abandoned_after_seconds
        return "abandoned" if stale else "healthy"
    return "finished"


def reconcile(deps: Dependencies, *, limit: int = 500) -> ReconcileReport:
    now = deps.clock()
    settle = now - timedelta(seconds=deps.settings.reconcile_grace_seconds)
    report = ReconcileReport()
    with deps.sessionmaker() as s:
        rows = s.execute(
            select(Job.id, Job.rq_job_id, Job.lease_owner, Job.lease_until, Job.next_run_at)
            .where(Job.status.in_(ACTIVE_STATUSES), Job.updated_at < settle)
            .order_by(Job.updated_at)
            .limit(limit)
        ).all()
    for job_id, rq_job_id, lease_owner, lease_until, next_run_at in rows:
        report.checked += 1
        if next_run_at is not None and next_run_at > now:
            # A scheduled check that is not due yet: only lost if RQ no longer has it.
            state = "missing" if _rq_state(deps, rq_job_id, now) == "missing" else "healthy"
        else:
            state = _rq_state(deps, rq_job_id, now, next_run_at)
        leased = lease_until is not None and lease_until > now and lease_owner is not None
        # A live lease means a step run may still be working, even when Redis lost its RQ entry
        # (a flush): only a run RQ reports dead or abandoned loses its lease early.
        if state == "healthy" or (leased and state not in ("dead", "abandoned")):
            continue
        if _requeue(deps, job_id, rq_job_id, lease_owner):
            report.requeued.append(str(job_id))
            report.reasons[str(job_id)] = state
    if report.requeued:
        log.warning("reconciled_jobs", count=len(report.requeued), reasons=report.reasons)
    return report


def _drop_superseded(deps: Dependencies, rq_job_id: str | None) -> None:
    """A replaced delivery still waiting in RQ (an overdue scheduled check) is deleted, so RQ's registries
    keep agreeing with the database; were it to run anyway, the runner would find it superseded."""
    if not rq_job_id:
        return
    try:
        old = RQJob.fetch(rq_job_id, connection=deps.redis)
    except NoSuchJobError:
        return
    if old.get_status(refresh=False) in WAITING:
        old.delete()


def _requeue(deps: Dependencies, job_id: object, seen_rq_id: str | None, seen_lease: str | None) -> bool:
    """One conditional update decides the winner when two reconcilers look at the same job."""
    now = deps.clock()
    with deps.sessionmaker.begin() as s:
        job = s.get(Job, job_id)
        if job is None or job.status not in ACTIVE_STATUSES or job.current_step is None:
            return False
        new_id = new_rq_job_id(str(job.id), job.current_step)
        same_rq = Job.rq_job_id == seen_rq_id if seen_rq_id else Job.rq_job_id.is_(None)
        same_lease = Job.lease_owner == seen_lease if seen_lease else Job.lease_owner.is_(None)
        won = s.execute(
            update(Job)
            .where(Job.id == job.id, same_rq, same_lease)
            .values(rq_job_id=new_id, lease_owner=None, lease_until=None, next_run_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            return False
        _drop_superseded(deps, seen_rq_id)
        step, attempt, corr, priority = job.current_step, job.attempt, job.correlation_id, job.priority
    schedule(deps, str(job_id), Scheduled(step, new_id, 0.0), attempt, corr, priority)
    return True
