"""derivatives get their own fixity state: a damaged playback copy is set aside and
remade, never served, and never marks the original tampered

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import evidence.adapters.sql.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("derivatives") as batch:
        batch.add_column(sa.Column("integrity", sa.String(16), nullable=False, server_default="ok"))
        batch.add_column(
            sa.Column(
                "last_fixity_at",
                evidence.adapters.sql.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("derivatives") as batch:
        batch.drop_column("last_fixity_at")
        batch.drop_column("integrity")
