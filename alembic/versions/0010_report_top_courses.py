"""report top courses: the day's enrollments by course from the created_at index alone

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 02:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CREATED = ["created_at", "id"]


def upgrade() -> None:
    """Apply this revision."""
    # course_id included (PostgreSQL): the daily report groups a day's enrollments by
    # course with an index-only scan of the day's range.
    op.drop_index("ix_enrollments_created_id", table_name="enrollments")
    op.create_index(
        "ix_enrollments_created_id", "enrollments", _CREATED, postgresql_include=["course_id"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_enrollments_created_id", table_name="enrollments")
    op.create_index("ix_enrollments_created_id", "enrollments", _CREATED)
