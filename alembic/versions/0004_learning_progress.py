"""learning progress: lesson_progress, progress_events, counters on enrollments,
completions in daily reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("completed_lessons", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("completion_email_sent_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_check_constraint(
            "ck_enrollments_completed_lessons", "completed_lessons >= 0"
        )
        batch_op.create_index("ix_enrollments_completed_at", ["completed_at"], unique=False)
    with op.batch_alter_table("daily_reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("completions", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "lesson_progress",
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("lesson_id", sa.Integer(), nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "completed_at IS NULL OR viewed_at IS NOT NULL", name="ck_lesson_progress_viewed"
        ),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["lesson_id"], ["lessons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("enrollment_id", "lesson_id"),
    )
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.create_index("ix_lesson_progress_lesson", ["lesson_id"], unique=False)
    op.create_table(
        "progress_events",
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("enrollment_id", "event_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("progress_events")
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.drop_index("ix_lesson_progress_lesson")
    op.drop_table("lesson_progress")
    with op.batch_alter_table("daily_reports", schema=None) as batch_op:
        batch_op.drop_column("completions")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_completed_at")
        batch_op.drop_constraint("ck_enrollments_completed_lessons", type_="check")
        batch_op.drop_column("completion_email_sent_at")
        batch_op.drop_column("completed_at")
        batch_op.drop_column("completed_lessons")
