"""Imports every table module so the shared metadata is complete (migrations, tests)."""

from app.accounts.models import LoginThrottle, RecoveryCode, WebSession
from audit.adapters.ledger_tables import (
    LedgerAudit,
    LedgerCheckpoint,
    LedgerCosignature,
    LedgerItemHead,
    LedgerLeaf,
    LedgerLog,
    LedgerNode,
)
from audit.adapters.sql import AuditEventRow
from evidence.adapters.sql.base import metadata
from evidence.adapters.sql.docking import ActivationEvent, Alert, DockSession
from evidence.adapters.sql.items import (
    Bookmark,
    Category,
    Derivative,
    EvidenceItem,
    Incident,
    Tag,
    evidence_tags,
    incident_evidence,
    incident_wearers,
)
from evidence.adapters.sql.jobs import Job
from evidence.adapters.sql.org import Camera, District, Dock, RoleGrant, School, User, Wearer
from evidence.adapters.sql.vault import IngestKey, Upload

__all__ = [
    "ActivationEvent",
    "Alert",
    "DockSession",
    "AuditEventRow",
    "Bookmark",
    "Camera",
    "Category",
    "Derivative",
    "District",
    "Dock",
    "EvidenceItem",
    "Incident",
    "Job",
    "IngestKey",
    "LedgerAudit",
    "LedgerCheckpoint",
    "LedgerCosignature",
    "LedgerItemHead",
    "LedgerLeaf",
    "LedgerLog",
    "LedgerNode",
    "LoginThrottle",
    "RecoveryCode",
    "RoleGrant",
    "School",
    "Tag",
    "Upload",
    "User",
    "WebSession",
    "Wearer",
    "evidence_tags",
    "incident_evidence",
    "incident_wearers",
    "metadata",
]
