"""evidence vault: uploads, ingest keys, encrypted object columns

Uploads hold tus transfers in flight; ingest keys are the X25519 pairs docks wrap data
keys to; evidence items and derivatives learn their encrypted object's id, segment
size and stored size. Key versions widen to hold a KMS key ARN.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:48:36.793262
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import evidence.adapters.sql.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_keys",
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_wrapped", sa.Text(), nullable=False),
        sa.Column("kek_version", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "retired_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_ingest_keys")),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("dock_id", sa.Integer(), nullable=True),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("upload_offset", sa.BigInteger(), nullable=False),
        sa.Column("plaintext_sha256", sa.String(length=64), nullable=False),
        sa.Column("plaintext_size", sa.BigInteger(), nullable=False),
        sa.Column("segment_size", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.String(length=32), nullable=False),
        sa.Column("file_identity", sa.String(length=200), nullable=False),
        sa.Column("dock_wrapped_key", sa.Text(), nullable=True),
        sa.Column("ingest_key_version", sa.String(length=16), nullable=False),
        sa.Column("declared", sa.JSON(), nullable=False),
        sa.Column("evidence_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "completed_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.CheckConstraint(
            "status IN ('receiving', 'received', 'verified', 'rejected', 'expired')",
            name=op.f("ck_uploads_status_known"),
        ),
        sa.CheckConstraint(
            "upload_offset >= 0 AND upload_offset <= length",
            name=op.f("ck_uploads_offset_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_uploads_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_uploads_district_id_districts")
        ),
        sa.ForeignKeyConstraint(["dock_id"], ["docks.id"], name=op.f("fk_uploads_dock_id_docks")),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_uploads_evidence_id_evidence_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_camera_id"), "uploads", ["camera_id"], unique=False)
    op.create_index(op.f("ix_uploads_district_id"), "uploads", ["district_id"], unique=False)
    op.create_index(op.f("ix_uploads_dock_id"), "uploads", ["dock_id"], unique=False)
    op.create_index("ix_uploads_status_expires", "uploads", ["status", "expires_at"], unique=False)
    with op.batch_alter_table("derivatives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("object_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("segment_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("stored_size", sa.BigInteger(), nullable=True))
        batch_op.alter_column(
            "key_version",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=200),
            existing_nullable=True,
        )
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("object_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("segment_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("stored_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("stored_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("integrity", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column(
                "last_fixity_at",
                evidence.adapters.sql.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.alter_column(
            "key_version",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=200),
            existing_nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        for name in ("last_fixity_at", "integrity", "stored_sha256", "stored_size"):
            batch_op.drop_column(name)
        batch_op.drop_column("segment_size")
        batch_op.drop_column("object_id")
        batch_op.alter_column(
            "key_version", existing_type=sa.String(length=200), type_=sa.VARCHAR(length=64)
        )
    with op.batch_alter_table("derivatives", schema=None) as batch_op:
        for name in ("stored_size", "segment_size", "object_id"):
            batch_op.drop_column(name)
        batch_op.alter_column(
            "key_version", existing_type=sa.String(length=200), type_=sa.VARCHAR(length=64)
        )
    op.drop_index("ix_uploads_status_expires", table_name="uploads")
    op.drop_index(op.f("ix_uploads_dock_id"), table_name="uploads")
    op.drop_index(op.f("ix_uploads_district_id"), table_name="uploads")
    op.drop_index(op.f("ix_uploads_camera_id"), table_name="uploads")
    op.drop_table("uploads")
    op.drop_table("ingest_keys")
