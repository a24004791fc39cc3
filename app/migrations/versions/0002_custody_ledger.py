"""custody ledger: logs, leaves, subtree nodes, checkpoints, cosignatures, self-audits

The leaf, node, checkpoint and cosignature tables are append-only, enforced by triggers
(and, on PostgreSQL, by the grants of the bwc_app role) installed at the end of upgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:52:04.201552
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import evidence.adapters.sql.base
from audit.adapters import append_only

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_ledger_logs_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_logs")),
        sa.UniqueConstraint("district_id", name=op.f("uq_ledger_logs_district_id")),
        sa.UniqueConstraint("origin", name=op.f("uq_ledger_logs_origin")),
    )
    op.create_table(
        "ledger_audits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("ran_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("size_checked", sa.BigInteger(), nullable=False),
        sa.Column("first_bad_index", sa.BigInteger(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["log_id"], ["ledger_logs.id"], name=op.f("fk_ledger_audits_log_id_ledger_logs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_audits")),
    )
    with op.batch_alter_table("ledger_audits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_audits_log_id"), ["log_id"], unique=False)

    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column(
            "signed_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["log_id"], ["ledger_logs.id"], name=op.f("fk_ledger_checkpoints_log_id_ledger_logs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_checkpoints")),
        sa.UniqueConstraint("log_id", "size", name=op.f("uq_ledger_checkpoints_log_id_size")),
    )
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_checkpoints_log_id"), ["log_id"], unique=False)

    op.create_table(
        "ledger_item_heads",
        sa.Column("evidence_id", sa.String(length=36), nullable=False),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["log_id"], ["ledger_logs.id"], name=op.f("fk_ledger_item_heads_log_id_ledger_logs")
        ),
        sa.PrimaryKeyConstraint("evidence_id", name=op.f("pk_ledger_item_heads")),
    )
    op.create_table(
        "ledger_leaves",
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("evidence_id", sa.String(length=36), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column(
            "appended_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["log_id"], ["ledger_logs.id"], name=op.f("fk_ledger_leaves_log_id_ledger_logs")
        ),
        sa.PrimaryKeyConstraint("log_id", "idx", name=op.f("pk_ledger_leaves")),
        sa.UniqueConstraint("event_id", name=op.f("uq_ledger_leaves_event_id")),
    )
    with op.batch_alter_table("ledger_leaves", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_leaves_evidence_id"), ["evidence_id"], unique=False
        )

    op.create_table(
        "ledger_nodes",
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["log_id"], ["ledger_logs.id"], name=op.f("fk_ledger_nodes_log_id_ledger_logs")
        ),
        sa.PrimaryKeyConstraint("log_id", "level", "idx", name=op.f("pk_ledger_nodes")),
    )
    op.create_table(
        "ledger_cosignatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("signature_line", sa.Text(), nullable=False),
        sa.Column("witness_time", sa.BigInteger(), nullable=False),
        sa.Column(
            "received_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["ledger_checkpoints.id"],
            name=op.f("fk_ledger_cosignatures_checkpoint_id_ledger_checkpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_cosignatures")),
        sa.UniqueConstraint(
            "checkpoint_id", "witness", name=op.f("uq_ledger_cosignatures_checkpoint_id_witness")
        ),
    )
    with op.batch_alter_table("ledger_cosignatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_cosignatures_checkpoint_id"), ["checkpoint_id"], unique=False
        )

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details_salt", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("ledger_log_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_audit_events_ledger_index"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_events_ledger_log_id_ledger_index"),
            ["ledger_log_id", "ledger_index"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_events_ledger_log_id_ledger_logs"),
            "ledger_logs",
            ["ledger_log_id"],
            ["id"],
        )

    for statement in append_only.install(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in append_only.remove(op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_audit_events_ledger_log_id_ledger_logs"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("uq_audit_events_ledger_log_id_ledger_index"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_events_ledger_index"), ["ledger_index"]
        )
        batch_op.drop_column("ledger_log_id")
        batch_op.drop_column("details_salt")

    with op.batch_alter_table("ledger_cosignatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_cosignatures_checkpoint_id"))

    op.drop_table("ledger_cosignatures")
    op.drop_table("ledger_nodes")
    with op.batch_alter_table("ledger_leaves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_leaves_evidence_id"))

    op.drop_table("ledger_leaves")
    op.drop_table("ledger_item_heads")
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_checkpoints_log_id"))

    op.drop_table("ledger_checkpoints")
    with op.batch_alter_table("ledger_audits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_audits_log_id"))

    op.drop_table("ledger_audits")
    op.drop_table("ledger_logs")
