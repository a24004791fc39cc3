"""The custody ledger on SQLite and PostgreSQL: appends, proofs, checkpoints, cosignatures."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.ledger import LedgerService
from audit import merkle, notes, offline_verify
from audit.adapters import checkpoints_sql, ledger_sql
from audit.adapters.checkpoints_sql import LedgerAlarm
from audit.adapters.ledger_tables import LedgerLeaf
from audit.adapters.sql import AuditEventRow, SqlEventRecorder
from audit.events import AuditEvent, EventType, details_commitment
from audit.leaves import LeafError
from evidence.adapters.sql.org import District

from . import tampering
from .conftest import NOW, ledger_service


def event(district: District, **changes: object) -> AuditEvent:
    fields: dict[str, object] = dict(
        type=EventType.LOGIN_SUCCEEDED,
        occurred_at=NOW,
        district_id=district.id,
        actor="u-" + "a" * 24,
        subject="user:u-" + "a" * 24,
        details={"username": "sam", "address": "10.0.0.1"},
    )
    fields.update(changes)
    return AuditEvent(**fields)  # type: ignore[arg-type]


@pytest.fixture
def service(database: Database, district: District, tmp_path: Path) -> LedgerService:
    return ledger_service(database, tmp_path)


def district_log(session: Session, district: District) -> int:
    return ledger_sql.log_of(session, district.id).id


def test_appends_get_contiguous_indices_and_events_are_recorded_once(
    session: Session, district: District
) -> None:
    log_id = district_log(session, district)
    start = ledger_sql.current_size(session, log_id)
    recorder = SqlEventRecorder(session)
    first = event(district)
    for e in (first, event(district), first):
        recorder.record(e)
    session.commit()
    rows = session.scalars(select(AuditEventRow).where(AuditEventRow.ledger_index >= start)).all()
    assert sorted(r.ledger_index for r in rows) == [start, start + 1]
    assert ledger_sql.current_size(session, log_id) == start + 2
    assert ledger_sql.append(session, log_id, first, "0" * 64) == start  # exactly once


def test_leaves_are_canonical_and_hold_no_personal_data(
    session: Session, district: District
) -> None:
    e = event(district)
    SqlEventRecorder(session).record(e)
    session.commit()
    leaf = ledger_sql.leaf_of_event(session, e.id)
    assert leaf is not None
    parsed = json.loads(leaf.leaf)
    assert b"sam" not in leaf.leaf and b"10.0.0.1" not in leaf.leaf
    assert leaf.leaf == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    assert parsed["time"] == "2026-11-24T09:00:00.000Z"
    row = session.get(AuditEventRow, e.id)
    assert row is not None and row.details_salt
    assert parsed["details_sha256"] == details_commitment(e.details, row.details_salt)
    # The salt is what stops anyone guessing details from the public commitment.
    assert parsed["details_sha256"] != details_commitment(e.details, "0" * 32)
    assert leaf.leaf_hash == merkle.leaf_hash(leaf.leaf)


@pytest.mark.parametrize(
    "change",
    [
        {"actor": "sam.jones"},
        {"subject": "user:Sam Jones"},
        {"evidence_id": "not-a-uuid"},
        {"media_sha256": "xyz"},
    ],
)
def test_free_text_cannot_reach_a_leaf(
    session: Session, district: District, change: dict[str, str]
) -> None:
    with pytest.raises(LeafError):
        SqlEventRecorder(session).record(event(district, **change))
    session.rollback()


def test_evidence_events_form_a_chain(session: Session, district: District) -> None:
    item = str(uuid.uuid4())
    recorder = SqlEventRecorder(session)
    events = [event(district, evidence_id=item, media_sha256="ab" * 32) for _ in range(3)]
    for e in events:
        recorder.record(e)
    recorder.record(event(district))  # an unrelated event in between
    session.commit()
    leaves = [ledger_sql.leaf_of_event(session, e.id) for e in events]
    parsed = [json.loads(leaf.leaf) for leaf in leaves if leaf is not None]
    assert [p["seq"] for p in parsed] == [1, 2, 3]
    assert "prev" not in parsed[0]
    assert parsed[1]["prev"] == leaves[0].leaf_hash.hex()  # type: ignore[union-attr]
    assert parsed[2]["prev"] == leaves[1].leaf_hash.hex()  # type: ignore[union-attr]
    raw = [leaf.leaf for leaf in leaves if leaf is not None]
    assert offline_verify.check_item_chain(raw, item) == 3


def test_rolled_back_change_leaves_no_leaf(session: Session, district: District) -> None:
    log_id = district_log(session, district)
    before = ledger_sql.current_size(session, log_id)
    SqlEventRecorder(session).record(event(district))
    session.rollback()
    assert ledger_sql.current_size(session, log_id) == before
    assert ledger_sql.leaf_count(session, log_id) == before


def test_proofs_from_the_database_verify_independently(
    session: Session, district: District
) -> None:
    log_id = district_log(session, district)
    recorder = SqlEventRecorder(session)
    for _ in range(37):
        recorder.record(event(district))
    session.commit()
    size = ledger_sql.current_size(session, log_id)
    leaves = dict(ledger_sql.entries(session, log_id, 0, size))
    root = ledger_sql.root_at(session, log_id, size)
    assert root == offline_verify.merkle_root([merkle.leaf_hash(leaves[i]) for i in range(size)])
    for index in (0, 5, size // 2, size - 1):
        proof = ledger_sql.inclusion_proof(session, log_id, index, size)
        offline_verify.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, root)
    for first in (1, 7, size - 1):
        proof = ledger_sql.consistency_proof(session, log_id, first, size)
        old_root = ledger_sql.root_at(session, log_id, first)
        offline_verify.verify_consistency(first, size, proof, old_root, root)


def test_impossible_proof_requests_are_refused(session: Session, district: District) -> None:
    log_id = district_log(session, district)
    size = ledger_sql.current_size(session, log_id)
    with pytest.raises(ledger_sql.LedgerError):
        ledger_sql.inclusion_proof(session, log_id, 0, size + 1)
    with pytest.raises(ledger_sql.LedgerError):
        ledger_sql.consistency_proof(session, log_id, 0, size)


def test_checkpoints_are_signed_only_when_the_log_grew(
    service: LedgerService, session: Session, district: District
) -> None:
    log_id = district_log(session, district)
    first = service.checkpoint(log_id)
    assert first == ledger_sql.current_size(session, log_id)
    assert service.checkpoint(log_id) is None
    SqlEventRecorder(session).record(event(district))
    session.commit()
    second = service.checkpoint(log_id)
    assert second == first + 1  # type: ignore[operator]
    status = service.status(log_id)
    key = offline_verify.parse_verifier_key(status.verifier_key)
    assert status.checkpoint_note is not None
    signed = offline_verify.verify_checkpoint(status.checkpoint_note, key)
    assert signed.origin == "bwc-evidence.local/d1" and signed.size == second
    # Every checkpoint is kept.
    assert [c.size for c in ledger_sql.checkpoints(session, log_id)] == [first, second]


def test_no_checkpoint_is_signed_over_a_tree_inconsistent_with_the_last(
    service: LedgerService, database: Database, session: Session, district: District
) -> None:
    log_id = district_log(session, district)
    service.checkpoint(log_id)
    SqlEventRecorder(session).record(event(district))
    session.commit()
    # Someone with direct database access rewrites a stored subtree node.
    with database.engine.begin() as connection:
        tampering.without_protection(connection, "ledger_nodes")
        tampering.execute(
            connection,
            "UPDATE ledger_nodes SET hash = ? WHERE log_id = ? AND level = 0 AND idx = 0",
            b"\x00" * 32,
            log_id,
        )
        tampering.restore_protection(connection, "ledger_nodes")
    with pytest.raises(LedgerAlarm, match="no longer gives the root"):
        service.checkpoint(log_id)


def test_cosignatures_from_configured_witnesses_publish_a_checkpoint(
    database: Database, session: Session, district: District, tmp_path: Path
) -> None:
    witness_keys = {name: notes.new_signing_key() for name in ("oversight.example", "clerk")}
    vkeys = tuple(
        notes.cosignature_verifier_key(name, key.public_key()) for name, key in witness_keys.items()
    )
    service = ledger_service(database, tmp_path, ledger_witnesses=vkeys, ledger_witness_quorum=2)
    log_id = district_log(session, district)
    service.checkpoint(log_id)
    cp = ledger_sql.latest_checkpoint(session, log_id)
    assert cp is not None and not service.status(log_id).published

    stranger = notes.new_signing_key()
    forged = notes.add_signatures(cp.note, [notes.cosign(cp.note, "mallory", stranger, 1)])
    with pytest.raises(checkpoints_sql.CosignatureRejected):
        checkpoints_sql.accept_cosignatures(session, forged, service.witnesses)
    session.rollback()

    for name, key in witness_keys.items():
        line = notes.cosign(cp.note, name, key, int((NOW + timedelta(minutes=1)).timestamp()))
        stored = checkpoints_sql.accept_cosignatures(
            session, notes.add_signatures(cp.note, [line]), service.witnesses
        )
        session.commit()
        assert stored == [name]
    status = service.status(log_id)
    assert status.published and status.cosignatures == 2
    assert status.checkpoint_note is not None
    for vkey in vkeys:
        offline_verify.verify_cosignature(
            status.checkpoint_note, offline_verify.parse_verifier_key(vkey)
        )


def test_cosignature_on_a_checkpoint_we_never_signed_is_rejected(
    service: LedgerService, session: Session, district: District
) -> None:
    key = notes.new_signing_key()
    fake = notes.sign_note(
        notes.format_checkpoint("bwc-evidence.local/d1", 999, b"\x01" * 32), "x", key
    )
    with pytest.raises(checkpoints_sql.CosignatureRejected):
        checkpoints_sql.accept_cosignatures(session, fake, [])


def test_leaf_rows_point_at_their_audit_events(session: Session, district: District) -> None:
    e = event(district)
    SqlEventRecorder(session).record(e)
    session.commit()
    row = session.get(AuditEventRow, e.id)
    leaf = session.scalars(select(LedgerLeaf).where(LedgerLeaf.event_id == e.id)).one()
    assert row is not None and row.ledger_index == leaf.idx


def test_witness_configured_by_its_ed25519_vkey_is_accepted_too(
    database: Database, session: Session, district: District, tmp_path: Path
) -> None:
    witness = notes.new_signing_key()
    vkey = notes.verifier_key("clerk.example", witness.public_key())  # type 0x01
    service = ledger_service(database, tmp_path, ledger_witnesses=(vkey,))
    log_id = district_log(session, district)
    service.checkpoint(log_id)
    cp = ledger_sql.latest_checkpoint(session, log_id)
    assert cp is not None
    line = notes.cosign(cp.note, "clerk.example", witness, 1_800_000_000)
    stored = checkpoints_sql.accept_cosignatures(
        session, notes.add_signatures(cp.note, [line]), service.witnesses
    )
    assert stored == ["clerk.example"]
