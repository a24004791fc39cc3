"""initial schema: organisation, accounts, evidence, audit events

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:19:12.319040
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import evidence.adapters.sql.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "districts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
        sa.UniqueConstraint("code", name=op.f("uq_districts_code")),
    )
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column(
            "window_started_at",
            evidence.adapters.sql.base.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "locked_until", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column(
            "occurred_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("actor", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.String(length=80), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("details_sha256", sa.String(length=64), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_audit_events_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("ledger_index", name=op.f("uq_audit_events_ledger_index")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_actor"), ["actor"], unique=False)
        batch_op.create_index(
            "ix_audit_events_district_time", ["district_id", "occurred_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_events_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_type"), ["type"], unique=False)

    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_categories_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("district_id", "name", name=op.f("uq_categories_district_id_name")),
    )
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_categories_district_id"), ["district_id"], unique=False
        )

    op.create_table(
        "schools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_schools_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schools")),
        sa.UniqueConstraint("district_id", "code", name=op.f("uq_schools_district_id_code")),
    )
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schools_district_id"), ["district_id"], unique=False)

    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_tags_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("district_id", "name", name=op.f("uq_tags_district_id_name")),
    )
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tags_district_id"), ["district_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("pseudonym", sa.String(length=40), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column(
            "totp_enrolled_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "disabled_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_users_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_users_pseudonym")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_district_id"), ["district_id"], unique=False)

    op.create_table(
        "docks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("pseudonym", sa.String(length=40), nullable=False),
        sa.Column("enrolment_token_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "enrolment_expires_at",
            evidence.adapters.sql.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("credential_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "enrolled_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "revoked_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_heartbeat_at",
            evidence.adapters.sql.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("last_status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_docks_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_docks_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_docks")),
        sa.UniqueConstraint("credential_hash", name=op.f("uq_docks_credential_hash")),
        sa.UniqueConstraint("district_id", "name", name=op.f("uq_docks_district_id_name")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_docks_pseudonym")),
    )
    with op.batch_alter_table("docks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_docks_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_docks_school_id"), ["school_id"], unique=False)

    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "starts_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ends_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint(
            "ends_at IS NULL OR ends_at >= starts_at", name=op.f("ck_incidents_window_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_incidents_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_incidents_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_incidents_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("district_id", "number", name=op.f("uq_incidents_district_id_number")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_school_id"), ["school_id"], unique=False)

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("used_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_sha256", name=op.f("uq_recovery_codes_code_sha256")),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "role_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column(
            "granted_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint(
            "role IN ('wearer', 'supervisor', 'records', 'oversight', 'admin')",
            name=op.f("ck_role_grants_role_known"),
        ),
        sa.CheckConstraint(
            "role NOT IN ('wearer', 'supervisor') OR school_id IS NOT NULL",
            name=op.f("ck_role_grants_school_bound_roles_name_a_school"),
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_role_grants_school_id_schools")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_role_grants_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_grants")),
        sa.UniqueConstraint(
            "user_id", "role", "school_id", name=op.f("uq_role_grants_user_id_role_school_id")
        ),
    )
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_grants_school_id"), ["school_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_role_grants_user_id"), ["user_id"], unique=False)

    op.create_table(
        "wearers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("badge", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_wearers_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_wearers_school_id_schools")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_wearers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wearers")),
        sa.UniqueConstraint("district_id", "badge", name=op.f("uq_wearers_district_id_badge")),
        sa.UniqueConstraint("user_id", name=op.f("uq_wearers_user_id")),
    )
    with op.batch_alter_table("wearers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wearers_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wearers_school_id"), ["school_id"], unique=False)

    op.create_table(
        "web_sessions",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_seen_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_sha256", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_web_sessions_last_seen_at"), ["last_seen_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_web_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("assigned_wearer_id", sa.Integer(), nullable=True),
        sa.Column(
            "registered_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "retired_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["assigned_wearer_id"],
            ["wearers.id"],
            name=op.f("fk_cameras_assigned_wearer_id_wearers"),
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_cameras_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_cameras_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
        sa.UniqueConstraint("district_id", "serial", name=op.f("uq_cameras_district_id_serial")),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cameras_assigned_wearer_id"), ["assigned_wearer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cameras_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cameras_school_id"), ["school_id"], unique=False)

    op.create_table(
        "incident_wearers",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("wearer_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_wearers_incident_id_incidents"),
        ),
        sa.ForeignKeyConstraint(
            ["wearer_id"], ["wearers.id"], name=op.f("fk_incident_wearers_wearer_id_wearers")
        ),
        sa.PrimaryKeyConstraint("incident_id", "wearer_id", name=op.f("pk_incident_wearers")),
    )
    with op.batch_alter_table("incident_wearers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_wearers_wearer_id"), ["wearer_id"], unique=False
        )

    op.create_table(
        "evidence_items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("wearer_id", sa.Integer(), nullable=True),
        sa.Column("dock_id", sa.Integer(), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("file_identity", sa.String(length=200), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_name_b64", sa.String(length=400), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=True),
        sa.Column("key_version", sa.String(length=64), nullable=True),
        sa.Column(
            "recorded_start", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "recorded_end", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("camera_recorded_start", sa.String(length=64), nullable=True),
        sa.Column("clock_offset_ms", sa.BigInteger(), nullable=True),
        sa.Column(
            "ingested_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "retain_until", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('received', 'verified', 'rejected', 'purged')",
            name=op.f("ck_evidence_items_status_known"),
        ),
        sa.CheckConstraint("size >= 0", name=op.f("ck_evidence_items_size_not_negative")),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_evidence_items_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_evidence_items_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_evidence_items_district_id_districts")
        ),
        sa.ForeignKeyConstraint(
            ["dock_id"], ["docks.id"], name=op.f("fk_evidence_items_dock_id_docks")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_evidence_items_school_id_schools")
        ),
        sa.ForeignKeyConstraint(
            ["wearer_id"], ["wearers.id"], name=op.f("fk_evidence_items_wearer_id_wearers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_items")),
        sa.UniqueConstraint(
            "camera_id",
            "file_identity",
            "sha256",
            name=op.f("uq_evidence_items_camera_id_file_identity_sha256"),
        ),
        sa.UniqueConstraint("object_key", name=op.f("uq_evidence_items_object_key")),
    )
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_items_camera_id"), ["camera_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_items_category_id"), ["category_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_items_district_id"), ["district_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_evidence_items_dock_id"), ["dock_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_evidence_items_ingested_at"), ["ingested_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_items_retain_until"), ["retain_until"], unique=False
        )
        batch_op.create_index(
            "ix_evidence_items_school_recorded", ["school_id", "recorded_start"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_evidence_items_sha256"), ["sha256"], unique=False)
        batch_op.create_index(
            "ix_evidence_items_wearer_recorded", ["wearer_id", "recorded_start"], unique=False
        )

    op.create_table(
        "bookmarks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint("at_ms >= 0", name=op.f("ck_bookmarks_at_not_negative")),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_bookmarks_evidence_id_evidence_items"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_bookmarks_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookmarks")),
    )
    with op.batch_alter_table("bookmarks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bookmarks_evidence_id"), ["evidence_id"], unique=False)

    op.create_table(
        "derivatives",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("evidence_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=True),
        sa.Column("key_version", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('proxy', 'redaction', 'thumbnail')", name=op.f("ck_derivatives_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_derivatives_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_derivatives_evidence_id_evidence_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_derivatives")),
        sa.UniqueConstraint("object_key", name=op.f("uq_derivatives_object_key")),
    )
    with op.batch_alter_table("derivatives", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_derivatives_evidence_id"), ["evidence_id"], unique=False
        )

    op.create_table(
        "evidence_tags",
        sa.Column("evidence_id", sa.String(length=36), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column(
            "added_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_evidence_tags_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_evidence_tags_evidence_id_evidence_items"),
        ),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_evidence_tags_tag_id_tags")),
        sa.PrimaryKeyConstraint("evidence_id", "tag_id", name=op.f("pk_evidence_tags")),
    )
    with op.batch_alter_table("evidence_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_tags_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "incident_evidence",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("evidence_id", sa.String(length=36), nullable=False),
        sa.Column("linked_by", sa.Integer(), nullable=True),
        sa.Column(
            "linked_at", evidence.adapters.sql.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_incident_evidence_evidence_id_evidence_items"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_evidence_incident_id_incidents"),
        ),
        sa.ForeignKeyConstraint(
            ["linked_by"], ["users.id"], name=op.f("fk_incident_evidence_linked_by_users")
        ),
        sa.PrimaryKeyConstraint("incident_id", "evidence_id", name=op.f("pk_incident_evidence")),
    )
    with op.batch_alter_table("incident_evidence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_evidence_evidence_id"), ["evidence_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("incident_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_evidence_evidence_id"))

    op.drop_table("incident_evidence")
    with op.batch_alter_table("evidence_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_tags_tag_id"))

    op.drop_table("evidence_tags")
    with op.batch_alter_table("derivatives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_derivatives_evidence_id"))

    op.drop_table("derivatives")
    with op.batch_alter_table("bookmarks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bookmarks_evidence_id"))

    op.drop_table("bookmarks")
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_items_wearer_recorded")
        batch_op.drop_index(batch_op.f("ix_evidence_items_sha256"))
        batch_op.drop_index("ix_evidence_items_school_recorded")
        batch_op.drop_index(batch_op.f("ix_evidence_items_retain_until"))
        batch_op.drop_index(batch_op.f("ix_evidence_items_ingested_at"))
        batch_op.drop_index(batch_op.f("ix_evidence_items_dock_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_items_district_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_items_category_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_items_camera_id"))

    op.drop_table("evidence_items")
    with op.batch_alter_table("incident_wearers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_wearers_wearer_id"))

    op.drop_table("incident_wearers")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_school_id"))
        batch_op.drop_index(batch_op.f("ix_cameras_district_id"))
        batch_op.drop_index(batch_op.f("ix_cameras_assigned_wearer_id"))

    op.drop_table("cameras")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_last_seen_at"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_expires_at"))

    op.drop_table("web_sessions")
    with op.batch_alter_table("wearers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wearers_school_id"))
        batch_op.drop_index(batch_op.f("ix_wearers_district_id"))

    op.drop_table("wearers")
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_grants_user_id"))
        batch_op.drop_index(batch_op.f("ix_role_grants_school_id"))

    op.drop_table("role_grants")
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_user_id"))

    op.drop_table("recovery_codes")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_school_id"))
        batch_op.drop_index(batch_op.f("ix_incidents_district_id"))

    op.drop_table("incidents")
    with op.batch_alter_table("docks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_docks_school_id"))
        batch_op.drop_index(batch_op.f("ix_docks_district_id"))

    op.drop_table("docks")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_district_id"))

    op.drop_table("users")
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tags_district_id"))

    op.drop_table("tags")
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schools_district_id"))

    op.drop_table("schools")
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_categories_district_id"))

    op.drop_table("categories")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_type"))
        batch_op.drop_index(batch_op.f("ix_audit_events_subject"))
        batch_op.drop_index("ix_audit_events_district_time")
        batch_op.drop_index(batch_op.f("ix_audit_events_actor"))

    op.drop_table("audit_events")
    op.drop_table("login_throttle")
    op.drop_table("districts")
