"""docking sessions, activation events, alerts

What docks report beside the footage: one row per docking session (its report), the
cameras' activation logs as events, and alerts for people to act on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 18:35:28.056516
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import evidence.adapters.sql.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("dock_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column(
            "raised_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "acknowledged_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["users.id"], name=op.f("fk_alerts_acknowledged_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_alerts_district_id_districts")
        ),
        sa.ForeignKeyConstraint(["dock_id"], ["docks.id"], name=op.f("fk_alerts_dock_id_docks")),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_alerts_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_open", "alerts", ["district_id", "acknowledged_at"], unique=False)
    op.create_table(
        "dock_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("dock_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("device_serial", sa.String(length=130), nullable=True),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("alerts", sa.JSON(), nullable=False),
        sa.Column("clock_offset_ms", sa.BigInteger(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column(
            "started_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "received_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_dock_sessions_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_dock_sessions_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["dock_id"], ["docks.id"], name=op.f("fk_dock_sessions_dock_id_docks")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_dock_sessions_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dock_sessions")),
        sa.UniqueConstraint(
            "dock_id", "session_id", name=op.f("uq_dock_sessions_dock_id_session_id")
        ),
    )
    op.create_index(
        op.f("ix_dock_sessions_camera_id"), "dock_sessions", ["camera_id"], unique=False
    )
    op.create_index(
        op.f("ix_dock_sessions_district_id"), "dock_sessions", ["district_id"], unique=False
    )
    op.create_index(op.f("ix_dock_sessions_dock_id"), "dock_sessions", ["dock_id"], unique=False)
    op.create_index(
        op.f("ix_dock_sessions_received_at"), "dock_sessions", ["received_at"], unique=False
    )
    op.create_index(
        op.f("ix_dock_sessions_school_id"), "dock_sessions", ["school_id"], unique=False
    )
    op.create_table(
        "activation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("wearer_id", sa.Integer(), nullable=True),
        sa.Column("dock_id", sa.Integer(), nullable=True),
        sa.Column("evidence_id", sa.String(length=36), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("camera_time", sa.String(length=40), nullable=False),
        sa.Column(
            "corrected_time", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("trigger", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("file_name", sa.String(length=64), nullable=True),
        sa.Column(
            "received_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_activation_events_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["districts.id"],
            name=op.f("fk_activation_events_district_id_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["dock_id"], ["docks.id"], name=op.f("fk_activation_events_dock_id_docks")
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_activation_events_evidence_id_evidence_items"),
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_activation_events_school_id_schools")
        ),
        sa.ForeignKeyConstraint(
            ["wearer_id"], ["wearers.id"], name=op.f("fk_activation_events_wearer_id_wearers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation_events")),
        sa.UniqueConstraint("camera_id", "seq", name=op.f("uq_activation_events_camera_id_seq")),
    )
    op.create_index(
        op.f("ix_activation_events_camera_id"), "activation_events", ["camera_id"], unique=False
    )
    op.create_index(
        op.f("ix_activation_events_district_id"), "activation_events", ["district_id"], unique=False
    )
    op.create_index(
        op.f("ix_activation_events_evidence_id"), "activation_events", ["evidence_id"], unique=False
    )
    op.create_index(
        "ix_activation_events_school_time",
        "activation_events",
        ["school_id", "corrected_time"],
        unique=False,
    )
    op.create_index(
        op.f("ix_activation_events_wearer_id"), "activation_events", ["wearer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_activation_events_wearer_id"), table_name="activation_events")
    op.drop_index("ix_activation_events_school_time", table_name="activation_events")
    op.drop_index(op.f("ix_activation_events_evidence_id"), table_name="activation_events")
    op.drop_index(op.f("ix_activation_events_district_id"), table_name="activation_events")
    op.drop_index(op.f("ix_activation_events_camera_id"), table_name="activation_events")
    op.drop_table("activation_events")
    op.drop_index(op.f("ix_dock_sessions_school_id"), table_name="dock_sessions")
    op.drop_index(op.f("ix_dock_sessions_received_at"), table_name="dock_sessions")
    op.drop_index(op.f("ix_dock_sessions_dock_id"), table_name="dock_sessions")
    op.drop_index(op.f("ix_dock_sessions_district_id"), table_name="dock_sessions")
    op.drop_index(op.f("ix_dock_sessions_camera_id"), table_name="dock_sessions")
    op.drop_table("dock_sessions")
    op.drop_index("ix_alerts_open", table_name="alerts")
    op.drop_table("alerts")
