"""Alembic owns the schema: head matches the models, each revision goes down and up (SQLite and PG)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from core.migrate import alembic_config, upgrade
from core.models import Base
from tests.conftest import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database of each kind (scratch_database runs `upgrade head`)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
        upgrade(url)
        yield url
    else:
        with scratch_database("songsmith_migrations") as url:
            yield url


def _schema(url: str) -> tuple[list, set[str], set[str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            insp = inspect(conn)
            tables = set(insp.get_table_names())
            job_indexes = {ix["name"] for ix in insp.get_indexes("jobs")}
    finally:
        engine.dispose()
    return diffs, tables, job_indexes


def test_head_matches_the_models(empty_db):
    diffs, tables, job_indexes = _schema(empty_db)
    assert diffs == []
    assert {"job_rollup", "step_rollup", "rollup_state"} <= tables
    assert "ix_jobs_status_updated" in job_indexes


def test_rollup_revision_downgrades_and_upgrades_again(empty_db):
    command.downgrade(alembic_config(empty_db), "0001")
    _diffs, tables, job_indexes = _schema(empty_db)
    assert not {"job_rollup", "step_rollup", "rollup_state"} & tables
    assert "ix_jobs_status_updated" not in job_indexes and "jobs" in tables

    upgrade(empty_db)
    diffs, _tables, _ = _schema(empty_db)
    assert diffs == []
