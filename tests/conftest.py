"""Shared fixtures: a PostgreSQL database and a Redis db of this run's own, the simulator, Dependencies."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from redis import Redis
from sqlalchemy import text

from core.config import Settings, load_settings
from core.deps import Dependencies, build_dependencies
from core.migrate import upgrade
from core.models import TERMINAL_STATUSES, Base, Job
from simulator.server import RunningSimulator, start_server
from worker.inline import InlineWorker
from worker.tasks import use_dependencies

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
FAST = {
    "poll_initial_seconds": 0.05,
    "poll_growth": 1.2,
    "poll_max_seconds": 0.2,
    "retry_base_seconds": 0.01,
    "retry_max_seconds": 0.05,
    # Cheap argon2id for tests only (a sign-in ~20 ms instead of ~0.5 s); production keeps RFC 9106 costs.
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 8192,
    "password_hash_parallelism": 1,
    "llm_read_timeout": 1.5,
    "http_read_timeout": 5.0,
}


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A database of its own, created from the maintenance DB, migrated, and dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def claimed_redis_db(indexes: Iterable[int], who: str) -> Iterator[str]:
    """Claim an empty Redis db index, with a claim key in db 0 so concurrent runs never share one."""
    admin = Redis.from_url(f"{REDIS_BASE_URL}/0")
    for index in indexes:
        db = Redis.from_url(f"{REDIS_BASE_URL}/{index}")
        if db.dbsize() == 0 and admin.set(f"songsmith:test-db-claim:{index}", os.getpid(), nx=True, ex=3600):
            try:
                yield f"{REDIS_BASE_URL}/{index}"
            finally:
                db.flushdb()
                admin.delete(f"songsmith:test-db-claim:{index}")
                db.close()
                admin.close()
            return
        db.close()
    pytest.fail(f"No free Redis database index (1..15) for {who}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with scratch_database("songsmith_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with claimed_redis_db(range(1, 16), "this test run") as url:
        yield url


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    sim = start_server(port=0)
    yield sim
    sim.stop()


def sim_control(sim: RunningSimulator, path: str, payload: dict | None = None, method: str = "POST") -> dict:
    resp = httpx.request(method, f"{sim.url}{path}", json=payload, timeout=10)
    resp.raise_for_status()
    return resp.json()


@pytest.fixture
def sim(simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    sim_control(simulator, "/_sim/reset")
    sim_control(simulator, "/_sim/config", {"latency": {"llm": 0, "music": 0.3, "image": 0.2}})
    yield simulator
    sim_control(simulator, "/_sim/reset")


def make_settings(
    pg_url: str, redis_url: str, sim_url: str, artifact_dir: Path, **overrides: object
) -> Settings:
    host = sim_url.removeprefix("http://")
    values: dict[str, object] = {
        "database_url": pg_url,
        "redis_url": redis_url,
        "artifact_dir": artifact_dir,
        "openrouter_base_url": f"{sim_url}/api/v1",
        "suno_base_url": sim_url,
        "nanobanana_base_url": sim_url,
        "download_allowed_hosts": host,
        "log_json": True,
        **FAST,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(pg_url: str, redis_url: str, sim: RunningSimulator, tmp_path: Path) -> Settings:
    return make_settings(pg_url, redis_url, sim.url, tmp_path / "artifacts")


def _clean(deps: Dependencies) -> None:
    # DELETE beats TRUNCATE on tables this small (TRUNCATE rewrites files on every call).
    with deps.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))
    deps.redis.flushdb()


@pytest.fixture
def deps(settings: Settings) -> Iterator[Dependencies]:
    d = build_dependencies(settings)
    _clean(d)
    use_dependencies(d)
    yield d
    use_dependencies(None)
    _clean(d)
    d.close()


def work(deps: Dependencies, *, burst_rounds: int = 1) -> None:
    """Run RQ for real: the worker class `python -m worker` runs by default (InlineWorker) in burst
    mode, with the scheduler's enqueue pass."""
    for _ in range(burst_rounds):
        InlineWorker(deps.queues.ordered(), connection=deps.redis).work(burst=True, with_scheduler=True)


def run_until_done(
    deps: Dependencies, job_ids: Iterable[uuid.UUID | str], timeout: float = 30.0
) -> dict[str, str]:
    """Work the queues until every job is terminal (scheduled polls come due as time passes)."""
    ids = [uuid.UUID(str(j)) for j in job_ids]
    deadline = time.monotonic() + timeout
    while True:
        work(deps)
        with deps.sessionmaker() as s:
            statuses = {str(j.id): j.status for j in s.query(Job).filter(Job.id.in_(ids))}
        if all(st in TERMINAL_STATUSES for st in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.05)


@contextmanager
def override_deps(deps: Dependencies, **overrides: object) -> Iterator[Dependencies]:
    """Dependencies with a few settings changed, handed to the in-process worker for the block."""
    other = build_dependencies(load_settings(**{**dict(deps.settings), **overrides}))
    use_dependencies(other)
    try:
        yield other
    finally:
        use_dependencies(deps)
        other.close()


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child process (worker, app) load exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[name.upper()] = str(raw)
    env.update(extra)
    return env
