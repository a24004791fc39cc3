"""each item carries its search text (file name, notes, tag names, linked incidents'
titles, lower-cased), trigram-indexed on PostgreSQL: a search word is one LIKE on the
item's row instead of a join per source, and one index finds the rare words; the
separate trigram indexes on items' names and notes go

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from evidence.search_text import compose

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    # Not in batch mode: on SQLite that copies the table, losing its expression indexes.
    op.add_column(
        "evidence_items", sa.Column("search_text", sa.Text(), nullable=False, server_default="")
    )
    _backfill(op.get_bind())
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_evidence_items_file_name_trgm")
        op.execute("DROP INDEX IF EXISTS ix_evidence_items_notes_trgm")
        op.execute(
            "CREATE INDEX ix_evidence_items_search_trgm ON evidence_items "
            "USING gin (search_text gin_trgm_ops)"
        )


def _backfill(bind: sa.Connection) -> None:
    """Every item's search text, in batches of BATCH items in id order."""
    after = ""
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, file_name, notes FROM evidence_items WHERE id > :after "
                "ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": BATCH},
        ).all()
        if not rows:
            return
        ids = [r[0] for r in rows]
        first, last = ids[0], ids[-1]
        tags: dict[str, list[str]] = {i: [] for i in ids}
        titles: dict[str, list[str]] = {i: [] for i in ids}
        span = {"first": first, "last": last}
        for item_id, name in bind.execute(
            sa.text(
                "SELECT et.evidence_id, t.name FROM evidence_tags et "
                "JOIN tags t ON t.id = et.tag_id "
                "WHERE et.evidence_id >= :first AND et.evidence_id <= :last"
            ),
            span,
        ):
            tags[item_id].append(name)
        for item_id, title in bind.execute(
            sa.text(
                "SELECT ie.evidence_id, i.title FROM incident_evidence ie "
                "JOIN incidents i ON i.id = ie.incident_id "
                "WHERE ie.evidence_id >= :first AND ie.evidence_id <= :last"
            ),
            span,
        ):
            titles[item_id].append(title)
        updates = [
            {"id": item_id, "text": compose(name, notes, tags[item_id], titles[item_id])}
            for item_id, name, notes in rows
        ]
        bind.execute(
            sa.text("UPDATE evidence_items SET search_text = :text WHERE id = :id"), updates
        )
        after = last


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_evidence_items_search_trgm")
        for name, column in (
            ("ix_evidence_items_file_name_trgm", "file_name"),
            ("ix_evidence_items_notes_trgm", "notes"),
        ):
            op.execute(
                f"CREATE INDEX {name} ON evidence_items USING gin (lower({column}) gin_trgm_ops)"
            )
    op.execute("ALTER TABLE evidence_items DROP COLUMN search_text")  # SQLite >= 3.35
