"""The bytes of a ledger leaf: RFC 8785 canonical JSON with no personal data or free text.

Every value that reaches a leaf is checked against a closed vocabulary (event types)
or a strict pattern (pseudonyms, UUIDs, hex digests), so a name, a note or a purpose
cannot slip into the public log by mistake."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from audit.events import AuditEvent, EventType

LEAF_VERSION = 1
_ACTOR = re.compile(r"^(cli|system|(u|d|w)-[0-9a-f]{24})$")
_SUBJECT = re.compile(
    r"^(user|dock|camera|school|district|evidence|incident|category|log|upload|keys)"
    r":[A-Za-z0-9_.-]{1,64}$"
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LeafError(ValueError):
    """An event carries something that must not enter the public log."""


def rfc3339_millis(moment: datetime) -> str:
    """Service time as RFC 3339 UTC with milliseconds, e.g. 2026-11-24T09:00:00.123Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ChainLink:
    """An evidence item's position in its custody chain: seq n and event n-1's leaf hash."""

    seq: int
    prev: bytes | None


def build_leaf(event: AuditEvent, details_sha256: str, chain: ChainLink | None) -> bytes:
    """Canonical leaf bytes for event. chain is required exactly for evidence events."""
    EventType(event.type)  # closed vocabulary
    for name, value, pattern in (
        ("actor", event.actor, _ACTOR),
        ("device", event.device, _ACTOR),
        ("subject", event.subject, _SUBJECT),
        ("evidence_id", event.evidence_id, _UUID),
        ("media_sha256", event.media_sha256, _SHA256),
    ):
        if value is not None and not pattern.match(value):
            raise LeafError(f"{name} of a {event.type} event is not a pseudonym or digest")
    if not _UUID.match(event.id):
        raise LeafError("event id must be a UUID")
    if not _SHA256.match(details_sha256):
        raise LeafError("details commitment must be a SHA-256 hex digest")
    if (event.evidence_id is None) != (chain is None):
        raise LeafError("evidence events, and only they, carry a custody-chain link")

    leaf: dict[str, Any] = {
        "v": LEAF_VERSION,
        "id": event.id,
        "type": str(event.type),
        "time": rfc3339_millis(event.occurred_at),
        "details_sha256": details_sha256,
    }
    optional = {
        "actor": event.actor,
        "device": event.device,
        "subject": event.subject,
        "evidence_id": event.evidence_id,
        "media_sha256": event.media_sha256,
    }
    leaf.update({k: v for k, v in optional.items() if v is not None})
    if chain is not None:
        if chain.seq < 1 or (chain.seq == 1) != (chain.prev is None):
            raise LeafError("a chain starts at seq 1 with no previous leaf")
        leaf["seq"] = chain.seq
        if chain.prev is not None:
            leaf["prev"] = chain.prev.hex()
    return bytes(rfc8785.dumps(leaf))
