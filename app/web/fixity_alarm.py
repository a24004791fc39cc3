"""The fixity alarm on every page: items of the district whose stored copy failed."""

from __future__ import annotations

from sqlalchemy import func, select

from app.web.context import db
from evidence.adapters.sql.items import EvidenceItem
from evidence.policy import Action, Principal, decide


def tampered_count(principal: Principal | None) -> int:
    """How many of the district's items failed fixity, for those who must act on it
    (administrators, oversight and records officers); 0 for everyone else."""
    if principal is None or not (
        decide(principal, Action.VERIFY_LEDGER).allowed
        or decide(principal, Action.HANDLE_DISCLOSURE).allowed
    ):
        return 0
    return int(
        db().scalar(
            select(func.count())
            .select_from(EvidenceItem)
            .where(
                EvidenceItem.district_id == principal.district_id,
                EvidenceItem.integrity == "tampered",
            )
        )
        or 0
    )
