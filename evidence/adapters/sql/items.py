"""Tables of evidence: items, derivatives, categories, tags, incidents and bookmarks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from evidence.adapters.sql.base import Base, UTCDateTime, metadata
from evidence.search_text import compose

EVIDENCE_STATUSES = ("received", "verified", "rejected", "purged")
_STATUS_VALUES = ", ".join(f"'{s}'" for s in EVIDENCE_STATUSES)


class EvidenceItem(Base):
    """One original file offloaded from a camera, stored encrypted.

    `id` is a random UUID: it appears in URLs and the ledger, and says nothing about
    how many items exist. Camera-supplied names are kept as raw bytes (base64) and a
    display form; neither is ever used as a storage key or path."""

    __tablename__ = "evidence_items"
    __table_args__ = (
        UniqueConstraint("camera_id", "file_identity", "sha256"),
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status_known"),
        CheckConstraint("size >= 0", name="size_not_negative"),
        Index("ix_evidence_items_school_recorded", "school_id", "recorded_start"),
        Index("ix_evidence_items_wearer_recorded", "wearer_id", "recorded_start"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    wearer_id: Mapped[int | None] = mapped_column(ForeignKey("wearers.id"))
    dock_id: Mapped[int | None] = mapped_column(ForeignKey("docks.id"), index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    # Stable identity of the file on the camera (e.g. sidecar id or name+start time).
    file_identity: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(255))
    file_name_b64: Mapped[str] = mapped_column(String(400))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    object_key: Mapped[str] = mapped_column(String(200), unique=True)
    wrapped_key: Mapped[str | None] = mapped_column(Text)
    key_version: Mapped[str | None] = mapped_column(String(200))
    recorded_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorded_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    camera_recorded_start: Mapped[str | None] = mapped_column(String(64))
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    # File name, notes, tag names and linked incidents' titles, lower-cased, for the
    # list's text search (evidence/search_text.py; kept by refresh_search_text).
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The encrypted object (docs/encryption-format.md): its header's object id, segment
    # size, stored byte count and SHA-256, checked by every fixity run.
    object_id: Mapped[str | None] = mapped_column(String(32))
    segment_size: Mapped[int | None] = mapped_column(BigInteger)
    stored_size: Mapped[int | None] = mapped_column(BigInteger)
    stored_sha256: Mapped[str | None] = mapped_column(String(64))
    # "ok" after a passing fixity check, "tampered" after a failing one.
    integrity: Mapped[str | None] = mapped_column(String(16))
    last_fixity_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Derivative(Base):
    """A file made from an original (playback proxy, redacted copy); never replaces it."""

    __tablename__ = "derivatives"
    __table_args__ = (
        CheckConstraint("kind IN ('proxy', 'redaction', 'thumbnail')", name="kind_known"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence_items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(200), unique=True)
    wrapped_key: Mapped[str | None] = mapped_column(Text)
    key_version: Mapped[str | None] = mapped_column(String(200))
    object_id: Mapped[str | None] = mapped_column(String(32))
    segment_size: Mapped[int | None] = mapped_column(BigInteger)
    stored_size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # "ok" until a fixity check finds the stored copy damaged; a damaged copy is never
    # served and a new one can be made (the original is what counts as evidence).
    integrity: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    last_fixity_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Category(Base):
    """A district's classification of footage; retention attaches to it."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("district_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Retired categories stay on the items that have them but are not offered any more.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("district_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))


