"""The connected GPU workers (studio.job_tables.WorkerRow): a page can say when no worker is there to take a job.

Revision ID: 0002_workers
Revises: 0001_baseline
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_workers"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("workers",
                    sa.Column("name", sa.String(length=64), nullable=False),
                    sa.Column("seen_at", sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint("name"))
    op.create_index(op.f("ix_workers_seen_at"), "workers", ["seen_at"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("The studio never downgrades its schema: restore the database from a backup.")
