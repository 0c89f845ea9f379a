"""certificates: one per (student, course), with a public serial

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=True),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("student_name", sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
        sa.Column("course_title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["student_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("student_id", "course_id", name="uq_certificates_student_course"),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificates_serial"), ["serial"], unique=True)
        batch_op.create_index(batch_op.f("ix_certificates_student_id"), ["student_id"])
        batch_op.create_index(batch_op.f("ix_certificates_course_id"), ["course_id"])
        batch_op.create_index("ix_certificates_issued_at", ["issued_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("certificates")
