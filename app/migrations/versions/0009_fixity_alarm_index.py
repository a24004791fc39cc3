"""index for the fixity alarm: a district's tampered items, counted on every page

Without it, each page a records officer, oversight or an administrator opens counts the
district's items in full (45 ms at 100,000 items, linear beyond).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_evidence_items_integrity", "evidence_items", ["integrity", "district_id"])


def downgrade() -> None:
    op.drop_index("ix_evidence_items_integrity", table_name="evidence_items")
