"""RQ queues and enqueueing of pipeline steps; queue depth for the metrics page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue, Retry

if TYPE_CHECKING:
    from core.config import Settings

STEP_TASK = "worker.tasks.run_step"
INTERACTIVE = "interactive"
BATCH = "batch"


@dataclass(frozen=True)
class Queues:
    """Interactive work is listed first, so a worker always takes a hand-submitted job before batch work."""

    interactive: Queue
    batch: Queue

    def for_priority(self, priority: str) -> Queue:
        return self.batch if priority == BATCH else self.interactive

    def ordered(self) -> list[Queue]:
        return [self.interactive, self.batch]


def make_queues(settings: Settings, redis: Redis) -> Queues:
    return Queues(
        interactive=Queue(f"{settings.queue_prefix}-{INTERACTIVE}", connection=redis),
        batch=Queue(f"{settings.queue_prefix}-{BATCH}", connection=redis),
    )


def new_rq_job_id(job_id: str, step: str) -> str:
    return f"{job_id}_{step}_{uuid.uuid4().hex[:10]}"


def enqueue_step(
    settings: Settings,
    queue: Queue,
    *,
    job_id: str,
    step: str,
    attempt: int,
    correlation_id: str,
    rq_job_id: str,
    delay: float = 0.0,
) -> None:
    """Put one step run on RQ; with a delay it goes to RQ's scheduler instead of a sleeping worker."""
    kwargs = {
        "job_id": rq_job_id,
        "job_timeout": settings.job_timeout_seconds,
        "result_ttl": settings.result_ttl_seconds,
        "failure_ttl": settings.failure_ttl_seconds,
        "meta": {"correlation_id": correlation_id, "step": step, "attempt": attempt},
        "description": f"{step} for job {job_id}",
        # An exception outside the step (database down, worker killed) retries the same delivery,
        # which may re-take its own lease; provider errors never reach RQ, the runner handles them.
        "retry": Retry(max=3, interval=[2, 10, 30]),
    }
    # RQ's scheduler works in whole seconds; a shorter wait is not worth a round trip through it.
    if delay >= 0.5:
        queue.enqueue_in(timedelta(seconds=delay), STEP_TASK, job_id, step, attempt, **kwargs)
    else:
        queue.enqueue(STEP_TASK, job_id, step, attempt, **kwargs)


def queue_depths(queues: Queues) -> dict[str, dict[str, int]]:
    """Queued, scheduled and started counts per queue, read from Redis at call time."""
    out: dict[str, dict[str, int]] = {}
    for name, q in ((INTERACTIVE, queues.interactive), (BATCH, queues.batch)):
        out[name] = {
            "queued": q.count,
            "scheduled": q.scheduled_job_registry.count,
            "started": q.started_job_registry.count,
        }
    return out
