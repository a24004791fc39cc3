"""evidence list indexes: scope column, then when recorded (or docked), then id

The evidence list sorts by coalesce(recorded_start, ingested_at) and pages by keyset on
(that, id) within a district, a school or a wearer; these indexes serve each scope's
first page and every later one without a sort over the whole table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = "coalesce(recorded_start, ingested_at)"
_SCOPES = ("district_id", "school_id", "wearer_id")


def upgrade() -> None:
    for scope in _SCOPES:
        op.create_index(
            f"ix_evidence_items_{scope}_when",
            "evidence_items",
            [scope, sa.text(_WHEN), "id"],
            unique=False,
        )
    op.create_index(
        "ix_evidence_items_district_ingested",
        "evidence_items",
        ["district_id", "ingested_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_evidence_items_district_ingested", table_name="evidence_items")
    for scope in _SCOPES:
        op.drop_index(f"ix_evidence_items_{scope}_when", table_name="evidence_items")
