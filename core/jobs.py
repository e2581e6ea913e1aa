"""Job services: submit, list, read one job and its files; every one checks the owner."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.deps import Dependencies
from core.errors import NotFound, UserError
from core.logs import current_correlation_id, get_logger
from core.models import PENDING, Artifact, Job, JobEvent, User
from core.pipeline import STEP_LABELS, STEPS
from core.pipeline.runner import Scheduled, schedule
from core.queueing import INTERACTIVE, new_rq_job_id
from core.ratelimit import check_job_quota
from core.users import Actor, load_owned, model_for
from core.views import (
    ArtifactView,
    EventView,
    JobDetail,
    JobPage,
    JobSummary,
    StepRun,
    seconds_between,
)

log = get_logger("songsmith.jobs")
PAGE_SIZE_MAX = 200


def validate_concept(concept: str | None, max_chars: int) -> str:
    """Returns the trimmed concept or raises UserError with a message a user can act on."""
    text = (concept or "").strip()
    if not text:
        raise UserError("Please enter a concept: it is empty.")
    if len(text) > max_chars:
        raise UserError(f"The concept is {len(text):,} characters long; the limit is {max_chars:,}.")
    bad = [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in "\n\t"]
    if bad:
        raise UserError(
            f"The concept contains {len(bad)} control or invisible character(s) (e.g. U+{ord(bad[0]):04X}); "
            "remove them and try again."
        )
    return text


def new_correlation_id() -> str:
    return current_correlation_id() or uuid.uuid4().hex


def submit_job(
    deps: Dependencies,
    actor: Actor,
    concept: str,
    *,
    idempotency_key: str | None = None,
    priority: str = INTERACTIVE,
) -> JobSummary:
    """Commit the job, then enqueue its first step; the same idempotency key returns the same job."""
    text = validate_concept(concept, deps.settings.concept_max_chars)
    now = deps.clock()
    job_id = uuid.uuid4()
    rq_id = new_rq_job_id(str(job_id), STEPS[0])
    correlation_id = new_correlation_id()
    try:
        with deps.sessionmaker.begin() as s:
            job = Job(
                id=job_id,
                user_id=actor.id,
                concept=text,
                status=PENDING,
                current_step=STEPS[0],
                priority=priority,
                llm_model=model_for(s, deps.settings, actor.id),
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
                rq_job_id=rq_id,
                next_run_at=now,
                created_at=now,
                updated_at=now,
            )
            s.add(job)
            s.add(
                JobEvent(
                    job_id=job_id,
                    attempt=1,
                    kind="status",
                    status=PENDING,
                    started_at=now,
                    finished_at=now,
                    actor=actor.username,
                    message="submitted",
                )
            )
            s.flush()
            check_job_quota(deps, actor, 1)  # a refusal rolls this transaction back: nothing is created
            summary = _summary(job, actor.username)
    except IntegrityError:
        if idempotency_key is None:
            raise
        with deps.sessionmaker() as s:
            existing = s.scalars(
                select(Job).where(Job.user_id == actor.id, Job.idempotency_key == idempotency_key)
            ).one()
            return _summary(existing, actor.username)
    log.info("job_submitted", job_id=str(job_id), correlation_id=correlation_id)
    schedule(deps, str(job_id), Scheduled(STEPS[0], rq_id, 0.0), 1, correlation_id, priority)
    return summary


def _load_owned(s: Session, actor: Actor, job_id: uuid.UUID | str) -> Job:
    return load_owned(s, actor, Job, job_id, "Job")


def get_job(deps: Dependencies, actor: Actor, job_id: uuid.UUID | str) -> JobDetail:
    with deps.sessionmaker() as s:
        job = _load_owned(s, actor, job_id)
        owner = s.get(User, job.user_id)
        events = list(s.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)))
        artifacts = list(
            s.scalars(
                select(Artifact).where(Artifact.job_id == job.id).order_by(Artifact.kind, Artifact.version)
            )
        )
        return _detail(job, owner.username if owner else "?", events, artifacts)


def list_jobs(
    deps: Dependencies,
    actor: Actor,
    *,
    status: str | None = None,
    owner_id: int | None = None,
    batch_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> JobPage:
    """Newest first, keyset-paginated on (created_at, id) so page 1,000 costs what page 1 does."""
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    q = select(Job, User.username).join(User, User.id == Job.user_id)
    if not actor.is_admin:
        q = q.where(Job.user_id == actor.id)
    elif owner_id is not None:
        q = q.where(Job.user_id == owner_id)
    if status:
        q = q.where(Job.status == status)
    if batch_id is not None:
        q = q.where(Job.batch_id == batch_id)
    if cursor:
        at, cid = _parse_cursor(cursor)
        q = q.where(or_(Job.created_at < at, and_(Job.created_at == at, Job.id < cid)))
    q = q.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    with deps.sessionmaker() as s:
        rows = s.execute(q).all()
    items = [_summary(job, username) for job, username in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = f"{last.created_at.isoformat()}|{last.id}"
    return JobPage(items=items, next_cursor=next_cursor)


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, cid = cursor.split("|", 1)
        return datetime.fromisoformat(at), uuid.UUID(cid)
    except ValueError:
        raise UserError("That page link is not valid; start from the first page.") from None


def read_artifact(deps: Dependencies, actor: Actor, artifact_id: int) -> tuple[bytes, str, str]:
    """The bytes of one stored file, only for its owner (or an admin): (data, content type, file name)."""
    with deps.sessionmaker() as s:
        art = s.get(Artifact, artifact_id)
        if art is None:
            raise NotFound("File")
        try:
            _load_owned(s, actor, art.job_id)
        except NotFound:
            raise NotFound("File") from None
        path, ctype = art.path, art.content_type
    data = deps.storage.read(path)
    return data, ctype, path.rsplit("/", 1)[-1]


def _summary(job: Job, owner: str) -> JobSummary:
    title = (job.chosen_option or {}).get("title") if job.chosen_option else None
    return JobSummary(
        id=job.id,
        owner=owner,
        concept=job.concept,
        status=job.status,
        current_step=job.current_step,
        llm_model=job.llm_model,
        title=title,
        attempt=job.attempt,
        batch_id=job.batch_id,
        error_step=job.error_step,
        error_message=job.error_message,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=seconds_between(job.started_at or job.created_at, job.finished_at),
    )


def _artifact_view(a: Artifact) -> ArtifactView:
    return ArtifactView(
        id=a.id,
        kind=a.kind,
        version=a.version,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        path=a.path,
        created_at=a.created_at,
    )


def _detail(job: Job, owner: str, events: list[JobEvent], artifacts: list[Artifact]) -> JobDetail:
    steps = [
        StepRun(
            step=e.step or "",
            label=STEP_LABELS.get(e.step or "", e.step or ""),
            attempt=e.attempt,
            status=e.status,
            service=e.service,
            model=e.model,
            remote_task_id=e.remote_task_id,
            started_at=e.started_at,
            finished_at=e.finished_at,
            duration_seconds=seconds_between(e.started_at, e.finished_at),
            output=e.output,
            message=e.message,
        )
        for e in events
        if e.kind == "step"
    ]
    current = {"audio": job.audio_artifact_id, "image": job.image_artifact_id}
    views = [_artifact_view(a) for a in artifacts]
    return JobDetail(
        **_summary(job, owner).model_dump(),
        correlation_id=job.correlation_id,
        llm_model_used=job.llm_model_used,
        llm_usage=job.llm_usage,
        song_options=job.song_options,
        chosen_index=job.chosen_index,
        chosen_option=job.chosen_option,
        image_prompt=job.image_prompt,
        music_task_id=job.music_task_id,
        image_task_id=job.image_task_id,
        cancel_requested=job.cancel_requested,
        steps=steps,
        events=[
            EventView(
                id=e.id,
                attempt=e.attempt,
                kind=e.kind,
                step=e.step,
                status=e.status,
                service=e.service,
                message=e.message,
                actor=e.actor,
                at=e.started_at,
                output=e.output,
            )
            for e in events
        ],
        audio=next((v for v in views if v.id == current["audio"]), None),
        image=next((v for v in views if v.id == current["image"]), None),
        previous_artifacts=[v for v in views if v.id not in current.values()],
    )
