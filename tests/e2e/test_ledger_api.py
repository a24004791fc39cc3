"""The ledger read API, the witness tool against a live server, and the ledger page."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import cli, create_app
from audit import merkle, notes, offline_verify
from audit.adapters import ledger_sql
from audit.adapters.checkpoints_sql import create_signer_file
from audit.witness import WitnessRefusal, witness_once
from tests.integration import tampering

from .conftest import World, csrf_token, sign_in


def _district_log(app: Flask) -> int:
    with app.extensions["bwc.db"].sessions() as session:
        return ledger_sql.log_by_origin(session, None).id


@pytest.fixture
def make_app(world: World) -> Iterator[Callable[..., Flask]]:
    """Apps with a ledger signing key and a first checkpoint; disposed after the test."""
    made: list[Flask] = []

    def make(**changes: object) -> Flask:
        settings = world.settings.with_changes(checkpoint_seconds=0, **changes)
        assert settings.ledger_key_file is not None
        create_signer_file(settings.ledger_key_file, "bwc-evidence.local")
        app = create_app(settings)
        made.append(app)
        app.extensions["bwc.ledger"].checkpoint_all()
        return app

    yield make
    for app in made:
        app.extensions["bwc.db"].dispose()


@pytest.fixture
def ledger_client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


def test_checkpoint_key_entries_and_proofs_verify_independently(
    ledger_client: FlaskClient,
) -> None:
    key_text = ledger_client.get("/api/v1/ledger/key")
    assert key_text.mimetype == "text/plain"
    vkey = offline_verify.parse_verifier_key(key_text.get_data(as_text=True).splitlines()[0])
    note = ledger_client.get("/api/v1/ledger/checkpoint").get_data(as_text=True)
    checkpoint = offline_verify.verify_checkpoint(note, vkey)
    size = checkpoint.size
    assert size > 5  # the seeded district's admin events

    entries = ledger_client.get(f"/api/v1/ledger/entries?start=0&end={size}").json["entries"]
    assert [e["index"] for e in entries] == list(range(size))
    leaves = [base64.b64decode(e["leaf"]) for e in entries]
    assert offline_verify.merkle_root([merkle.leaf_hash(x) for x in leaves]) == checkpoint.root_hash

    index = size // 2
    proof = ledger_client.get(f"/api/v1/ledger/proof/inclusion?index={index}&tree_size={size}").json
    parsed = offline_verify.inclusion_proof_from_json(proof)
    offline_verify.verify_inclusion(
        merkle.leaf_hash(leaves[index]), index, size, parsed.hashes, checkpoint.root_hash
    )
    consistency = ledger_client.get(f"/api/v1/ledger/proof/consistency?first=3&second={size}").json
    old_root = offline_verify.merkle_root([merkle.leaf_hash(x) for x in leaves[:3]])
    offline_verify.verify_consistency(
        3,
        size,
        offline_verify.consistency_proof_from_json(consistency).hashes,
        old_root,
        checkpoint.root_hash,
    )


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/ledger/proof/inclusion?index=0&tree_size=999999",
        "/api/v1/ledger/proof/inclusion?index=x&tree_size=1",
        "/api/v1/ledger/proof/consistency?first=0&second=1",
        "/api/v1/ledger/entries?start=5&end=2",
        "/api/v1/ledger/entries?start=-1&end=2",
    ],
)
def test_bad_ledger_requests_get_a_json_400(ledger_client: FlaskClient, query: str) -> None:
    response = ledger_client.get(query)
    assert response.status_code == 400 and response.is_json
    assert response.json["error"]["detail"]


def test_entries_are_paged(ledger_client: FlaskClient) -> None:
    response = ledger_client.get("/api/v1/ledger/entries?start=0&end=100000")
    assert len(response.json["entries"]) <= 1000


def test_read_token_when_configured(make_app: Callable[..., Flask]) -> None:
    client = make_app(ledger_read_token="t0ken-for-auditors").test_client()
    assert client.get("/api/v1/ledger/checkpoint").status_code == 401
    ok = client.get(
        "/api/v1/ledger/checkpoint", headers={"Authorization": "Bearer t0ken-for-auditors"}
    )
    assert ok.status_code == 200


def test_openapi_document_describes_the_ledger(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    for path in ("checkpoint", "key", "entries", "proof/inclusion", "proof/consistency"):
        assert f"/api/v1/ledger/{path}" in doc["paths"]


def _witness_setup(tmp_path: Path) -> tuple[str, str]:
    key = notes.new_signing_key()
    text = notes.dump_cosigning_key(key, "oversight.example")
    return text, notes.cosignature_verifier_key("oversight.example", key.public_key())


def test_witness_cosigns_and_refuses_a_rewritten_history(
    world: World,
    tmp_path: Path,
    live_server: Callable[[Flask], str],
    make_app: Callable[..., Flask],
) -> None:
    key_text, vkey = _witness_setup(tmp_path)
    app = make_app(ledger_witnesses=(vkey,))
    base = live_server(app)
    state = tmp_path / "witness-state"

    first = witness_once(base, state, key_text)
    assert first.cosigned and first.old_size is None
    status = app.extensions["bwc.ledger"].status(_district_log(app))
    assert status.published and status.cosignatures == 1

    # The log grows; the witness checks consistency and cosigns again.
    client = app.test_client()
    sign_in(client, world.people["supervisor"])
    app.extensions["bwc.ledger"].checkpoint_all()
    second = witness_once(base, state, key_text)
    assert second.old_size == first.new_size and second.new_size > first.new_size

    # Someone rewrites history below the witnessed size and re-signs.
    database = app.extensions["bwc.db"]
    log_id = _district_log(app)
    with database.engine.begin() as connection:
        tampering.rewrite_leaf(connection, log_id, 2, b'{"forged":true}', fix_hashes=True)
        tampering.without_protection(connection, "ledger_nodes")
        tampering.execute(
            connection, "DELETE FROM ledger_nodes WHERE log_id = ? AND level > 0", log_id
        )
        tampering.without_protection(connection, "ledger_checkpoints")
        tampering.without_protection(connection, "ledger_cosignatures")
        tampering.execute(connection, "DELETE FROM ledger_cosignatures")
        tampering.execute(connection, "DELETE FROM ledger_checkpoints WHERE log_id = ?", log_id)
    _rebuild_nodes_and_resign(app, log_id)
    with pytest.raises(WitnessRefusal, match="history rewritten"):
        witness_once(base, state, key_text)


def _rebuild_nodes_and_resign(app: Flask, log_id: int) -> None:
    """A thorough forger: recompute every subtree from the edited leaves and sign anew."""
    with app.extensions["bwc.db"].engine.begin() as connection:
        tampering.rebuild_nodes(connection, log_id)
    app.extensions["bwc.ledger"].checkpoint(log_id)


def test_ledger_page_shows_size_key_checkpoint_and_audit(
    world: World, make_app: Callable[..., Flask]
) -> None:
    app = make_app()
    client = app.test_client()
    sign_in(client, world.people["oversight"])
    page = client.get("/ledger").get_data(as_text=True)
    assert 'id="verifier-key"' in page and "bwc-evidence.local/d1+" in page
    assert 'id="checkpoint-note"' in page
    token = csrf_token(client, "/ledger")
    client.post("/ledger/audit", data={"csrf_token": token})
    assert "Self-audit passed" in client.get("/ledger").get_data(as_text=True)


def test_ledger_page_is_not_for_footage_roles(world: World, make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    sign_in(client, world.people["supervisor"])
    assert client.get("/ledger").status_code == 403


def test_alarm_banner_appears_for_everyone_after_a_failed_audit(
    world: World, make_app: Callable[..., Flask]
) -> None:
    app = make_app()
    ledger = app.extensions["bwc.ledger"]
    log_id = _district_log(app)
    with app.extensions["bwc.db"].engine.begin() as connection:
        tampering.delete_leaf(connection, log_id, 1)
    assert not ledger.audit(log_id).ok
    client = app.test_client()
    sign_in(client, world.people["wearer"])
    page = client.get("/home").get_data(as_text=True)
    assert 'id="ledger-alarm"' in page and "leaf 1 is missing" in page


def test_init_creates_a_signing_key_and_verify_passes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
) -> None:
    monkeypatch.setenv("BWC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BWC_DATABASE_URL", db_url)
    assert cli.main(["init"]) == 0
    assert (tmp_path / "ledger-signing.key").stat().st_mode & 0o777 == 0o600
    assert cli.main(["ledger", "checkpoint"]) == 0
    assert cli.main(["ledger", "verify"]) == 0
    out = capsys.readouterr().out
    assert "signed a checkpoint" in out and ": ok:" in out
    assert cli.main(["ledger", "key"]) == 0
    assert capsys.readouterr().out.startswith("bwc-evidence.local/")
