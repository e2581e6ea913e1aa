"""Ingest: 10,000 MusicCaps captions through create_batch vs. one bulk INSERT + one enqueue_many (the floor).

Both run in the same process against a scratch PostgreSQL database and this run's own Redis db. The
floor inserts exactly the job rows create_batch inserts (no batch row, no events, no validation) with
one `session.execute(insert(Job), rows)` and enqueues the same first steps with one `enqueue_many`.
Target: create_batch within 1.5x of the floor.
"""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, text

from bench.env import scratch_database, scratch_redis
from core import batches
from core.auth import create_user
from core.config import load_settings
from core.deps import Dependencies, build_dependencies
from core.models import Base, Job
from core.pipeline import STEPS
from core.queueing import new_rq_job_id

MUSICCAPS = Path("/work/shared/data/musiccaps-public.csv")
ROWS = 10_000
ROUNDS = 3


def concepts(deps: Dependencies) -> list[str]:
    table = batches.read_upload(deps, MUSICCAPS.read_bytes(), MUSICCAPS.name)
    base = [t for _, t in table.values(table.suggested) if t.strip()]
    out, seen, i = [], set(), 0
    while len(out) < ROWS:
        text_ = base[i % len(base)].strip()[: deps.settings.concept_max_chars - 12]
        if i >= len(base):
            text_ = f"{text_} (take {i // len(base) + 1})"
        key = " ".join(text_.casefold().split())  # the duplicate rule of batches.preview
        if key not in seen:
            seen.add(key)
            out.append(text_)
        i += 1
    return out


def reset(deps: Dependencies) -> None:
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in ("users",))
    with deps.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    deps.redis.flushdb()


def floor(deps: Dependencies, user_id: int, rows: list[str]) -> float:
    started = time.perf_counter()
    now = deps.clock()
    corr = uuid.uuid4().hex
    planned, dicts = [], []
    for concept in rows:
        job_id = uuid.uuid4()
        rq_id = new_rq_job_id(str(job_id), STEPS[0])
        dicts.append(
            {
                "id": job_id, "user_id": user_id, "concept": concept, "status": "pending",
                "current_step": STEPS[0], "priority": "batch", "llm_model": "openai/gpt-4o-mini",
                "rq_job_id": rq_id, "next_run_at": now, "correlation_id": corr,
                "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
        planned.append(batches.Planned(str(job_id), STEPS[0], 1, corr, rq_id))
    with deps.sessionmaker.begin() as s:
        s.execute(insert(Job), dicts)
    assert batches.enqueue_first_steps(deps, planned)
    return time.perf_counter() - started


def service(deps: Dependencies, actor, rows: list[str]) -> float:  # noqa: ANN001
    started = time.perf_counter()
    made = batches.create_batch(deps, actor, rows, name="bench", skip_problems=True)
    elapsed = time.perf_counter() - started
    assert made.total == len(rows) and deps.queues.batch.count == len(rows), (
        made.total,
        deps.queues.batch.count,
    )
    return elapsed


def run(report) -> None:  # noqa: ANN001 - bench.report.Report
    with scratch_database("songsmith_bench_ingest") as db_url, scratch_redis() as redis_url:
        deps = build_dependencies(load_settings(database_url=db_url, redis_url=redis_url))
        try:
            actor = create_user(deps, "bench", "bench-password-123")
            rows = concepts(deps)
            floors, services = [], []
            for _ in range(ROUNDS):
                reset(deps)
                floors.append(floor(deps, actor.id, rows))
                reset(deps)
                services.append(service(deps, actor, rows))
            reset(deps)
        finally:
            deps.close()
    f, s = statistics.median(floors), statistics.median(services)
    ratio = s / f
    report.add(
        "Ingest",
        "\n".join(
            [
                f"{ROWS:,} MusicCaps captions (repeated and made unique), PostgreSQL scratch database, "
                f"median of {ROUNDS} rounds.",
                "",
                "| Path | Time | Rows/s |",
                "|---|---|---|",
                f"| floor: one bulk INSERT + one enqueue_many | {f:.2f} s | {ROWS / f:,.0f} |",
                f"| create_batch (validate, batch + jobs + events by COPY, enqueue_many) | {s:.2f} s "
                f"| {ROWS / s:,.0f} |",
                "",
                f"Ratio create_batch / floor: **{ratio:.2f}×** (target ≤ 1.5×: "
                f"{'met' if ratio <= 1.5 else 'NOT met'}).",
            ]
        ),
    )
