"""Per-provider caps on remote tasks in flight, shared by every worker through Redis, with per-user fairness.

A StepGate (see core.deps). A *submit* step — render_audio before a music task id exists, render_cover
before an image task id exists — must hold a slot of its provider before it runs, and keeps it while
the job polls the remote task; the slot is released when that step finishes (advanced, completed,
failed, cancelled). Over the cap the step is rescheduled after a short jittered delay, never failed.

Redis layout (keys carry QUEUE_PREFIX), per provider `p`:
  {prefix}:cap:{p}:slots        ZSET job id → expiry (epoch s). Holders; an entry past its expiry is
                                 a crashed or forgotten holder and is dropped on the next acquire.
  {prefix}:cap:{p}:user:{uid}   ZSET job id → expiry: the slots one user's *batch* jobs hold.
  {prefix}:cap:{p}:demand       ZSET user id → last time that user's batch jobs asked for a slot.
  {prefix}:cap:{p}:peak         the most slots ever held at once (for tests and the metrics page).

Fairness rule: while n users' batch jobs have asked for a slot in the last DEMAND_WINDOW seconds, one
user's batch jobs may hold at most share = max(1, cap // n) slots. With one batch user the share is the
whole cap, so capacity is never left idle; when a second user's batch arrives, the first one's share
halves and the newcomer gets slots as the first user's tasks finish. Interactive jobs are bounded only
by the cap (they already jump the queue: the worker lists the interactive queue first).
"""

from __future__ import annotations

import random
import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.logs import get_logger
from core.models import Job

if TYPE_CHECKING:
    from core.deps import Dependencies
    from core.pipeline.steps import JobSnapshot

log = get_logger("songsmith.capacity")

# step → (provider, the snapshot field that is None until the remote task was submitted)
SUBMIT_STEPS = {"render_audio": ("music", "music_task_id"), "render_cover": ("image", "image_task_id")}
RELEASE_OUTCOMES = frozenset({"advanced", "completed", "failed", "cancelled"})
DEMAND_WINDOW = 30.0

# KEYS: slots, user slots, demand, peak. ARGV: now, expiry, job id, cap, is_batch (0/1), user id, window.
# Returns {1, held} when the slot is held (already or newly), {0, held} when the cap is full,
# {-1, held} when this user's batch jobs are at their fair share while others are waiting.
_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[7]))
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  return {1, redis.call('ZCARD', KEYS[1])}
end
local batch = ARGV[5] == '1'
if batch then redis.call('ZADD', KEYS[3], now, ARGV[6]) end
local held = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[4])
if held >= cap then return {0, held} end
if batch then
  local users = redis.call('ZCARD', KEYS[3])
  local share = math.max(1, math.floor(cap / math.max(1, users)))
  if redis.call('ZCARD', KEYS[2]) >= share then return {-1, held} end
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
held = held + 1
if held > tonumber(redis.call('GET', KEYS[4]) or '0') then redis.call('SET', KEYS[4], held) end
return {1, held}
"""


class CapacityGate:
    """Admits a submit step only with a free slot of its provider (cap from MUSIC/IMAGE_MAX_IN_FLIGHT)."""

    def __init__(
        self, prefix: str, caps: dict[str, int], *, retry_seconds: float, hold_seconds: dict[str, float]
    ):
        self.prefix = prefix
        self.caps = caps
        self.retry_seconds = retry_seconds
        self.hold_seconds = hold_seconds

    @classmethod
    def from_settings(cls, settings) -> CapacityGate:  # noqa: ANN001 - core.config.Settings
        return cls(
            settings.queue_prefix,
            {"music": settings.music_max_in_flight, "image": settings.image_max_in_flight},
            retry_seconds=settings.capacity_retry_seconds,
            # A holder that vanished (worker killed, job cancelled between polls) frees its slot after
            # the provider deadline plus one lease: no live task can be in flight longer than that.
            hold_seconds={
                "music": settings.music_deadline_seconds + settings.lease_seconds,
                "image": settings.image_deadline_seconds + settings.lease_seconds,
            },
        )

    def key(self, provider: str, part: str) -> str:
        return f"{self.prefix}:cap:{provider}:{part}"

    def admit(self, deps: Dependencies, job: JobSnapshot, step: str) -> float | None:
        spec = SUBMIT_STEPS.get(step)
        if spec is None:
            return None
        provider, task_field = spec
        if getattr(job, task_field) is not None:
            self._refresh(deps, provider, job)  # a poll of a held task: keep the slot alive
            return None
        user_id, batch_id = job.user_id, job.batch_id
        now = time.time()
        ok, held = deps.redis.eval(
            _ACQUIRE,
            4,
            self.key(provider, "slots"),
            self.key(provider, f"user:{user_id}"),
            self.key(provider, "demand"),
            self.key(provider, "peak"),
            now,
            now + self.hold_seconds[provider],
            str(job.id),
            self.caps[provider],
            "1" if batch_id is not None else "0",
            user_id,
            DEMAND_WINDOW,
        )
        if int(ok) == 1:
            return None
        delay = self.retry_seconds * random.uniform(1.0, 2.0)
        log.info(
            "capacity_wait",
            job_id=str(job.id),
            provider=provider,
            held=int(held),
            reason="cap" if int(ok) == 0 else "fair-share",
        )
        return delay

    def release(self, deps: Dependencies, job: JobSnapshot, step: str, outcome: str) -> None:
        spec = SUBMIT_STEPS.get(step)
        if spec is None or outcome not in RELEASE_OUTCOMES:
            return
        self.release_jobs(deps, spec[0], [job.id])

    def release_jobs(self, deps: Dependencies, provider: str, job_ids: list[uuid.UUID]) -> None:
        if not job_ids:
            return
        members = [str(j) for j in job_ids]
        with deps.redis.pipeline() as pipe:
            pipe.zrem(self.key(provider, "slots"), *members)
            for user_id in _owners(deps, job_ids):
                pipe.zrem(self.key(provider, f"user:{user_id}"), *members)
            pipe.execute()

    def _refresh(self, deps: Dependencies, provider: str, job: JobSnapshot) -> None:
        """The snapshot carries the owner, so a status check costs Redis only, not a query."""
        expiry = time.time() + self.hold_seconds[provider]
        with deps.redis.pipeline() as pipe:
            pipe.zadd(self.key(provider, "slots"), {str(job.id): expiry}, xx=True)
            pipe.zadd(self.key(provider, f"user:{job.user_id}"), {str(job.id): expiry}, xx=True)
            pipe.execute()

    def in_flight(self, deps: Dependencies, provider: str) -> int:
        return int(deps.redis.zcount(self.key(provider, "slots"), time.time(), "+inf"))

    def peak(self, deps: Dependencies, provider: str) -> int:
        return int(deps.redis.get(self.key(provider, "peak")) or 0)


def _owners(deps: Dependencies, job_ids: list[uuid.UUID]) -> set[int]:
    with deps.sessionmaker() as s:
        return set(s.scalars(select(Job.user_id).where(Job.id.in_(job_ids)).distinct()))
