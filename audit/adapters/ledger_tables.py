"""Tables of the custody ledger. Leaves, nodes, checkpoints and cosignatures are
append-only; migrations install the database triggers and grants that enforce it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from evidence.adapters.sql.base import Base, UTCDateTime

APPEND_ONLY_TABLES = (
    "ledger_leaves",
    "ledger_nodes",
    "ledger_checkpoints",
    "ledger_cosignatures",
)


class LedgerLog(Base):
    """One log per district (district NULL: the service's own log).

    This row is the sequencing coordinator: appenders lock it, read `size` and the
    frontier, write leaf number `size`, and store the new size and frontier."""

    __tablename__ = "ledger_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), unique=True)
    origin: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerLeaf(Base):
    __tablename__ = "ledger_leaves"

    log_id: Mapped[int] = mapped_column(ForeignKey("ledger_logs.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    evidence_id: Mapped[str | None] = mapped_column(String(36), index=True)
    seq: Mapped[int | None] = mapped_column(Integer)
    appended_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerNode(Base):
    """The hash of a perfect subtree: level L, index i covers leaves [i·2^L, (i+1)·2^L)."""

    __tablename__ = "ledger_nodes"

    log_id: Mapped[int] = mapped_column(ForeignKey("ledger_logs.id"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerItemHead(Base):
    """The newest event of each evidence item's custody chain (mutable by design)."""

    __tablename__ = "ledger_item_heads"

    evidence_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("ledger_logs.id"))
    seq: Mapped[int] = mapped_column(Integer)
    leaf_index: Mapped[int] = mapped_column(BigInteger)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerCheckpoint(Base):
    __tablename__ = "ledger_checkpoints"
    __table_args__ = (UniqueConstraint("log_id", "size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("ledger_logs.id"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerCosignature(Base):
    """A witness's cosignature/v1 signature line on one checkpoint."""

    __tablename__ = "ledger_cosignatures"
    __table_args__ = (UniqueConstraint("checkpoint_id", "witness"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("ledger_checkpoints.id"), index=True)
    witness: Mapped[str] = mapped_column(String(200))
    signature_line: Mapped[str] = mapped_column(Text)
    witness_time: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerAudit(Base):
    """The outcome of one self-audit run; a failed run raises the alarm."""

    __tablename__ = "ledger_audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    log_id: Mapped[int] = mapped_column(ForeignKey("ledger_logs.id"), index=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    size_checked: Mapped[int] = mapped_column(BigInteger)
    first_bad_index: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)
