"""Upload receipts (DESIGN.md §5): what the service holds, proved against a checkpoint.

A verified receipt names the evidence item, its plaintext SHA-256, the ledger index of
its `verified` custody event, an inclusion proof of that leaf and the signed checkpoint
the proof is against, so a dock can check it offline with the log key it pinned at
enrolment before it wipes anything."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import must_get
from app.ledger import LedgerService
from app.settings import ConfigError
from audit.adapters import checkpoints_sql, ledger_sql
from audit.adapters.checkpoints_sql import LedgerAlarm
from audit.adapters.ledger_tables import LedgerCheckpoint, LedgerLeaf
from evidence.adapters.sql.items import EvidenceItem
from evidence.adapters.sql.vault import Upload

logger = logging.getLogger(__name__)
VERIFIED_SEQ = 2  # an item's chain: 1 received, 2 verified


def _covering_checkpoint(session: Session, log_id: int, index: int) -> LedgerCheckpoint | None:
    return session.scalars(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.log_id == log_id, LedgerCheckpoint.size > index)
        .order_by(LedgerCheckpoint.size.desc())
        .limit(1)
    ).first()


def receipt(session: Session, ledger: LedgerService, upload: Upload) -> dict[str, Any]:
    """The receipt of upload. Signs a checkpoint first if none covers the leaf yet."""
    body: dict[str, Any] = {
        "upload_id": upload.id,
        "offset": upload.upload_offset,
        "length": upload.length,
    }
    if upload.status in ("receiving", "received"):
        return body | {"status": "received", "complete": upload.upload_offset == upload.length}
    if upload.status in ("rejected", "expired") or upload.evidence_id is None:
        return body | {"status": "rejected", "reason": upload.reason or upload.status}
    item = must_get(session, EvidenceItem, upload.evidence_id)
    leaf = session.scalars(
        select(LedgerLeaf).where(LedgerLeaf.evidence_id == item.id, LedgerLeaf.seq == VERIFIED_SEQ)
    ).one()
    checkpoint = _covering_checkpoint(session, leaf.log_id, leaf.idx)
    if checkpoint is None:
        try:
            ledger.checkpoint(leaf.log_id)
        except (LedgerAlarm, ConfigError, OSError) as exc:
            # No proof can be offered now; the dock asks again later and wipes nothing.
            logger.error("cannot sign a checkpoint for a receipt: %s", exc)
        session.expire_all()
        checkpoint = _covering_checkpoint(session, leaf.log_id, leaf.idx)
    if checkpoint is None:
        return body | {"status": "received", "complete": True, "pending": "checkpoint"}
    hashes = ledger_sql.inclusion_proof(session, leaf.log_id, leaf.idx, checkpoint.size)
    return body | {
        "status": "verified",
        "evidence_id": item.id,
        "sha256": item.sha256,
        "size": item.size,
        "duplicate": upload.reason == "duplicate",
        "leaf_index": leaf.idx,
        "leaf": leaf.leaf.decode("utf-8"),
        "inclusion_proof": {
            "leaf_index": leaf.idx,
            "tree_size": checkpoint.size,
            "hashes": [h.hex() for h in hashes],
        },
        "checkpoint": checkpoints_sql.note_with_cosignatures(session, checkpoint),
    }
