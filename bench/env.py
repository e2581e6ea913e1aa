"""Scratch infrastructure for a benchmark: its own PostgreSQL database and Redis db, dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from redis import Redis

from core.migrate import upgrade

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")


@contextmanager
def scratch_database(prefix: str = "songsmith_bench") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
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
def scratch_redis() -> Iterator[str]:
    admin = Redis.from_url(f"{REDIS_BASE_URL}/0")
    for index in range(1, 16):
        db = Redis.from_url(f"{REDIS_BASE_URL}/{index}")
        if db.dbsize() == 0 and admin.set(f"songsmith:test-db-claim:{index}", os.getpid(), nx=True, ex=7200):
            try:
                yield f"{REDIS_BASE_URL}/{index}"
            finally:
                db.flushdb()
                admin.delete(f"songsmith:test-db-claim:{index}")
            return
    raise RuntimeError("no free Redis db index (1..15) for the benchmark")
