"""evidence_tags carry the item's school and list order, indexed by tag: the list
filtered by a tag reads one page of items in order instead of every tagged item; a
school's list in docking order gets its own index, and so do the item page's
activation events (camera, time) and the newest incidents offered for linking

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 08:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import evidence.adapters.sql.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_tags") as batch:
        batch.add_column(sa.Column("school_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column(
                "sorted_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.execute(
        "UPDATE evidence_tags SET "
        "school_id = (SELECT i.school_id FROM evidence_items i "
        "WHERE i.id = evidence_tags.evidence_id), "
        "sorted_at = (SELECT coalesce(i.recorded_start, i.ingested_at) FROM evidence_items i "
        "WHERE i.id = evidence_tags.evidence_id)"
    )
    with op.batch_alter_table("evidence_tags") as batch:
        batch.alter_column("school_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column(
            "sorted_at",
            existing_type=evidence.adapters.sql.base.UTCDateTime(timezone=True),
            nullable=False,
        )
        batch.create_foreign_key(
            "fk_evidence_tags_school_id_schools", "schools", ["school_id"], ["id"]
        )
        batch.drop_index("ix_evidence_tags_tag_id")
        batch.create_index(
            "ix_evidence_tags_tag_sorted", ["tag_id", "sorted_at", "evidence_id"], unique=False
        )
        batch.create_index(
            "ix_evidence_tags_tag_school_sorted",
            ["tag_id", "school_id", "sorted_at", "evidence_id"],
            unique=False,
        )

    with op.batch_alter_table("evidence_items") as batch:
        batch.create_index(
            "ix_evidence_items_school_ingested", ["school_id", "ingested_at", "id"], unique=False
        )
    with op.batch_alter_table("activation_events") as batch:
        batch.create_index(
            "ix_activation_events_camera_time", ["camera_id", "corrected_time"], unique=False
        )
    with op.batch_alter_table("incidents") as batch:
        batch.create_index(
            "ix_incidents_district_starts", ["district_id", "starts_at"], unique=False
        )
        batch.create_index("ix_incidents_school_starts", ["school_id", "starts_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_school_starts")
        batch.drop_index("ix_incidents_district_starts")
    with op.batch_alter_table("activation_events") as batch:
        batch.drop_index("ix_activation_events_camera_time")
    with op.batch_alter_table("evidence_items") as batch:
        batch.drop_index("ix_evidence_items_school_ingested")
    with op.batch_alter_table("evidence_tags") as batch:
        batch.drop_index("ix_evidence_tags_tag_school_sorted")
        batch.drop_index("ix_evidence_tags_tag_sorted")
        batch.create_index("ix_evidence_tags_tag_id", ["tag_id"], unique=False)
        batch.drop_constraint("fk_evidence_tags_school_id_schools", type_="foreignkey")
        batch.drop_column("sorted_at")
        batch.drop_column("school_id")
