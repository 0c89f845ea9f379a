"""report certificates: the certificates issued on the day, a figure of the daily report

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # NULL in the reports built before: they are built again when next asked for.
    op.add_column("daily_reports", sa.Column("certificates", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("daily_reports") as batch:
        batch.drop_column("certificates")
