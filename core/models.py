"""The database schema: users, sessions, batches, jobs, job events, stored artifacts and metric rollups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Job statuses. The database is the source of truth; RQ only carries the next step to run.
PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
ACTIVE_STATUSES = (PENDING, RUNNING)
TERMINAL_STATUSES = (COMPLETED, FAILED, CANCELLED)
JOB_STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database: SQLite hands back naive values otherwise."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    # Lower-cased username: uniqueness is case-insensitive on every database.
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="analyst")
    openrouter_model: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UserSession(Base):
    """A server-side login session; the browser holds only the random token, we store its hash."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AppSetting(Base):
    """Admin-controlled settings (for example the default LLM model for new users)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    source_filename: Mapped[str | None] = mapped_column(String(255))
    total: Mapped[int] = mapped_column(Integer, default=0)
    correlation_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_batches_user_created", "user_id", "created_at"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_batches_user_idempotency"),
    )


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id"), index=True)
    concept: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    current_step: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), default="interactive")
    llm_model: Mapped[str] = mapped_column(String(200))
    llm_model_used: Mapped[str | None] = mapped_column(String(200))
    llm_usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    song_options: Mapped[list[Any] | None] = mapped_column(JSON)
    chosen_index: Mapped[int | None] = mapped_column(Integer)
    chosen_option: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    image_prompt: Mapped[str | None] = mapped_column(Text)
    # Remote task ids are committed before the first poll, so a paid task is submitted once.
    music_task_id: Mapped[str | None] = mapped_column(String(128))
    music_submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    music_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    image_task_id: Mapped[str | None] = mapped_column(String(128))
    image_submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    image_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    audio_artifact_id: Mapped[int | None] = mapped_column(Integer)
    image_artifact_id: Mapped[int | None] = mapped_column(Integer)
    error_step: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # Per step-run bookkeeping: transient retries used and remote polls made.
    step_retries: Mapped[int] = mapped_column(Integer, default=0)
    step_polls: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # A lease makes a duplicate RQ delivery of the same step a no-op while another worker runs it.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rq_job_id: Mapped[str | None] = mapped_column(String(128))
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    correlation_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_jobs_user_created", "user_id", "created_at"),
        Index("ix_jobs_user_status_created", "user_id", "status", "created_at"),
        Index("ix_jobs_status_created", "status", "created_at"),
        # The metrics rollup finds the hours to recompute from the jobs changed since its last run. Status
        # first: an index on updated_at alone would tempt the reconciler's "active jobs ORDER BY
        # updated_at LIMIT" into walking every finished job's entry.
        Index("ix_jobs_status_updated", "status", "updated_at"),
        Index("ix_jobs_batch_status", "batch_id", "status"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_idempotency"),
    )


class JobEvent(Base):
    """One status change or one step run: durations are computed from these rows only."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # status | step | retry
    step: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(200))
    remote_task_id: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_job_events_job", "job_id", "id"),
        Index("ix_job_events_started", "started_at"),
    )


class Artifact(Base):
    """A stored audio or image file; regenerating keeps older versions."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # audio | image
    version: Mapped[int] = mapped_column(Integer, default=1)
    path: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    source_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("job_id", "kind", "version", name="uq_artifacts_job_kind_version"),)


# Metric rollups (core/rollup.py): aggregates the Metrics page reads instead of scanning jobs and
# job_events. `hour` is whole hours since the Unix epoch (UTC), so buckets compare as integers on every
# database. A row covers `span` hours from `hour`: 1, or 24 for a UTC day (the sum of its 24 hour rows,
# so a 30-day chart reads ~30 rows per series). user_id ALL_USERS (0) rows sum every user's, for admins.
ALL_USERS = 0
SPAN_HOUR, SPAN_DAY = 1, 24
HISTOGRAM_BUCKETS = 80  # step-run seconds: 4 log-spaced buckets per octave, 10 ms to ~2 h, plus both tails


class RollupState(Base):
    """When the rollups were last refreshed: hours before that one are read from them, later ones live."""

    __tablename__ = "rollup_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The clock when the last refresh started; every change committed before it is in the rollups.
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hours: Mapped[int] = mapped_column(Integer)  # hours recomputed by that refresh


class JobRollup(Base):
    """Jobs created per hour (or day), owner, model, status and (failed jobs only) failed step and reason."""

    __tablename__ = "job_rollup"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    span: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    error_step: Mapped[str] = mapped_column(String(32), primary_key=True)  # "" unless failed
    reason: Mapped[str] = mapped_column(String(80), primary_key=True)  # "" unless failed
    jobs: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_job_rollup_hour", "hour"),)


class StepRollup(Base):
    """Finished step runs by hour or day started, owner, job model, step, service: count, sum, max, histogram.

    Bucket b00 counts runs under 10 ms, b01..b78 the log-spaced buckets up to ~2 h, b79 the rest; the
    columns are plain integers so any database can SUM them.
    """

    __table__ = Table(
        "step_rollup",
        Base.metadata,
        Column("user_id", Integer, primary_key=True),
        Column("span", Integer, primary_key=True),
        Column("hour", Integer, primary_key=True),
        Column("model", String(200), primary_key=True),
        Column("step", String(32), primary_key=True),
        Column("service", String(64), primary_key=True),
        Column("runs", Integer, nullable=False),
        Column("seconds_sum", Float, nullable=False),
        Column("seconds_max", Float, nullable=False),
        *(Column(f"b{i:02d}", Integer, nullable=False) for i in range(HISTOGRAM_BUCKETS)),
        Index("ix_step_rollup_hour", "hour"),
    )
