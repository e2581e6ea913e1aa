"""Throughput: hundreds of jobs in flight on two workers, and the pipeline's cost per step next to RQ's.

1. In flight — N jobs (default 300) against the simulator with slow music and image tasks, run by two
   `python -m worker` processes, against one job alone on the same stack (ratio; target ≤ 2×).
2. Orchestration — M jobs (default 2,000) with zero simulator latency against M × 6 no-op RQ jobs on the
   same two workers (per-step ratio; target ≤ 1.5×).
Peak RSS of the worker processes (parents and their forked work-horses) and of Streamlit is sampled
throughout. Sizes: BENCH_INFLIGHT_JOBS, BENCH_LATENCY, BENCH_ORCH_JOBS.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rq import Queue
from sqlalchemy import func, select

from bench.env import scratch_database, scratch_redis
from bench.report import Report
from core import stack as stk
from core.config import load_settings
from core.deps import build_dependencies
from core.jobs import submit_job
from core.models import TERMINAL_STATUSES, Job
from core.pipeline import STEPS
from core.users import actor_for, ensure_user

ROOT = Path(__file__).resolve().parent.parent


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class RssSampler(threading.Thread):
    """Samples RSS of named processes and their direct children (the forked work-horses)."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            for name, pid in self.pids.items():
                rss = max([_rss_kb(pid)] + [_rss_kb(c) for c in _children(pid)])
                self.peak[name] = max(self.peak[name], rss)
            time.sleep(0.2)


def _wait_all(deps: Any, count: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with deps.sessionmaker() as s:
            done = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(TERMINAL_STATUSES)))
        if done >= count:
            return time.monotonic() - started
        time.sleep(0.25)
    raise TimeoutError(f"only {done} of {count} jobs finished within {timeout:.0f}s")


def _statuses(deps: Any) -> dict[str, int]:
    with deps.sessionmaker() as s:
        return dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())


def _with_stack(env: dict[str, str], sim_port: int, body: Callable[[stk.Stack, RssSampler], None]) -> None:
    stack = stk.Stack(env=env, log_dir=ROOT / "bench" / "out")
    try:
        sim = stack.start("simulator", [stk.PY, "-m", "simulator", "--port", str(sim_port)])
        stk.wait_http(f"http://127.0.0.1:{sim_port}/_sim/health", proc=sim)
        workers = [
            stack.start(f"worker{i}", [stk.PY, "-m", "worker", "--name", f"bench-{i}-{os.getpid()}"])
            for i in (1, 2)
        ]
        app_port = stk.free_port()
        app = stack.start(
            "app",
            [
                stk.PY,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(app_port),
                "--server.headless",
                "true",
            ],
        )
        stk.wait_http(f"http://127.0.0.1:{app_port}/_stcore/health", proc=app, timeout=90)
        sampler = RssSampler({"worker1": workers[0].pid, "worker2": workers[1].pid, "streamlit": app.pid})
        sampler.start()
        try:
            body(stack, sampler)
        finally:
            sampler.stop_event.set()
    finally:
        stack.stop()


def _env(
    settings_overrides: dict[str, str], db_url: str, redis_url: str, sim_port: int, art: Path
) -> dict[str, str]:
    sim = f"http://127.0.0.1:{sim_port}"
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "ARTIFACT_DIR": str(art),
        "OPENROUTER_BASE_URL": f"{sim}/api/v1",
        "SUNO_BASE_URL": sim,
        "NANOBANANA_BASE_URL": sim,
        "DOWNLOAD_ALLOWED_HOSTS": f"127.0.0.1:{sim_port}",
        "LOG_LEVEL": "WARNING",
        # The benchmark measures orchestration, not provider quotas: caps and windows are opened up.
        "MUSIC_MAX_IN_FLIGHT": "100000",
        "IMAGE_MAX_IN_FLIGHT": "100000",
        "OPENROUTER_RPM": "0",
        "SUNO_REQUESTS_PER_10S": "0",
        "NANOBANANA_REQUESTS_PER_10S": "0",
        "JOBS_PER_MINUTE": "0",
        "JOBS_PER_DAY": "0",
        "METRICS_PORT": str(stk.free_port()),
        # A real provider renders on its own machines: the simulator reuses 16 renders per kind instead
        # of spending ~100 ms of these 2 cores per song (measured: 50 ms WAV + 50 ms PNG).
        "SIM_RENDER_VARIETY": "16",
        **settings_overrides,
    }


