"""Rate limits: racing callers never exceed a limit, batches count their jobs, provider limits postpone."""

from __future__ import annotations

import dataclasses
import multiprocessing
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from prometheus_client import REGISTRY
from redis import Redis
from sqlalchemy import func, select

from core.deps import build_dependencies
from core.errors import UserError
from core.jobs import submit_job
from core.models import Job
from core.ratelimit import REDIS_DOWN, ProviderRateGate, check_job_quota, job_quota, make_limiter
from tests.conftest import make_settings, run_until_done, sim_control
from tests.factories import make_user
from worker.tasks import use_dependencies


def _with(deps, **overrides):
    settings = deps.settings.model_copy(update=overrides)
    return dataclasses.replace(deps, settings=settings)


def test_threads_racing_for_one_limit_never_get_more_than_it(deps):
    alice = make_user(deps)
    limited = _with(deps, jobs_per_minute=10, jobs_per_day=0)
    barrier = threading.Barrier(16)

    def attempt(_: int) -> bool:
        barrier.wait()
        try:
            check_job_quota(limited, alice, 1)
            return True
        except UserError:
            return False

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(32)))
    assert sum(results) == 10
    assert job_quota(limited, alice)[0].remaining == 0


def _hit_in_child(redis_url: str, prefix: str, tries: int, out: multiprocessing.Queue) -> None:
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    limiter = MovingWindowRateLimiter(RedisStorage(redis_url, key_prefix=f"{prefix}:limits"))
    item = RateLimitItemPerMinute(15)
    out.put(sum(bool(limiter.hit(item, "jobs", "42", cost=1)) for _ in range(tries)))


def test_processes_racing_for_one_limit_never_get_more_than_it(deps):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    prefix = deps.settings.queue_prefix
    procs = [
        ctx.Process(target=_hit_in_child, args=(deps.settings.redis_url, prefix, 10, out)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    granted = sum(out.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(10)
    assert granted == 15
    # The app's own view of the same key agrees: nothing left this minute.
    item = RateLimitItemPerMinute(15)
    assert make_limiter(deps).get_window_stats(item, "jobs", "42").remaining == 0


def test_a_batch_counts_all_its_jobs_and_is_refused_whole(deps):
    alice = make_user(deps)
    limited = _with(deps, jobs_per_minute=10, jobs_per_day=100)
    check_job_quota(limited, alice, 7)
    with pytest.raises(UserError) as refused:
        check_job_quota(limited, alice, 4)
    message = refused.value.message
    assert "you may create 3 more job(s)" in message and "limit 10 per minute" in message
    assert "these 4 jobs" in message and "Nothing was created" in message and "UTC (in " in message
    check_job_quota(limited, alice, 3)  # the refused batch took nothing
    quotas = {q.label: q.remaining for q in job_quota(limited, alice)}
    assert quotas == {"per minute": 0, "per day": 90}


def test_submit_over_the_limit_creates_nothing(deps):
    alice = make_user(deps)
    limited = _with(deps, jobs_per_minute=2)
    submit_job(limited, alice, "one")
    submit_job(limited, alice, "two")
    with pytest.raises(UserError, match="you may create 0 more"):
        submit_job(limited, alice, "three")
    with deps.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 2
    assert deps.queues.interactive.count == 2
    # A second user has a window of their own.
    submit_job(limited, make_user(deps, "bob"), "bob's")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redis_down_refuses_job_creation_clearly_and_gates_wait(deps, pg_url, sim, tmp_path):
    alice = make_user(deps)
    bad = make_settings(pg_url, f"redis://127.0.0.1:{_closed_port()}/0", sim.url, tmp_path / "a")
    broken = build_dependencies(bad)
    try:
        with pytest.raises(UserError) as refused:
            submit_job(broken, alice, "a song while Redis is down")
        assert refused.value.message == REDIS_DOWN
        with deps.sessionmaker() as s:
            assert s.scalar(select(func.count()).select_from(Job)) == 0
        gate = ProviderRateGate.from_settings(bad)
        job = dataclasses.make_dataclass("Snap", ["id"])(id="x")
        assert gate.admit(broken, job, "render_audio") == pytest.approx(5.0)
        assert gate.admit(broken, job, "store") is None  # no provider call, nothing to limit
    finally:
        broken.close()


def _gated_runs() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "songsmith_step_runs":
            total += sum(s.value for s in metric.samples if s.labels.get("outcome") == "gated")
    return total


def test_a_step_over_a_provider_limit_is_rescheduled_and_the_job_completes(deps, sim):
    alice = make_user(deps)
    gate = ProviderRateGate(
        {"suno": RateLimitItemPerSecond(1, 1), "nanobanana": RateLimitItemPerSecond(1, 1)}
    )
    gated = dataclasses.replace(deps, gates=(gate,))
    use_dependencies(gated)
    before = _gated_runs()
    jobs = [submit_job(gated, alice, f"song {i}") for i in range(3)]
    statuses = run_until_done(gated, [j.id for j in jobs], timeout=60)
    assert set(statuses.values()) == {"completed"}
    assert _gated_runs() > before, "some step runs were gated rather than run"
    # The window was respected: Suno calls at least ~1 s apart, and the keys carry the prefix.
    calls = sim_control(sim, "/_sim/requests", method="GET")["requests"]
    times = sorted(r["time"] for r in calls if (r.get("endpoint") or "").startswith("suno_"))
    assert len(times) >= 6
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) > 0.9
    keys = Redis.from_url(deps.settings.redis_url).keys(f"{deps.settings.queue_prefix}:limits*")
    assert keys
