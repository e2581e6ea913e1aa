"""`python -m worker.cron`: RQ's cron scheduler, enqueueing the reconciler and the rollup refresh."""

from __future__ import annotations

import importlib
import sys

from redis import Redis
from rq.cron import CronScheduler

from core.config import ConfigError, load_settings
from core.logs import configure_logging
from core.queueing import make_queues
from worker.tasks import get_dependencies, reconcile


def refresh_rollups() -> dict[str, object]:
    """Run every ROLLUP_INTERVAL_SECONDS: the Metrics page's hourly and daily aggregates (core/rollup.py)."""
    from core.rollup import refresh

    report = refresh(get_dependencies())
    return {"hours": report.hours, "full": report.full, "skipped": report.skipped}


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging("cron", level=settings.log_level, json=settings.log_json, secrets=settings.secrets)
    redis = Redis.from_url(settings.redis_url)
    queue = make_queues(settings, redis).interactive
    cron = CronScheduler(connection=redis, logging_level=settings.log_level)
    cron.register(
        reconcile,
        queue_name=queue.name,
        interval=settings.reconcile_interval_seconds,
        job_timeout=120,
        result_ttl=60,
    )
    # RQ enqueues a task by its dotted name, and under `python -m` this module is __main__.
    entry = importlib.import_module("worker.cron")
    cron.register(
        entry.refresh_rollups,
        queue_name=queue.name,
        interval=settings.rollup_interval_seconds,
        job_timeout=1800,  # the first build over a large database; later runs take milliseconds
        result_ttl=60,
    )
    cron.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
