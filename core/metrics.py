"""Prometheus metrics: step and job durations, outcomes, provider calls, retries, rate-limit rejections.

RQ forks a work-horse per step run, so the worker runs prometheus_client in multiprocess mode: each
process writes its samples to files under PROMETHEUS_MULTIPROC_DIR (set from METRICS_DIR by
`enable_multiprocess` before prometheus_client is first imported), and `python -m core.metrics_server`
sums them at scrape time, adding gauges (queue depth, remote tasks in flight) read live from Redis/DB.
prometheus_client is imported lazily so that importing this module has no side effects and the
environment decides the mode. Recording never raises: a metrics failure must not break a step.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.logs import get_logger

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from core.deps import Dependencies

log = get_logger("songsmith.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
JOB_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
FINISHED_OUTCOMES = {"advanced", "completed", "failed"}
_state: dict[str, Any] = {}


def enable_multiprocess(directory: Path | str) -> bool:
    """Point prometheus_client at a shared directory; only effective before it is first imported."""
    if MULTIPROC_ENV in os.environ:
        return True
    if "prometheus_client" in sys.modules:
        log.warning("metrics_multiprocess_too_late", directory=str(directory))
        return False
    Path(directory).mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(Path(directory).resolve())
    return True


def wipe(directory: Path | str) -> None:
    """Clear a multiprocess directory; only when no process of the product is running."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for f in path.glob("*.db"):
        f.unlink(missing_ok=True)


class Metrics:
    """The collectors, created on `registry` (prometheus_client's default one in real processes)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        reg = registry if registry is not None else REGISTRY
        self.job_duration = Histogram(
            "songsmith_job_duration_seconds",
            "Time from submit to completed/failed, per job.",
            ["outcome"],
            buckets=JOB_BUCKETS,
            registry=reg,
        )
        self.step_duration = Histogram(
            "songsmith_step_duration_seconds",
            "Time from a step's start (first claim) to its finish, polls included.",
            ["step", "outcome"],
            buckets=STEP_BUCKETS,
            registry=reg,
        )
        self.jobs_finished = Counter(
            "songsmith_jobs_finished",
            "Jobs that reached a terminal state, by outcome and the step that failed.",
            ["outcome", "failed_step"],
            registry=reg,
        )
        self.provider_latency = Histogram(
            "songsmith_provider_request_duration_seconds",
            "One HTTP call to a provider, by provider, endpoint and status (or error kind).",
            ["provider", "endpoint", "status"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        self.provider_retries = Counter(
            "songsmith_provider_retries",
            "Step runs rescheduled after a transient provider error.",
            ["provider", "step"],
            registry=reg,
        )
        self.step_runs = Counter(
            "songsmith_step_runs",
            "Step runs by outcome word (advanced, waiting, retrying, gated, failed, ...).",
            ["step", "outcome"],
            registry=reg,
        )
        self.rate_limited = Counter(
            "songsmith_rate_limit_rejections",
            "Requests refused or postponed by a rate limit, by limit and reason.",
            ["limit", "reason"],
            registry=reg,
        )


def get() -> Metrics:
    """This process's Metrics (one per process: prometheus_client's registry is process-wide)."""
    m = _state.get("metrics")
    if m is None:
        m = _state["metrics"] = Metrics()
    return m


def step_finished(
    step: str,
    outcome: str,
    step_started_at: datetime,
    now: datetime,
    job_created_at: datetime | None,
    job_finished_at: datetime | None,
    provider: str | None = None,
) -> None:
    """Called by the runner after each step run's transaction commits."""
    try:
        m = get()
        m.step_runs.labels(step, outcome).inc()
        if outcome in FINISHED_OUTCOMES:
            m.step_duration.labels(step, outcome).observe(max(0.0, (now - step_started_at).total_seconds()))
        if outcome == "retrying":
            from core.ratelimit import STEP_PROVIDERS

            m.provider_retries.labels(provider or STEP_PROVIDERS.get(step, "other"), step).inc()
        if outcome in ("completed", "failed"):
            m.jobs_finished.labels(outcome, step if outcome == "failed" else "").inc()
            if job_created_at is not None:
                end = job_finished_at or now
                m.job_duration.labels(outcome).observe(max(0.0, (end - job_created_at).total_seconds()))
    except Exception:
        log.warning("metrics_failed", what="step_finished", exc_info=True)


def provider_call(provider: str, endpoint: str, status: str, seconds: float) -> None:
    try:
        get().provider_latency.labels(provider, endpoint, status).observe(seconds)
    except Exception:
        log.warning("metrics_failed", what="provider_call", exc_info=True)


def rate_limited(limit: str, reason: str) -> None:
    try:
        get().rate_limited.labels(limit, reason).inc()
    except Exception:
        log.warning("metrics_failed", what="rate_limited", exc_info=True)


class LiveCollector:
    """Gauges computed at scrape time: queue depth per queue and state, remote tasks in flight."""

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    def describe(self) -> list[Any]:
        return []  # no collect() at registration time: that would open sockets

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        from core.queueing import queue_depths
        from core.stats import in_flight

        depth = GaugeMetricFamily(
            "songsmith_queue_depth", "RQ jobs per queue and state.", labels=["queue", "state"]
        )
        up = GaugeMetricFamily("songsmith_live_gauges_up", "1 when Redis and the DB answered this scrape.")
        ok = 1.0
        try:
            for queue, counts in queue_depths(self.deps.queues).items():
                for state, n in counts.items():
                    depth.add_metric([queue, state], float(n))
        except Exception:
            ok = 0.0
            log.warning("metrics_queue_depth_failed", exc_info=True)
        flight = GaugeMetricFamily(
            "songsmith_remote_tasks_in_flight",
            "Submitted remote tasks not finished yet.",
            labels=["provider"],
        )
        try:
            for provider, n in in_flight(self.deps).items():
                flight.add_metric([provider], float(n))
        except Exception:
            ok = 0.0
            log.warning("metrics_in_flight_failed", exc_info=True)
        up.add_metric([], ok)
        yield from (depth, flight, up)


class _ThisProcess:
    """Exposes this process's own default registry (single-process mode: tests, SimpleWorker)."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()


def exposition_registry(deps: Dependencies | None, multiproc_dir: Path | str | None) -> CollectorRegistry:
    """What /metrics serves: every process's samples (multiprocess files or this process) + live gauges."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if multiproc_dir:
        MultiProcessCollector(registry, path=str(multiproc_dir))
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    if deps is not None:
        registry.register(LiveCollector(deps))  # type: ignore[arg-type]
    return registry


def serve(
    deps: Dependencies | None, host: str, port: int, multiproc_dir: Path | str | None
) -> tuple[Any, Any]:
    """Start the /metrics HTTP server in a daemon thread; returns (server, thread)."""
    from prometheus_client import start_http_server

    registry = exposition_registry(deps, multiproc_dir)
    return start_http_server(port, addr=host, registry=registry)
