"""A checkpoint signed by another process while a self-audit runs is no false alarm."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.accounts import admin as accounts
from app.db import Database
from audit.adapters import self_audit_sql
from evidence.adapters.sql.org import District
from tests.integration.conftest import ledger_service


def _grow_and_sign(database: Database, service: Any, n: int) -> None:
    with database.transaction() as session:
        district = session.query(District).one()
        for i in range(n):
            accounts.create_school(
                session, district, f"S{i}x{n}", "School", actor="cli", now=datetime.now(UTC)
            )
    for log_id in service.log_ids():
        service.checkpoint(log_id)


def test_a_checkpoint_signed_during_an_audit_is_not_a_rollback(
    database: Database, district: District, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ledger_service(database, tmp_path)
    other = ledger_service(database, tmp_path)  # another process, same data dir
    _grow_and_sign(database, service, 3)
    log_id = next(i for i in service.log_ids() if service.status(i).origin.endswith("/d1"))
    real = self_audit_sql.ledger_sql.checkpoints
    raced: list[int] = []

    def checkpoints_then_race(session: Any, lid: int) -> Any:
        found = real(session, lid)
        if not raced:  # right after the audit read the checkpoints: someone signs a new one
            raced.append(lid)
            _grow_and_sign(database, other, 2)
        return found

    monkeypatch.setattr(self_audit_sql.ledger_sql, "checkpoints", checkpoints_then_race)
    result = service.audit(log_id, record=False)
    assert raced, "the interleaving did not happen"
    assert result.ok, result.message
    monkeypatch.setattr(self_audit_sql.ledger_sql, "checkpoints", real)
    assert all(r.ok for r in service.audit_all(record=False))
