"""Rate limits shared through Redis (`limits`, moving windows): job creation per user, provider calls.

Every process (app, workers) counts in the same Redis keys, prefixed with the configured QUEUE_PREFIX.
A moving-window `hit(cost=n)` is one Lua script, so concurrent callers can never take more than the limit.
When Redis does not answer: job creation is refused (nothing is created) and provider steps wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from core import metrics
from core.errors import UserError
from core.logs import get_logger

if TYPE_CHECKING:
    from core.config import Settings
    from core.deps import Dependencies
    from core.pipeline.steps import JobSnapshot
    from core.users import Actor

log = get_logger("songsmith.ratelimit")

REDIS_DOWN = "rate limiter unavailable: Redis is not answering — nothing was created. Try again shortly."
REDIS_DOWN_DELAY = 5.0
MIN_DELAY = 0.05

# Which provider a step run calls (one call per step run: a submit or a poll).
STEP_PROVIDERS = {
    "write_options": "openrouter",
    "write_image_prompt": "openrouter",
    "render_audio": "suno",
    "render_cover": "nanobanana",
}


def make_limiter(deps: Dependencies) -> MovingWindowRateLimiter:
    """A limiter over the process's Redis connection pool; building it opens no socket."""
    storage = RedisStorage(
        deps.settings.redis_url,
        connection_pool=deps.redis.connection_pool,
        key_prefix=f"{deps.settings.queue_prefix}:limits",
        wrap_exceptions=True,
    )
    return MovingWindowRateLimiter(storage)


@dataclass(frozen=True)
class Quota:
    """What one limit still allows: `remaining` creations until `resets_at` (UTC)."""

    label: str
    limit: int
    remaining: int
    resets_at: datetime


def job_limits(settings: Settings) -> list[tuple[str, RateLimitItem]]:
    out: list[tuple[str, RateLimitItem]] = []
    if settings.jobs_per_minute > 0:
        out.append(("per minute", RateLimitItemPerMinute(settings.jobs_per_minute)))
    if settings.jobs_per_day > 0:
        out.append(("per day", RateLimitItemPerDay(settings.jobs_per_day)))
    return out


def job_quota(deps: Dependencies, actor: Actor) -> list[Quota]:
    """Read-only view of the user's job-creation windows (raises UserError when Redis is down)."""
    limiter = make_limiter(deps)
    try:
        return [_quota(limiter, label, item, actor.id) for label, item in job_limits(deps.settings)]
    except (StorageError, RedisError, OSError):
        log.error("rate_limiter_unavailable", user_id=actor.id, what="job_quota")
        raise UserError(REDIS_DOWN) from None


def check_job_quota(deps: Dependencies, actor: Actor, n: int = 1) -> None:
    """Reserve `n` job creations for `actor` in every window, or raise UserError and reserve nothing.

    Call it inside the transaction that creates the jobs, before commit: a refusal rolls everything
    back. A "test" first gives the exact message; the atomic `hit(cost=n)` then decides, so two
    callers racing for the last slots cannot both get them.
    """
    if n <= 0:
        return
    limiter = make_limiter(deps)
    limits = job_limits(deps.settings)
    try:
        for label, item in limits:
            if not limiter.test(item, "jobs", str(actor.id), cost=n):
                _refuse(limiter, label, item, actor, n)
        for label, item in limits:
            if not limiter.hit(item, "jobs", str(actor.id), cost=n):
                _refuse(limiter, label, item, actor, n)
    except (StorageError, RedisError, OSError):
        log.error("rate_limiter_unavailable", user_id=actor.id, what="check_job_quota", jobs=n)
        metrics.rate_limited("jobs", "redis-down")
        raise UserError(REDIS_DOWN) from None


consume_job_quota = check_job_quota


def _quota(limiter: MovingWindowRateLimiter, label: str, item: RateLimitItem, user_id: int) -> Quota:
    stats = limiter.get_window_stats(item, "jobs", str(user_id))
    return Quota(
        label=label,
        limit=item.amount,
        remaining=max(0, stats.remaining),
        resets_at=datetime.fromtimestamp(stats.reset_time, UTC),
    )


def _refuse(limiter: MovingWindowRateLimiter, label: str, item: RateLimitItem, actor: Actor, n: int) -> None:
    quota = _quota(limiter, label, item, actor.id)
    metrics.rate_limited("jobs", label)
    log.info("job_quota_refused", user_id=actor.id, jobs=n, window=label, remaining=quota.remaining)
    wait = max(0, round((quota.resets_at - datetime.now(UTC)).total_seconds()))
    asked = "this job" if n == 1 else f"these {n} jobs"
    raise UserError(
        f"Job limit reached: you may create {quota.remaining} more job(s) right now "
        f"(limit {quota.limit} {label}), so {asked} cannot be created. Nothing was created. "
        f"The window frees up at {quota.resets_at:%H:%M:%S} UTC (in {wait} s)."
    )


def provider_limits(settings: Settings) -> dict[str, RateLimitItem]:
    out: dict[str, RateLimitItem] = {}
    if settings.openrouter_rpm > 0:
        out["openrouter"] = RateLimitItemPerMinute(settings.openrouter_rpm)
    if settings.suno_requests_per_10s > 0:
        out["suno"] = RateLimitItemPerSecond(settings.suno_requests_per_10s, 10)
    if settings.nanobanana_requests_per_10s > 0:
        out["nanobanana"] = RateLimitItemPerSecond(settings.nanobanana_requests_per_10s, 10)
    return out


class ProviderRateGate:
    """A StepGate: a step whose provider window is full is rescheduled for when it frees, never failed."""

    def __init__(self, items: dict[str, RateLimitItem]) -> None:
        self.items = items

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderRateGate:
        return cls(provider_limits(settings))

    def admit(self, deps: Dependencies, job: JobSnapshot, step: str) -> float | None:
        provider = STEP_PROVIDERS.get(step)
        item = self.items.get(provider or "")
        if provider is None or item is None:
            return None
        limiter = make_limiter(deps)
        try:
            if limiter.hit(item, "provider", provider):
                return None
            stats = limiter.get_window_stats(item, "provider", provider)
        except (StorageError, RedisError, OSError):
            log.error("rate_limiter_unavailable", provider=provider, job_id=str(job.id), step=step)
            metrics.rate_limited(provider, "redis-down")
            return REDIS_DOWN_DELAY
        # Jitter spreads the waiters: a moving window frees one slot at a time.
        delay = max(MIN_DELAY, stats.reset_time - datetime.now(UTC).timestamp()) + random.uniform(0, 0.25)
        metrics.rate_limited(provider, "window-full")
        log.info("provider_rate_limited", provider=provider, step=step, delay=round(delay, 2))
        return delay

    def release(self, deps: Dependencies, job: JobSnapshot, step: str, outcome: str) -> None:
        """Calls made stay counted in the window; nothing to give back."""
        del deps, job, step, outcome
