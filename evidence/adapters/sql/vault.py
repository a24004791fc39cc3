"""Tables of the vault: tus uploads in flight and the service's ingest key pairs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from evidence.adapters.sql.base import Base, UTCDateTime

UPLOAD_STATUSES = ("receiving", "received", "verified", "rejected", "expired")
_UPLOAD_VALUES = ", ".join(f"'{s}'" for s in UPLOAD_STATUSES)


class Upload(Base):
    """One tus upload of an encrypted file from a dock (or `bwc evidence import`).

    The staged bytes are ciphertext; `dock_wrapped_key` is the data key wrapped to the
    service's ingest key and is erased once the upload is verified or rejected (the
    evidence item then holds the key wrapped under the KEK instead)."""

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(f"status IN ({_UPLOAD_VALUES})", name="status_known"),
        CheckConstraint("upload_offset >= 0 AND upload_offset <= length", name="offset_in_range"),
        Index("ix_uploads_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    dock_id: Mapped[int | None] = mapped_column(ForeignKey("docks.id"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    length: Mapped[int] = mapped_column(BigInteger)
    upload_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    plaintext_sha256: Mapped[str] = mapped_column(String(64))
    plaintext_size: Mapped[int] = mapped_column(BigInteger)
    segment_size: Mapped[int] = mapped_column(BigInteger)
    object_id: Mapped[str] = mapped_column(String(32))
    file_identity: Mapped[str] = mapped_column(String(200))
    dock_wrapped_key: Mapped[str | None] = mapped_column(Text)
    ingest_key_version: Mapped[str] = mapped_column(String(16))
    # Validated metadata the dock declared (names as raw bytes in base64, times, flags).
    declared: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence_id: Mapped[str | None] = mapped_column(ForeignKey("evidence_items.id"))
    reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IngestKey(Base):
    """An X25519 key pair docks wrap data keys to. The private half is stored only
    sealed by the key provider (KEK), like every data key."""

    __tablename__ = "ingest_keys"

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    private_wrapped: Mapped[str] = mapped_column(Text)
    kek_version: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
