"""Batch services: read and preview uploads, create a batch all or nothing, progress, retry, cancel, results.

A batch and all its jobs are inserted in ONE transaction, set-based (COPY on PostgreSQL, one
executemany INSERT elsewhere), and only after the commit are their first steps enqueued with ONE Redis
pipeline (`Queue.enqueue_many`). If Redis refuses, the jobs stay committed as pending with their
rq_job_id and next_run_at, which is what the reconciler re-enqueues from. Every function that takes a
batch id checks the owner (admins see all; others get NotFound).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict
from rq import Queue
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.batch_parse import Limits, Table, parse_lines, parse_upload
from core.deps import Dependencies
from core.errors import UserError
from core.jobs import new_correlation_id, validate_concept
from core.lifecycle import _cleared_from, remote_task_reusable
from core.logs import get_logger
from core.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    FAILED,
    JOB_STATUSES,
    PENDING,
    TERMINAL_STATUSES,
    Artifact,
    Batch,
    Job,
    JobEvent,
    User,
)
from core.pipeline import STEPS
from core.pipeline.runner import SUBMIT_STEPS
from core.queueing import BATCH, STEP_TASK, new_rq_job_id
from core.users import Actor, load_owned, model_for

log = get_logger("songsmith.batches")
PROBLEM_KINDS = ("empty", "too_long", "control_chars", "duplicate")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class BatchRow(NamedTuple):
    number: int  # the row number the user sees in their spreadsheet (or the pasted line number)
    text: str


class RowProblem(_View):
    row: int
    kind: str  # empty | too_long | control_chars | duplicate
    message: str


class BatchPreview(_View):
    total_rows: int
    valid_rows: int
    problems: list[RowProblem]
    concepts: list[str]  # the accepted, trimmed concepts in file order (problem rows left out)


class BatchProgress(_View):
    id: uuid.UUID
    name: str
    owner: str
    source_filename: str | None
    created_at: datetime
    total: int
    counts: dict[str, int]
    done: int
    fraction: float
    rate_per_minute: float | None
    eta_seconds: float | None
    active: bool


class ActionResult(_View):
    batch_id: uuid.UUID
    affected: int
    message: str


# --- reading and previewing -------------------------------------------------------------------------


def limits(deps: Dependencies) -> Limits:
    cfg = deps.settings
    return Limits(cfg.batch_max_rows, cfg.batch_max_file_bytes, cfg.batch_max_xlsx_uncompressed_bytes)


def read_upload(
    deps: Dependencies, data: bytes, filename: str | None, *, header: bool | None = None
) -> Table:
    return parse_upload(data, filename, limits(deps), header=header)


def read_pasted(deps: Dependencies, text: str) -> Table:
    return parse_lines(text, limits(deps))


def rows_of(table: Table, column: int | str) -> list[BatchRow]:
    """The chosen column as BatchRows; `column` is an index or a header name (case-insensitive)."""
    if isinstance(column, str):
        names = [c.lower() for c in table.columns]
        if column.lower() not in names:
            raise UserError(
                f"There is no column named {column!r}; the columns are: {', '.join(table.columns)}."
            )
        column = names.index(column.lower())
    if not 0 <= column < len(table.columns):
        raise UserError("Pick one of the file's columns.")
    return [BatchRow(n, text) for n, text in table.values(column)]


def preview(deps: Dependencies, rows: Sequence[BatchRow | str]) -> BatchPreview:
    """Row count and per-row problems (with the user's row numbers); nothing is written."""
    max_rows = deps.settings.batch_max_rows
    if len(rows) > max_rows:
        raise UserError(
            f"The batch has {len(rows):,} rows; the limit is {max_rows:,} rows (BATCH_MAX_ROWS). "
            "Split it into several batches."
        )
    problems: list[RowProblem] = []
    concepts: list[str] = []
    seen: dict[str, int] = {}
    for row in _as_rows(rows):
        try:
            text = validate_concept(row.text, deps.settings.concept_max_chars)
        except UserError as exc:
            problems.append(
                RowProblem(
                    row=row.number, kind=_kind(row.text, deps.settings.concept_max_chars), message=exc.message
                )
            )
            continue
        key = " ".join(text.casefold().split())
        if key in seen:
            problems.append(
                RowProblem(row=row.number, kind="duplicate", message=f"Same concept as row {seen[key]}.")
            )
            continue
        seen[key] = row.number
        concepts.append(text)
    return BatchPreview(total_rows=len(rows), valid_rows=len(concepts), problems=problems, concepts=concepts)


def _as_rows(rows: Iterable[BatchRow | str]) -> list[BatchRow]:
    return [r if isinstance(r, BatchRow) else BatchRow(i, r) for i, r in enumerate(rows, start=1)]


def _kind(text: str | None, max_chars: int) -> str:
    """The problem validate_concept found, in the order it checks: empty, length, control characters."""
    stripped = (text or "").strip()
    if not stripped:
        return "empty"
    return "too_long" if len(stripped) > max_chars else "control_chars"


# --- creating ---------------------------------------------------------------------------------------


def create_batch(
    deps: Dependencies,
    actor: Actor,
    rows: Sequence[BatchRow | str],
    *,
    name: str | None = None,
    skip_problems: bool = False,
    idempotency_key: str | None = None,
    source_filename: str | None = None,
) -> BatchProgress:
    """All or nothing: one transaction for the batch and every job, then one pipeline to enqueue them."""
    checked = preview(deps, rows)
    if checked.problems and not skip_problems:
        first = checked.problems[0]
        raise UserError(
            f"{len(checked.problems):,} row(s) have problems (first: row {first.row}: {first.message}) "
            "Fix the file, or choose to skip the problem rows."
        )
    if not checked.concepts:
        raise UserError("No valid concepts to create: every row has a problem.")
    if idempotency_key and (existing := _existing(deps, actor, idempotency_key)) is not None:
        return existing
    title = (name or "").strip()[:200] or _default_name(source_filename, deps.clock())
    try:
        batch_id, planned, corr = _insert(
            deps, actor, checked.concepts, title, source_filename, idempotency_key
        )
    except IntegrityError:
        if idempotency_key and (existing := _existing(deps, actor, idempotency_key)) is not None:
            return existing
        raise
    log.info("batch_created", batch_id=str(batch_id), jobs=len(planned), correlation_id=corr)
    enqueue_first_steps(deps, planned)
    return get_batch(deps, actor, batch_id)


def _default_name(filename: str | None, now: datetime) -> str:
    return (filename or "Pasted concepts")[:160] + now.strftime(" · %Y-%m-%d %H:%M")


def _existing(deps: Dependencies, actor: Actor, key: str) -> BatchProgress | None:
    with deps.sessionmaker() as s:
        found = s.scalar(select(Batch.id).where(Batch.user_id == actor.id, Batch.idempotency_key == key))
    return get_batch(deps, actor, found) if found else None


class Planned(NamedTuple):
    job_id: str
    step: str
    attempt: int
    correlation_id: str
    rq_job_id: str


JOB_COLUMNS = (
    "id", "user_id", "batch_id", "concept", "status", "current_step", "priority", "llm_model",
    "music_submit_attempts", "image_submit_attempts", "attempt", "step_retries", "step_polls",
    "cancel_requested", "rq_job_id", "next_run_at", "correlation_id", "created_at", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = ("job_id", "attempt", "kind", "status", "started_at", "finished_at", "actor", "message")


def _insert(
    deps: Dependencies,
    actor: Actor,
    concepts: list[str],
    title: str,
    source_filename: str | None,
    idempotency_key: str | None,
) -> tuple[uuid.UUID, list[Planned], str]:
    now = deps.clock()
    batch_id = uuid.uuid4()
    corr = new_correlation_id()
    step = STEPS[0]
    with deps.sessionmaker.begin() as s:
        model = model_for(s, deps.settings, actor.id)
        s.execute(
            insert(Batch).values(
                id=batch_id,
                user_id=actor.id,
                name=title,
                source_filename=(source_filename or None) and source_filename[:255],
                total=len(concepts),
                correlation_id=corr,
                idempotency_key=idempotency_key,
                created_at=now,
            )
        )
        jobs: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        planned: list[Planned] = []
        for i, concept in enumerate(concepts):
            job_id = uuid.uuid4()
            rq_id = new_rq_job_id(str(job_id), step)
            # Microsecond steps keep file order in (created_at, id) listings.
            at = now + timedelta(microseconds=i)
            jobs.append(
                (job_id, actor.id, batch_id, concept, PENDING, step, BATCH, model,
                 0, 0, 1, 0, 0, False, rq_id, now, corr, at, now)
            )  # fmt: skip
            events.append((job_id, 1, "status", PENDING, at, at, actor.username, "submitted in batch"))
            planned.append(Planned(str(job_id), step, 1, corr, rq_id))
        _bulk(s, Job, JOB_COLUMNS, jobs)
        _bulk(s, JobEvent, EVENT_COLUMNS, events)
    return batch_id, planned, corr


def _bulk(s: Session, model: type, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """COPY on PostgreSQL (inside the session's transaction), one executemany INSERT elsewhere."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        table = model.__table__.name  # type: ignore[attr-defined]
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    s.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in rows])


def enqueue_first_steps(
    deps: Dependencies, planned: Sequence[Planned], *, queue: Queue | None = None
) -> bool:
    """One Redis pipeline for every job; on failure the committed jobs wait for the reconciler."""
    if not planned:
        return True
    q = queue or deps.queues.for_priority(BATCH)
    cfg = deps.settings
    datas = [
        Queue.prepare_data(
            STEP_TASK,
            args=(p.job_id, p.step, p.attempt),
            job_id=p.rq_job_id,
            timeout=cfg.job_timeout_seconds,
            result_ttl=cfg.result_ttl_seconds,
            failure_ttl=cfg.failure_ttl_seconds,
            meta={"correlation_id": p.correlation_id, "step": p.step, "attempt": p.attempt},
            description=f"{p.step} for job {p.job_id}",
        )
        for p in planned
    ]
    try:
        with deps.redis.pipeline() as pipe:
            q.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
    except Exception:
        log.exception("batch_enqueue_failed", jobs=len(planned))
        return False
    return True


# --- reading progress --------------------------------------------------------------------------------


def _load_batch(s: Session, actor: Actor, batch_id: uuid.UUID | str) -> Batch:
    return load_owned(s, actor, Batch, batch_id, "Batch")


def get_batch(deps: Dependencies, actor: Actor, batch_id: uuid.UUID | str) -> BatchProgress:
    with deps.sessionmaker() as s:
        batch = _load_batch(s, actor, batch_id)
        owner = s.scalar(select(User.username).where(User.id == batch.user_id)) or "?"
        return _progress(s, [(batch, owner)], deps.clock())[0]


def list_batches(deps: Dependencies, actor: Actor, *, limit: int = 50) -> list[BatchProgress]:
    """Newest first; the counts of every listed batch come from one GROUP BY."""
    q = select(Batch, User.username).join(User, User.id == Batch.user_id)
    if not actor.is_admin:
        q = q.where(Batch.user_id == actor.id)
    q = q.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(max(1, min(limit, 200)))
    with deps.sessionmaker() as s:
        rows = [(b, name) for b, name in s.execute(q).all()]
        return _progress(s, rows, deps.clock())


def _progress(s: Session, batches: list[tuple[Batch, str]], now: datetime) -> list[BatchProgress]:
    if not batches:
        return []
    ids = [b.id for b, _ in batches]
    stats = s.execute(
        select(Job.batch_id, Job.status, func.count(), func.min(Job.started_at), func.max(Job.finished_at))
        .where(Job.batch_id.in_(ids))
        .group_by(Job.batch_id, Job.status)
    ).all()
    per: dict[uuid.UUID, dict[str, Any]] = {i: {"counts": {}, "first": None, "last": None} for i in ids}
    for batch_id, status, count, first, last in stats:
        entry = per[batch_id]
        entry["counts"][status] = count
        if first is not None and (entry["first"] is None or first < entry["first"]):
            entry["first"] = first
        if last is not None and (entry["last"] is None or last > entry["last"]):
            entry["last"] = last
    out = []
    for batch, owner in batches:
        entry = per[batch.id]
        counts = {st: entry["counts"].get(st, 0) for st in JOB_STATUSES}
        total = sum(counts.values()) or batch.total
        done = sum(counts[st] for st in TERMINAL_STATUSES)
        active = any(counts[st] for st in ACTIVE_STATUSES)
        start = entry["first"] or batch.created_at
        end = now if active else (entry["last"] or now)
        minutes = max((end - start).total_seconds(), 1.0) / 60
        rate = done / minutes if done else None
        remaining = total - done
        eta = (remaining / rate * 60) if (active and rate) else (0.0 if not active else None)
        out.append(
            BatchProgress(
                id=batch.id,
                name=batch.name,
                owner=owner,
                source_filename=batch.source_filename,
                created_at=batch.created_at,
                total=total,
                counts=counts,
                done=done,
                fraction=round(done / total, 4) if total else 1.0,
                rate_per_minute=round(rate, 2) if rate else None,
                eta_seconds=round(eta, 1) if eta is not None else None,
                active=active,
            )
        )
    return out


# --- control -----------------------------------------------------------------------------------------


def retry_failed_in_batch(deps: Dependencies, actor: Actor, batch_id: uuid.UUID | str) -> ActionResult:
    """Every failed job of the batch, set-based, with core.lifecycle.retry_job's semantics.

    Back to pending at the step it failed at, attempt + 1, that step's and later outputs cleared, the
    owner's current LLM model; a paid remote task is kept when one free poll says it can still be
    fetched (`remote_task_reusable`), else cleared so a new one is submitted. One bulk UPDATE, one
    bulk event insert, one enqueue_many.
    """
    with deps.sessionmaker() as s:
        batch = _load_batch(s, actor, batch_id)
        candidates = s.execute(
            select(
                Job.id, Job.attempt, Job.error_step, Job.current_step, Job.music_task_id, Job.image_task_id
            ).where(Job.batch_id == batch.id, Job.status == FAILED)
        ).all()
    keep: dict[tuple[uuid.UUID, int], bool] = {}
    for c in candidates:  # polls happen before any transaction opens (free GETs, only render steps)
        step = c.error_step or c.current_step or STEPS[0]
        task = {"render_audio": c.music_task_id, "render_cover": c.image_task_id}.get(step)
        if task:
            keep[(c.id, c.attempt)] = remote_task_reusable(deps, step, task, str(c.id))[0]
    now = deps.clock()
    with deps.sessionmaker.begin() as s:
        model = model_for(s, deps.settings, batch.user_id)
        failed = s.execute(
            select(Job.id, Job.error_step, Job.current_step, Job.attempt, Job.correlation_id)
            .where(Job.batch_id == batch.id, Job.status == FAILED)
            .with_for_update()
        ).all()
        planned: list[Planned] = []
        updates: list[dict[str, Any]] = []
        events: list[tuple[Any, ...]] = []
        for job_id, error_step, current, attempt, corr in failed:
            step = error_step or current or STEPS[0]
            rq_id = new_rq_job_id(str(job_id), step)
            values: dict[str, Any] = {
                **_cleared_from(step),
                "id": job_id,
                "status": PENDING,
                "current_step": step,
                "attempt": attempt + 1,
                "error_step": None,
                "error_message": None,
                "finished_at": None,
                "step_retries": 0,
                "step_polls": 0,
                "cancel_requested": False,
                "lease_owner": None,
                "lease_until": None,
                "rq_job_id": rq_id,
                "next_run_at": now,
                "updated_at": now,
                "llm_model": model,
            }
            if keep.get((job_id, attempt)) and step in SUBMIT_STEPS:
                for col in SUBMIT_STEPS[step]:
                    values.pop(col, None)
            updates.append(values)
            events.append(
                (job_id, attempt + 1, "status", PENDING, now, now, actor.username, f"retry from {step}")
            )
            planned.append(Planned(str(job_id), step, attempt + 1, corr, rq_id))
        for group in _by_keys(updates):
            s.execute(update(Job), group)
        if events:
            _bulk(s, JobEvent, EVENT_COLUMNS, events)
    enqueue_first_steps(deps, planned)
    return ActionResult(
        batch_id=batch.id, affected=len(planned), message=f"{len(planned):,} failed job(s) retried."
    )


def _by_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Bulk UPDATE by primary key needs the same keys in every row of one executemany."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def cancel_remaining(deps: Dependencies, actor: Actor, batch_id: uuid.UUID | str) -> ActionResult:
    """Pending jobs are cancelled now; running ones are flagged and stop at their next step boundary."""
    now = deps.clock()
    with deps.sessionmaker.begin() as s:
        batch = _load_batch(s, actor, batch_id)
        cancelled = s.execute(
            update(Job)
            .where(Job.batch_id == batch.id, Job.status == PENDING, Job.lease_owner.is_(None))
            .values(status=CANCELLED, cancel_requested=True, finished_at=now, updated_at=now)
            .returning(Job.id, Job.attempt, Job.current_step)
        ).all()
        flagged = s.execute(
            update(Job)
            .where(Job.batch_id == batch.id, Job.status.in_(ACTIVE_STATUSES), Job.cancel_requested.is_(False))
            .values(cancel_requested=True, updated_at=now)
            .returning(Job.id)
        ).all()
        if cancelled:
            events = [
                (job_id, attempt, "status", CANCELLED, now, now, actor.username, "cancelled with the batch")
                for job_id, attempt, _step in cancelled
            ]
            _bulk(s, JobEvent, EVENT_COLUMNS, events)
    n = len(cancelled) + len(flagged)
    return ActionResult(
        batch_id=batch.id,
        affected=n,
        message=f"{len(cancelled):,} job(s) cancelled; "
        f"{len(flagged):,} running job(s) stop after their current step.",
    )


# --- results -----------------------------------------------------------------------------------------


def neutralise(cell: object) -> str:
    """Spreadsheet formula injection: a cell starting with = + - @ (or tab/CR) gets a leading quote."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def results_csv(deps: Dependencies, actor: Actor, batch_id: uuid.UUID | str) -> bytes:
    """concept, status, title, audio, image, error, job_id — UTF-8 with BOM so Excel opens it as UTF-8."""
    with deps.sessionmaker() as s:
        batch = _load_batch(s, actor, batch_id)
        jobs = s.execute(
            select(
                Job.concept, Job.status, Job.chosen_option, Job.audio_artifact_id, Job.image_artifact_id,
                Job.error_step, Job.error_message, Job.id,
            )
            .where(Job.batch_id == batch.id)
            .order_by(Job.created_at, Job.id)
        ).all()  # fmt: skip
        art_ids = [a for j in jobs for a in (j.audio_artifact_id, j.image_artifact_id) if a is not None]
        paths = (
            dict(s.execute(select(Artifact.id, Artifact.path).where(Artifact.id.in_(art_ids))).all())
            if art_ids
            else {}
        )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["concept", "status", "title", "audio", "image", "error", "job_id"])
    for j in jobs:
        title = (j.chosen_option or {}).get("title") if isinstance(j.chosen_option, dict) else None
        error = f"{j.error_step}: {j.error_message}" if j.error_message else ""
        writer.writerow(
            [
                neutralise(v)
                for v in (
                    j.concept,
                    j.status,
                    title,
                    paths.get(j.audio_artifact_id, ""),
                    paths.get(j.image_artifact_id, ""),
                    error,
                    j.id,
                )
            ]
        )
    return buf.getvalue().encode("utf-8-sig")
