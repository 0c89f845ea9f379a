"""waitlist: entries in join order; courses.offers_open and courses.waitlist_count

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('waiting', 'offered')"


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("offers_open", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("waitlist_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_check_constraint("ck_courses_offers_open", "offers_open >= 0")
        batch_op.create_check_constraint("ck_courses_waitlist_count", "waitlist_count >= 0")
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'offered', 'accepted', 'declined', 'expired', 'left')",
            name="ck_waitlist_status",
        ),
        sa.CheckConstraint(
            "status <> 'offered' OR offer_expires_at IS NOT NULL",
            name="ck_waitlist_offer_deadline",
        ),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["student_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_waitlist_course_status_id", "waitlist_entries", ["course_id", "status", "id"]
    )
    op.create_index(
        "ix_waitlist_status_expires", "waitlist_entries", ["status", "offer_expires_at"]
    )
    op.create_index(op.f("ix_waitlist_entries_student_id"), "waitlist_entries", ["student_id"])
    op.create_index(
        "uq_waitlist_open_entry",
        "waitlist_entries",
        ["student_id", "course_id"],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("uq_waitlist_open_entry", table_name="waitlist_entries")
    op.drop_index(op.f("ix_waitlist_entries_student_id"), table_name="waitlist_entries")
    op.drop_index("ix_waitlist_status_expires", table_name="waitlist_entries")
    op.drop_index("ix_waitlist_course_status_id", table_name="waitlist_entries")
    op.drop_table("waitlist_entries")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_constraint("ck_courses_waitlist_count", type_="check")
        batch_op.drop_constraint("ck_courses_offers_open", type_="check")
        batch_op.drop_column("waitlist_count")
        batch_op.drop_column("offers_open")
