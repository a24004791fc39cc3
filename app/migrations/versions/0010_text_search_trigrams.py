"""trigram indexes for the evidence list's text search (PostgreSQL)

Text search matches words anywhere in file names, notes, tag names and incident titles
(`lower(x) LIKE '%word%'`), which no B-tree serves. On PostgreSQL, pg_trgm's GIN
indexes do, so a rare word is found from the index instead of a walk over every item.
SQLite (the embedded default, one school's scale) scans as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 02:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_evidence_items_file_name_trgm", "evidence_items", "lower(file_name)"),
    ("ix_evidence_items_notes_trgm", "evidence_items", "lower(notes)"),
    ("ix_tags_name_trgm", "tags", "lower(name)"),
    ("ix_incidents_title_trgm", "incidents", "lower(title)"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, expression in _INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({expression} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _, _ in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