evidence_tags = Table(
    "evidence_tags",
    metadata,
    Column("evidence_id", ForeignKey("evidence_items.id"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id"), primary_key=True),
    Column("added_by", ForeignKey("users.id"), nullable=True),
    Column("added_at", UTCDateTime(), nullable=False),
    # Copies of the item's school and list order (when recorded, else when docked),
    # neither of which changes after ingest: the list filtered by a tag then walks
    # this table's index in the list's order and reads just one page of items.
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("sorted_at", UTCDateTime(), nullable=False),
)
Index(
    "ix_evidence_tags_tag_sorted",
    evidence_tags.c.tag_id,
    evidence_tags.c.sorted_at,
    evidence_tags.c.evidence_id,
)
Index(
    "ix_evidence_tags_tag_school_sorted",
    evidence_tags.c.tag_id,
    evidence_tags.c.school_id,
    evidence_tags.c.sorted_at,
    evidence_tags.c.evidence_id,
)


def tag_link(
    item: EvidenceItem, tag_id: int, *, added_at: datetime, added_by: int | None = None
) -> dict[str, object]:
    """The evidence_tags row that puts tag_id on item."""
    return {
        "evidence_id": item.id,
        "tag_id": tag_id,
        "added_by": added_by,
        "added_at": added_at,
        "school_id": item.school_id,
        "sorted_at": item.recorded_start or item.ingested_at,
    }


class Incident(Base):
    """Something that happened at a school, with the footage and wearers involved."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("district_id", "number"),
        CheckConstraint("ends_at IS NULL OR ends_at >= starts_at", name="window_ordered"),
        # The newest incidents offered for linking, district-wide and per school.
        Index("ix_incidents_district_starts", "district_id", "starts_at"),
        Index("ix_incidents_school_starts", "school_id", "starts_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    number: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Closed incidents take no more footage; what is linked stays linked.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


incident_evidence = Table(
    "incident_evidence",
    metadata,
    Column("incident_id", ForeignKey("incidents.id"), primary_key=True),
    Column("evidence_id", ForeignKey("evidence_items.id"), primary_key=True, index=True),
    Column("linked_by", ForeignKey("users.id"), nullable=True),
    Column("linked_at", UTCDateTime(), nullable=False),
)

incident_wearers = Table(
    "incident_wearers",
    metadata,
    Column("incident_id", ForeignKey("incidents.id"), primary_key=True),
    Column("wearer_id", ForeignKey("wearers.id"), primary_key=True, index=True),
)


class Bookmark(Base):
    """A moment in a recording, marked by a user with a note."""

    __tablename__ = "bookmarks"
    __table_args__ = (CheckConstraint("at_ms >= 0", name="at_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence_items.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Text search: on PostgreSQL, trigram GIN indexes on each item's search text (migration
# 0013) and on lower(tags.name) and lower(incidents.title) (migration 0010, pg_trgm;
# SQLite has none).
Index(
    "ix_evidence_items_search_trgm",
    EvidenceItem.search_text,
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
for _name, _column in (
    ("ix_tags_name_trgm", Tag.name),
    ("ix_incidents_title_trgm", Incident.title),
):
    Index(
        _name,
        func.lower(_column).label("lowered"),
        postgresql_using="gin",
        postgresql_ops={"lowered": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


def refresh_search_text(session: Session, item_ids: Iterable[str]) -> None:
    """Recompute the search text of these items from their name, notes, tags and linked
    incidents, as the session sees them now: call it after changing any of those."""
    ids = sorted(set(item_ids))
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        tags: dict[str, list[str]] = {i: [] for i in batch}
        titles: dict[str, list[str]] = {i: [] for i in batch}
        for item_id, name in session.execute(
            select(evidence_tags.c.evidence_id, Tag.name)
            .join(Tag, Tag.id == evidence_tags.c.tag_id)
            .where(evidence_tags.c.evidence_id.in_(batch))
        ):
            tags[item_id].append(name)
        for item_id, title in session.execute(
            select(incident_evidence.c.evidence_id, Incident.title)
            .join(Incident, Incident.id == incident_evidence.c.incident_id)
            .where(incident_evidence.c.evidence_id.in_(batch))
        ):
            titles[item_id].append(title)
        for item in session.scalars(select(EvidenceItem).where(EvidenceItem.id.in_(batch))):
            text = compose(item.file_name, item.notes, tags[item.id], titles[item.id])
            if item.search_text != text:
                item.search_text = text
    session.flush()


# The fixity alarm on every page counts a district's tampered items (migration 0009).
Index("ix_evidence_items_integrity", EvidenceItem.integrity, EvidenceItem.district_id)

# The evidence list's keyset order within each scope (migration 0005).
_WHEN = func.coalesce(EvidenceItem.recorded_start, EvidenceItem.ingested_at)
Index("ix_evidence_items_district_id_when", EvidenceItem.district_id, _WHEN, EvidenceItem.id)
Index("ix_evidence_items_school_id_when", EvidenceItem.school_id, _WHEN, EvidenceItem.id)
Index("ix_evidence_items_wearer_id_when", EvidenceItem.wearer_id, _WHEN, EvidenceItem.id)
Index(
    "ix_evidence_items_district_ingested",
    EvidenceItem.district_id,
    EvidenceItem.ingested_at,
    EvidenceItem.id,
)
# A school's list in docking order (migration 0012).
Index(
    "ix_evidence_items_school_ingested",
    EvidenceItem.school_id,
    EvidenceItem.ingested_at,
    EvidenceItem.id,
)
