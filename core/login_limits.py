"""Failed sign-in slow-down: a moving window per lower-cased username, kept in Redis by `limits`."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from core.deps import Dependencies
from core.errors import UserError


class TooManyAttempts(UserError):
    """Same wording whether or not the username exists, so it reveals nothing about accounts."""

    def __init__(self, wait_seconds: int) -> None:
        super().__init__(f"Too many failed sign-ins for this username. Wait {wait_seconds} s and try again.")
        self.wait_seconds = wait_seconds


def _limiter(deps: Dependencies) -> tuple[MovingWindowRateLimiter, RateLimitItemPerSecond]:
    # Reuses the app's Redis connection pool; building these objects opens no socket.
    storage = RedisStorage(
        deps.settings.redis_url,
        connection_pool=deps.redis.connection_pool,
        key_prefix=f"{deps.settings.queue_prefix}:login-failures",
    )
    item = RateLimitItemPerSecond(
        deps.settings.login_max_failures, deps.settings.login_failure_window_seconds
    )
    return MovingWindowRateLimiter(storage), item


def _key(username: str) -> str:
    return (username or "").strip().lower()[:128] or "-"


def check(deps: Dependencies, username: str) -> None:
    """Raises TooManyAttempts while the username has used up its failures in the window."""
    limiter, item = _limiter(deps)
    if limiter.test(item, _key(username)):
        return
    stats = limiter.get_window_stats(item, _key(username))
    raise TooManyAttempts(max(1, math.ceil(stats.reset_time - time.time())))


def record_failure(deps: Dependencies, username: str) -> None:
    limiter, item = _limiter(deps)
    limiter.hit(item, _key(username))


def clear(deps: Dependencies, username: str) -> None:
    """After a successful sign-in the count starts again."""
    limiter, item = _limiter(deps)
    limiter.clear(item, _key(username))
