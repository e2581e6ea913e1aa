"""metric rollups: hourly and daily job and step-run aggregates for the Metrics page

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BUCKETS = 80  # as core.models.HISTOGRAM_BUCKETS when this revision was written


def upgrade() -> None:
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "job_rollup",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_step", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "span", "hour", "model", "status", "error_step", "reason"),
    )
    with op.batch_alter_table("job_rollup", schema=None) as batch_op:
        batch_op.create_index("ix_job_rollup_hour", ["hour"], unique=False)

    op.create_table(
        "step_rollup",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("seconds_sum", sa.Float(), nullable=False),
        sa.Column("seconds_max", sa.Float(), nullable=False),
        *(sa.Column(f"b{i:02d}", sa.Integer(), nullable=False) for i in range(BUCKETS)),
        sa.PrimaryKeyConstraint("user_id", "span", "hour", "model", "step", "service"),
    )
    with op.batch_alter_table("step_rollup", schema=None) as batch_op:
        batch_op.create_index("ix_step_rollup_hour", ["hour"], unique=False)

    # Dirty-hour detection: the jobs changed since the last refresh (status first, see core.models.Job).
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_status_updated", ["status", "updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_updated")

    with op.batch_alter_table("step_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_step_rollup_hour")

    op.drop_table("step_rollup")
    with op.batch_alter_table("job_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_job_rollup_hour")

    op.drop_table("job_rollup")
    op.drop_table("rollup_state")