def _inflight(report: Report, lines: list[str]) -> None:
    n = int(os.environ.get("BENCH_INFLIGHT_JOBS", "300"))
    latency = float(os.environ.get("BENCH_LATENCY", "20"))
    sim_port = stk.free_port()
    with scratch_database() as db_url, scratch_redis() as redis_url:
        env = _env(
            {"POLL_INITIAL_SECONDS": "2", "POLL_GROWTH": "1.5", "POLL_MAX_SECONDS": "5"},
            db_url,
            redis_url,
            sim_port,
            ROOT / "bench" / "out" / "artifacts-inflight",
        )
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "ARTIFACT_DIR")})

        def body(_stack: stk.Stack, sampler: RssSampler) -> None:
            httpx.post(
                f"http://127.0.0.1:{sim_port}/_sim/config",
                json={"latency": {"llm": 0.05, "music": latency, "image": latency}},
            )
            deps = build_dependencies(
                load_settings(**{k.lower(): v for k, v in env.items() if k in _SETTINGS_KEYS})
            )
            with deps.sessionmaker.begin() as s:
                actor = actor_for(ensure_user(s, "bench"))
            submit_job(deps, actor, "A single slow song, alone on the stack")
            one = _wait_all(deps, 1, 600)
            t0 = time.monotonic()
            for i in range(n):
                submit_job(deps, actor, f"Song {i}: a rainy-night jazz ballad about lighthouse number {i}")
            submit_s = time.monotonic() - t0
            many = _wait_all(deps, n + 1, 1800) + submit_s
            statuses = _statuses(deps)
            deps.close()
            report.line(
                lines, f"- 1 job alone: **{one:.1f} s** (music and image tasks take {latency:.0f} s each)"
            )
            report.line(
                lines, f"- {n} jobs at once on 2 workers: **{many:.1f} s** (submitting took {submit_s:.1f} s)"
            )
            verdict = "met" if many / one <= 2 else "MISSED"
            report.line(
                lines,
                f"- ratio: **{many / one:.2f}×** one job's time (target ≤ 2×: {verdict}); "
                f"a worker that slept while polling would need ≈{n / 2:.0f}×",
            )
            report.line(lines, f"- final statuses: {statuses}")
            report.line(
                lines, "- peak RSS: " + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in sampler.peak.items())
            )

        _with_stack(env, sim_port, body)


def _orchestration(report: Report, lines: list[str], worker_class: str, m: int) -> None:
    sim_port = stk.free_port()
    report.line(lines, "")
    report.line(lines, f"**WORKER_CLASS={worker_class}**")
    with scratch_database() as db_url, scratch_redis() as redis_url:
        env = _env(
            {"POLL_INITIAL_SECONDS": "0", "POLL_MAX_SECONDS": "0.1", "WORKER_CLASS": worker_class},
            db_url,
            redis_url,
            sim_port,
            ROOT / "bench" / "out" / "artifacts-orch",
        )

        def body(_stack: stk.Stack, sampler: RssSampler) -> None:
            httpx.post(
                f"http://127.0.0.1:{sim_port}/_sim/config",
                json={"latency": {"llm": 0, "music": 0, "image": 0}},
            )
            deps = build_dependencies(
                load_settings(**{k.lower(): v for k, v in env.items() if k in _SETTINGS_KEYS})
            )
            # Floor: m × 6 no-op RQ jobs on the same two workers, enqueued in one pipeline.
            q: Queue = deps.queues.interactive
            noops = m * len(STEPS)
            t0 = time.monotonic()
            for start in range(0, noops, 1000):
                q.enqueue_many(
                    [
                        Queue.prepare_data("bench.noop.noop", result_ttl=0)
                        for _ in range(min(1000, noops - start))
                    ]
                )
            while q.count or q.started_job_registry.count:
                time.sleep(0.1)
            floor = time.monotonic() - t0
            with deps.sessionmaker.begin() as s:
                actor = actor_for(ensure_user(s, "bench"))
            t0 = time.monotonic()
            for i in range(m):
                submit_job(deps, actor, f"Song {i}: an upbeat synth-pop song about bicycle {i}")
            took = _wait_all(deps, m, 3600) + (time.monotonic() - t0 - 0)
            took = time.monotonic() - t0
            statuses = _statuses(deps)
            deps.close()
            per_step = took / (m * len(STEPS))
            per_noop = floor / noops
            verdict = "met" if per_step / per_noop <= 1.5 else "MISSED"
            report.line(
                lines,
                f"- floor: {noops:,} no-op RQ jobs in **{floor:.1f} s** "
                f"({noops / floor:.0f}/s, {per_noop * 1000:.1f} ms each)",
            )
            report.line(
                lines,
                f"- pipeline: {m:,} jobs × {len(STEPS)} steps in **{took:.1f} s** "
                f"({m / took:.1f} jobs/s, {per_step * 1000:.1f} ms per step)",
            )
            report.line(
                lines,
                f"- ratio per step: **{per_step / per_noop:.2f}×** the no-op floor "
                f"(target ≤ 1.5×: {verdict}); each job also makes 2 status checks "
                "(one per remote task), counted inside the pipeline time",
            )
            report.line(lines, f"- final statuses: {statuses}")
            report.line(
                lines, "- peak RSS: " + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in sampler.peak.items())
            )

        _with_stack(env, sim_port, body)


_SETTINGS_KEYS = {
    "MUSIC_MAX_IN_FLIGHT",
    "IMAGE_MAX_IN_FLIGHT",
    "OPENROUTER_RPM",
    "SUNO_REQUESTS_PER_10S",
    "NANOBANANA_REQUESTS_PER_10S",
    "JOBS_PER_MINUTE",
    "JOBS_PER_DAY",
    "DATABASE_URL",
    "REDIS_URL",
    "ARTIFACT_DIR",
    "OPENROUTER_BASE_URL",
    "SUNO_BASE_URL",
    "NANOBANANA_BASE_URL",
    "DOWNLOAD_ALLOWED_HOSTS",
    "POLL_INITIAL_SECONDS",
    "POLL_GROWTH",
    "POLL_MAX_SECONDS",
}


def run(report: Report) -> None:
    lines = report.section("In flight: many jobs waiting on slow providers")
    _inflight(report, lines)
    lines = report.section("Orchestration cost per step")
    m = int(os.environ.get("BENCH_ORCH_JOBS", "2000"))
    # The default inline worker at full size; RQ's forking worker beside it at a quarter (it is slower).
    _orchestration(report, lines, "inline", m)
    _orchestration(report, lines, "fork", int(os.environ.get("BENCH_ORCH_FORK_JOBS", str(max(1, m // 4)))))
