"""`python -m worker`: an RQ worker with the scheduler on the interactive and batch queues.

WORKER_CLASS picks how a step runs: `inline` (default) in this process, `fork` in a forked work-horse
per step as RQ's `Worker` does (see worker/inline.py for the trade).
"""

from __future__ import annotations

import argparse
import sys

from redis import Redis
from rq import Worker

from core.config import ConfigError, load_settings
from core.logs import configure_logging
from core.metrics import enable_multiprocess
from core.queueing import make_queues
from worker.inline import InlineWorker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    parser.add_argument(
        "--no-scheduler", action="store_true", help="do not run RQ's scheduler in this worker"
    )
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging("worker", level=settings.log_level, json=settings.log_json, secrets=settings.secrets)
    # Before prometheus_client is imported: every forked work-horse writes its samples to METRICS_DIR.
    enable_multiprocess(settings.metrics_dir)
    # Preload the task code so each forked work-horse skips ~1.5 s of imports per step; importing opens
    # no connections (tests/unit/test_no_side_effects.py), so nothing pooled crosses fork().
    from core import metrics
    from core.deps import build_dependencies
    from worker import tasks

    metrics.get()  # import prometheus_client and create the collectors once, not in every work-horse
    # Build everything a step needs here, once (~0.4 s); work-horses are forks of this process.
    forking = settings.worker_class == "fork"
    tasks.prepare_parent(build_dependencies(settings), warm=forking)
    redis = Redis.from_url(settings.redis_url)
    queues = make_queues(settings, redis)
    if forking:
        worker_class: type[Worker] | type[InlineWorker] = Worker
    else:
        worker_class = InlineWorker
    worker = worker_class(
        queues.ordered(),
        connection=redis,
        name=args.name,
        job_monitoring_interval=settings.worker_heartbeat_seconds,
    )
    worker.work(burst=args.burst, with_scheduler=not args.no_scheduler, logging_level=settings.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
