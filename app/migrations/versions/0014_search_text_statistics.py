"""PostgreSQL keeps 1,000 samples of the items' search text (ten times its default), so
the evidence list can ask the planner how common a search word is in a scope: common
words are then walked in the list's order, rare ones looked up through the trigram
index (app/evidence_search.py)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 15:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE evidence_items ALTER COLUMN search_text SET STATISTICS 1000")
    op.execute("ANALYZE evidence_items (search_text)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE evidence_items ALTER COLUMN search_text SET STATISTICS -1")
