"""The text the evidence list's search reads for one item.

A search word matches an item when it appears in the item's file name, its notes, one
of its tags or the title of an incident it is linked to. Those live in four tables;
testing each while a district's list is walked costs a join per row per word. So each
item carries them together, lower-cased, in one column (`evidence_items.search_text`,
trigram-indexed on PostgreSQL): a word is one `LIKE` on the row, and on PostgreSQL one
index finds the rare ones. Whoever changes a source keeps the column current
(`evidence.adapters.sql.items.refresh_search_text`).

The parts are separated by a newline, which no search word holds (words are split on
whitespace), so a word never matches across two of them."""

from __future__ import annotations

from collections.abc import Iterable

SEPARATOR = "\n"


def compose(file_name: str, notes: str | None, tags: Iterable[str], titles: Iterable[str]) -> str:
    """The search text of an item with this name, notes, tag names and linked
    incidents' titles, lower-cased; tags and titles sorted, so their order is moot."""

    def lowered(parts: Iterable[str]) -> list[str]:
        return sorted(part.lower() for part in parts)

    parts = [file_name.lower(), (notes or "").lower(), *lowered(tags), *lowered(titles)]
    return SEPARATOR.join(part for part in parts if part)


def pattern(word: str) -> str:
    """The LIKE pattern (escape character `\\`) matching text that holds word."""
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
