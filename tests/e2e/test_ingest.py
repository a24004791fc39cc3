"""The tus ingest API end to end through the Flask test client: create, patch, verify,
receipt; and every refusal leaving nothing half-created."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.db import Database
from audit import offline_verify
from audit.adapters.ledger_tables import LedgerLeaf
from evidence.adapters.sql.items import EvidenceItem
from evidence.adapters.sql.vault import Upload
from evidence.upload_metadata import encode_tus_metadata
from tests.e2e.conftest import World
from tests.e2e.vault_support import (
    NORTH_CAMERA,
    SOUTH_CAMERA,
    Docks,
    Sealed,
    equip,
    seal,
    tus_headers,
)


@pytest.fixture
def docks(world: World) -> Docks:
    return equip(world.settings)


@pytest.fixture
def vault_app(world: World, docks: Docks) -> Flask:
    app = create_app(world.settings)
    yield app
    app.extensions["bwc.db"].dispose()


@pytest.fixture
def api(vault_app: Flask) -> FlaskClient:
    return vault_app.test_client()


def _create(api: FlaskClient, credential: str, sealed: Sealed, **overrides: str):  # type: ignore[no-untyped-def]
    headers = tus_headers(
        credential,
        **{"Upload-Length": str(len(sealed.ciphertext)), "Upload-Metadata": sealed.header},
    )
    headers.update(overrides)
    return api.post("/api/v1/uploads/", headers=headers)


def _patch(
    api: FlaskClient, credential: str, location: str, data: bytes, offset: int, **extra: str
):  # type: ignore[no-untyped-def]
    headers = tus_headers(
        credential,
        **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        **extra,
    )
    return api.patch(location, data=data, headers=headers)


def _upload(api: FlaskClient, credential: str, sealed: Sealed, chunk: int = 5000) -> str:
    created = _create(api, credential, sealed)
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    offset = 0
    while offset < len(sealed.ciphertext):
        piece = sealed.ciphertext[offset : offset + chunk]
        done = _patch(api, credential, location, piece, offset)
        assert done.status_code == 204, done.get_data(as_text=True)
        offset = int(done.headers["Upload-Offset"])
    return location


def _count(world: World, model: type) -> int:
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        database.dispose()


def _staged(world: World) -> list[str]:
    """What the staging folder holds besides the file identities' lock files (which
    carry no bytes and stay)."""
    root = world.settings.upload_path
    locks = root / "identities"
    assert not locks.exists() or all(p.suffix == ".lock" for p in locks.iterdir())
    return sorted(p.name for p in root.iterdir() if p != locks)


def test_options_advertises_tus_extensions_and_sha256(api: FlaskClient) -> None:
    answer = api.options("/api/v1/uploads/")
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert set(answer.headers["Tus-Extension"].split(",")) == {
        "creation",
        "checksum",
        "termination",
        "expiration",
    }
    assert answer.headers["Tus-Checksum-Algorithm"] == "sha256"
    assert int(answer.headers["Tus-Max-Size"]) > 0


def test_upload_becomes_a_verified_item_with_a_provable_receipt(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    plaintext = os.urandom(3 * 4096 + 17)
    sealed = seal(docks, plaintext)
    location = _upload(api, docks.north_credential, sealed)

    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential)).get_json()
    assert receipt["status"] == "verified"
    assert receipt["sha256"] == hashlib.sha256(plaintext).hexdigest()
    assert receipt["size"] == len(plaintext)
    # The inclusion proof holds against the signed checkpoint with the log's key.
    key_text = api.get("/api/v1/ledger/key").get_data(as_text=True).splitlines()[0]
    checkpoint = offline_verify.verify_checkpoint(
        receipt["checkpoint"], offline_verify.parse_verifier_key(key_text)
    )
    leaf = receipt["leaf"].encode()
    proof = receipt["inclusion_proof"]
    assert proof["tree_size"] == checkpoint.size
    offline_verify.verify_inclusion(
        offline_verify.leaf_hash(leaf),
        receipt["leaf_index"],
        checkpoint.size,
        [bytes.fromhex(h) for h in proof["hashes"]],
        checkpoint.root_hash,
    )
    event = json.loads(leaf)
    assert event["type"] == "evidence.verified"
    assert event["evidence_id"] == receipt["evidence_id"]
    assert event["media_sha256"] == receipt["sha256"]
    assert event["seq"] == 2


def test_the_same_file_twice_maps_to_one_item(api: FlaskClient, docks: Docks, world: World) -> None:
    plaintext = os.urandom(9000)
    first = seal(docks, plaintext)
    again = seal(docks, plaintext)  # a fresh data key and object id, same file
    one = api.get(
        _upload(api, docks.north_credential, first) + "/receipt",
        headers=tus_headers(docks.north_credential),
    ).get_json()
    created = _create(api, docks.north_credential, again)
    assert created.status_code == 201
    assert created.headers["Upload-Offset"] == created.headers["Upload-Length"]
    two = api.get(
        created.headers["Location"] + "/receipt", headers=tus_headers(docks.north_credential)
    ).get_json()
    assert two["status"] == "verified" and two["duplicate"] is True
    assert two["evidence_id"] == one["evidence_id"]
    assert _count(world, EvidenceItem) == 1


def test_a_declared_hash_that_does_not_match_is_rejected_and_nothing_is_kept(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    sealed = seal(docks, os.urandom(10000))
    sealed.metadata["plaintext_sha256"] = hashlib.sha256(b"something else").hexdigest().encode()
    created = _create(api, docks.north_credential, sealed)
    location = created.headers["Location"]
    answer = _patch(api, docks.north_credential, location, sealed.ciphertext, 0)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["reason"] == "sha256_mismatch"
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential)).get_json()
    assert receipt == receipt | {"status": "rejected", "reason": "sha256_mismatch"}
    assert _count(world, EvidenceItem) == 0
    objects = Path(world.settings.storage_url.removeprefix("file://"))
    kept = [p for p in objects.rglob("*") if p.is_file() and p.name != ".lock"]
    assert kept == [], "rejected bytes stayed in the store"
    assert _staged(world) == [], "staged bytes stayed behind"


def test_a_tampered_ciphertext_is_rejected(api: FlaskClient, docks: Docks, world: World) -> None:
    sealed = seal(docks, os.urandom(10000))
    broken = bytearray(sealed.ciphertext)
    broken[5000] ^= 0x01
    created = _create(api, docks.north_credential, sealed)
    answer = _patch(api, docks.north_credential, created.headers["Location"], bytes(broken), 0)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["reason"] == "integrity_failed"
    assert _count(world, EvidenceItem) == 0


def test_a_wrong_chunk_checksum_is_refused_and_the_chunk_discarded(
    api: FlaskClient, docks: Docks
) -> None:
    sealed = seal(docks, os.urandom(10000))
    location = _create(api, docks.north_credential, sealed).headers["Location"]
    wrong = base64.b64encode(hashlib.sha256(b"not this").digest()).decode()
    answer = _patch(
        api,
        docks.north_credential,
        location,
        sealed.ciphertext[:4000],
        0,
        **{"Upload-Checksum": f"sha256 {wrong}"},
    )
    assert answer.status_code == 460
    head = api.head(location, headers=tus_headers(docks.north_credential))
    assert head.headers["Upload-Offset"] == "0"
    right = base64.b64encode(hashlib.sha256(sealed.ciphertext[:4000]).digest()).decode()
    ok = _patch(
        api,
        docks.north_credential,
        location,
        sealed.ciphertext[:4000],
        0,
        **{"Upload-Checksum": f"sha256 {right}"},
    )
    assert ok.status_code == 204 and ok.headers["Upload-Offset"] == "4000"
    md5 = _patch(
        api, docks.north_credential, location, b"x", 4000, **{"Upload-Checksum": "md5 eA=="}
    )
    assert md5.status_code == 400


def test_an_offset_that_does_not_match_is_a_conflict(api: FlaskClient, docks: Docks) -> None:
    sealed = seal(docks, os.urandom(10000))
    location = _create(api, docks.north_credential, sealed).headers["Location"]
    assert (
        _patch(api, docks.north_credential, location, sealed.ciphertext[:100], 50).status_code
        == 409
    )


def test_unknown_and_revoked_docks_are_refused(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    sealed = seal(docks, b"x" * 100)
    assert _create(api, "bwcd_not-a-credential", sealed).status_code == 401
    assert api.post("/api/v1/uploads/", headers={"Tus-Resumable": "1.0.0"}).status_code == 401
    from app.devices import dock_for_credential, revoke_dock

    database = Database(world.settings.database_url)
    with database.transaction() as session:
        dock = dock_for_credential(session, docks.north_credential)
        assert dock is not None
        revoke_dock(session, dock, actor="cli", now=dock.created_at)
    database.dispose()
    assert _create(api, docks.north_credential, sealed).status_code == 401


def test_a_camera_of_another_school_or_unregistered_is_refused_and_logged(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    before = _count(world, LedgerLeaf)
    foreign = seal(docks, b"x" * 100, camera=SOUTH_CAMERA)
    answer = _create(api, docks.north_credential, foreign)
    assert answer.status_code == 403
    assert answer.get_json()["error"]["reason"] == "unregistered_camera"
    unknown = seal(docks, b"x" * 100, camera="BWC-7777")
    assert _create(api, docks.north_credential, unknown).status_code == 403
    assert _count(world, Upload) == 0
    assert _count(world, LedgerLeaf) == before + 2  # both refusals are in the ledger


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"Upload-Length": "123"}, 400, "length_mismatch"),
        ({"Upload-Length": "-1"}, 400, "bad_length"),
        ({"Upload-Length": str(9 * 1024**4)}, 413, "too_large"),
        ({"Upload-Metadata": "camera_serial !!notbase64"}, 400, "bad_metadata"),
        ({"Upload-Metadata": ""}, 400, "missing_metadata"),
    ],
)
def test_malformed_creations_get_clear_errors(
    api: FlaskClient, docks: Docks, world: World, change: dict[str, str], status: int, reason: str
) -> None:
    sealed = seal(docks, b"y" * 5000)
    answer = _create(api, docks.north_credential, sealed, **change)
    assert answer.status_code == status
    assert answer.get_json()["error"]["reason"] == reason
    assert _count(world, Upload) == 0


def test_tus_version_is_required(api: FlaskClient, docks: Docks) -> None:
    sealed = seal(docks, b"y" * 10)
    headers = tus_headers(docks.north_credential, **{"Upload-Length": "1"})
    del headers["Tus-Resumable"]
    assert api.post("/api/v1/uploads/", headers=headers).status_code == 412
    assert sealed  # the seal itself is fine


def test_another_docks_upload_does_not_exist(api: FlaskClient, docks: Docks) -> None:
    sealed = seal(docks, os.urandom(5000))
    location = _create(api, docks.north_credential, sealed).headers["Location"]
    other = tus_headers(docks.south_credential)
    assert api.head(location, headers=other).status_code == 404
    assert api.get(location + "/receipt", headers=other).status_code == 404
    assert _patch(api, docks.south_credential, location, b"x", 0).status_code == 404


def test_termination_removes_the_staged_bytes(api: FlaskClient, docks: Docks, world: World) -> None:
    sealed = seal(docks, os.urandom(10000))
    location = _create(api, docks.north_credential, sealed).headers["Location"]
    _patch(api, docks.north_credential, location, sealed.ciphertext[:3000], 0)
    assert api.delete(location, headers=tus_headers(docks.north_credential)).status_code == 204
    assert api.head(location, headers=tus_headers(docks.north_credential)).status_code == 410
    assert _staged(world) == []


def test_abandoned_uploads_expire_and_are_cleaned_up(
    api: FlaskClient, docks: Docks, world: World, vault_app: Flask
) -> None:
    from datetime import timedelta

    from app.maintenance import expire_uploads

    sealed = seal(docks, os.urandom(10000))
    location = _create(api, docks.north_credential, sealed).headers["Location"]
    _patch(api, docks.north_credential, location, sealed.ciphertext[:3000], 0)
    database = Database(world.settings.database_url)
    with database.sessions() as session:
        upload = session.scalars(select(Upload)).one()
        deadline = upload.expires_at
    assert (
        expire_uploads(
            database, vault_app.extensions["bwc.staging"], deadline - timedelta(seconds=1)
        )
        == 0
    )
    assert (
        expire_uploads(
            database, vault_app.extensions["bwc.staging"], deadline + timedelta(seconds=1)
        )
        == 1
    )
    database.dispose()
    assert api.head(location, headers=tus_headers(docks.north_credential)).status_code == 410
    assert _staged(world) == []
    assert encode_tus_metadata({}) == ""
    assert NORTH_CAMERA


def test_a_dock_enrols_once_and_gets_what_it_pins(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    from datetime import UTC, datetime

    from app.devices import create_dock
    from evidence.adapters.sql.org import District, School

    database = Database(world.settings.database_url)
    with database.transaction() as session:
        district = session.scalars(select(District)).one()
        school = session.scalars(select(School).where(School.code == "NHS")).one()
        _, token = create_dock(
            session, district, school, "gym-dock", actor="cli", now=datetime.now(UTC)
        )
    database.dispose()
    answer = api.post("/api/v1/docks/enrol", json={"token": token})
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["dock"] == "gym-dock"
    assert body["ingest_key"]["version"] == docks.ingest_version
    assert (
        body["log"]["verifier_key"]
        == api.get("/api/v1/ledger/key").get_data(as_text=True).splitlines()[0]
    )
    key = api.get("/api/v1/ingest/key", headers={"Authorization": f"Bearer {body['credential']}"})
    assert (
        key.status_code == 200 and key.get_json()["public_key"] == body["ingest_key"]["public_key"]
    )
    assert api.post("/api/v1/docks/enrol", json={"token": token}).status_code == 404
    assert api.post("/api/v1/docks/enrol", json={"nope": 1}).status_code == 400
    assert api.post("/api/v1/docks/enrol", data="x" * 10).status_code == 400


def test_the_openapi_document_describes_every_api_route(api: FlaskClient, vault_app: Flask) -> None:
    import re

    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    for rule in vault_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "openapi.document":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in paths, f"{path} is not in the OpenAPI document"
        described = set(paths[path]) - {"parameters"}
        wanted = {m.lower() for m in (rule.methods or set())} - {"head", "options"}
        assert wanted <= described, (path, wanted - described)


def test_a_verification_interrupted_after_storing_finishes_on_the_next_receipt_request(
    api: FlaskClient, docks: Docks, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import ingest

    sealed = seal(docks, os.urandom(12000))
    real = ingest._new_item
    calls = {"n": 0}

    def crash_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the service stopped between storing and committing")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "_new_item", crash_once)
    location = _create(api, docks.north_credential, sealed).headers["Location"]
    answer = _patch(api, docks.north_credential, location, sealed.ciphertext, 0)
    assert answer.status_code == 500
    assert _count(world, EvidenceItem) == 0
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential))
    body = receipt.get_json()
    assert body["status"] == "verified" and body["sha256"] == sealed.sha256
    assert _count(world, EvidenceItem) == 1


def _never_called(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the staged file was stored and read back again")


def test_bytes_verified_as_they_arrived_are_adopted_without_a_second_read(
    api: FlaskClient, vault_app: Flask, docks: Docks, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several PATCHes in one process: the live verification read each one back, so the
    last PATCH links that very file into the store and never reads it again."""
    from evidence import vault as vault_core
    from evidence.adapters.local_store import LocalObjectStore

    monkeypatch.setattr(LocalObjectStore, "put_file", _never_called)
    monkeypatch.setattr(vault_core, "digest_object", _never_called)
    plaintext = os.urandom(9 * 4096 + 5)
    sealed = seal(docks, plaintext)
    location = _upload(api, docks.north_credential, sealed, chunk=7000)
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential)).get_json()
    assert receipt["status"] == "verified"
    assert receipt["sha256"] == hashlib.sha256(plaintext).hexdigest()
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            item = session.get(EvidenceItem, receipt["evidence_id"])
            assert item is not None
            assert item.stored_sha256 == hashlib.sha256(sealed.ciphertext).hexdigest()
            assert item.stored_size == len(sealed.ciphertext)
    finally:
        database.dispose()
    stored = world.settings.data_dir / "objects" / f"{item.object_key}.obj"
    assert stored.read_bytes() == sealed.ciphertext
    assert vault_app.extensions["bwc.live_verify"].running() == 0


def test_a_process_that_sees_only_the_last_patch_reads_the_whole_staged_file_back(
    api: FlaskClient, vault_app: Flask, docks: Docks, world: World
) -> None:
    """The last PATCH lands in a process that did not see the others (a fresh verifier
    stands for another worker): it verifies the staged file from its first byte, so a
    byte changed on disk after an earlier PATCH was committed is caught."""
    from app.live_verify import LiveVerifier

    sealed = seal(docks, os.urandom(5 * 4096))
    location = _create(api, docks.north_credential, sealed).headers["Location"]
    half = len(sealed.ciphertext) // 2
    first = _patch(api, docks.north_credential, location, sealed.ciphertext[:half], 0)
    assert first.status_code == 204
    vault_app.extensions["bwc.live_verify"].discard(location.rsplit("/", 1)[1])
    vault_app.extensions["bwc.live_verify"] = LiveVerifier()
    staged = world.settings.upload_path / location.rsplit("/", 1)[1]
    with staged.open("r+b") as handle:  # the disk, not the wire, changed
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 1]))
    last = _patch(api, docks.north_credential, location, sealed.ciphertext[half:], half)
    assert last.status_code == 422
    assert last.get_json()["error"]["reason"] == "integrity_failed"
    assert _count(world, EvidenceItem) == 0


def _read_backs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the stored objects read back in full from now on (filled in as it
    happens)."""
    from evidence import vault as vault_core

    reads: list[str] = []
    real = vault_core.digest_object

    def counted(store, obj, dek):  # type: ignore[no-untyped-def]
        reads.append(obj.key)
        return real(store, obj, dek)

    monkeypatch.setattr(vault_core, "digest_object", counted)
    return reads


def test_a_store_that_cannot_adopt_the_staged_file_stores_it_and_reads_it_back(
    api: FlaskClient, docks: Docks, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence.adapters.local_store import LocalObjectStore
    from evidence.errors import NotAdoptable

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise NotAdoptable("staged on another filesystem")

    monkeypatch.setattr(LocalObjectStore, "adopt_file", refuse)
    reads = _read_backs(monkeypatch)
    plaintext = os.urandom(5 * 4096)
    location = _upload(api, docks.north_credential, seal(docks, plaintext), chunk=6000)
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential)).get_json()
    assert receipt["status"] == "verified"
    assert receipt["sha256"] == hashlib.sha256(plaintext).hexdigest()
    assert reads == [f"originals/{receipt['evidence_id']}"]


@pytest.mark.parametrize("held", ["the same bytes", "another object"])
def test_a_verified_upload_whose_key_the_store_holds_is_judged_by_what_is_stored(
    api: FlaskClient,
    vault_app: Flask,
    docks: Docks,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    held: str,
) -> None:
    """The store is not asked first whether it holds the key: the adoption is refused
    (write-once) and the stored object is then read back and judged instead; the same
    bytes become the item, another object is refused and removed."""
    import uuid

    from evidence import vault as vault_core

    reads = _read_backs(monkeypatch)
    plaintext = os.urandom(5 * 4096)
    sealed = seal(docks, plaintext)
    created = _create(api, docks.north_credential, sealed)
    location = created.headers["Location"]
    key = vault_core.original_key(str(uuid.UUID(location.rsplit("/", 1)[1])))
    there = sealed if held == "the same bytes" else seal(docks, os.urandom(4096))
    store = vault_app.extensions["bwc.vault"].store
    store.put(key, io.BytesIO(there.ciphertext))
    offset = 0
    while offset < len(sealed.ciphertext):
        answer = _patch(
            api, docks.north_credential, location, sealed.ciphertext[offset : offset + 6000], offset
        )
        offset += 6000
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential)).get_json()
    if held == "the same bytes":
        assert answer.status_code == 204
        assert receipt["status"] == "verified"
        assert receipt["sha256"] == hashlib.sha256(plaintext).hexdigest()
        assert reads == [key]
        assert _count(world, EvidenceItem) == 1
    else:
        assert answer.status_code == 422
        assert answer.get_json()["error"]["reason"] == "object_header_mismatch"
        assert receipt["status"] == "rejected"
        assert not store.exists(key)
        assert _count(world, EvidenceItem) == 0


def test_a_tampered_segment_in_an_early_patch_fails_the_live_verification(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    sealed = seal(docks, os.urandom(20000))
    broken = bytearray(sealed.ciphertext)
    broken[3000] ^= 0x80  # inside the first PATCH; its tus checksum is of these bytes
    created = _create(api, docks.north_credential, sealed)
    location = created.headers["Location"]
    offset, answer = 0, None
    while offset < len(broken):
        answer = _patch(
            api, docks.north_credential, location, bytes(broken[offset : offset + 6000]), offset
        )
        if answer.status_code != 204:
            break
        offset = int(answer.headers["Upload-Offset"])
    assert answer is not None and answer.status_code == 422
    assert answer.get_json()["error"]["reason"] == "integrity_failed"
    assert _count(world, EvidenceItem) == 0
    objects = world.settings.data_dir / "objects"
    assert [p for p in objects.rglob("*.obj")] == []


def test_two_uploads_of_one_file_racing_leave_one_item_and_one_stored_object(
    vault_app: Flask, docks: Docks, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both uploads are created before either is verified, so both get their bytes in;
    the second to finish waits for the first under the file's lock, then finds its item
    and stores nothing: no orphaned object of the loser is left in the store."""
    import threading

    from app import ingest
    from app.staging import Staging

    plaintext = os.urandom(20000)
    first, second = seal(docks, plaintext), seal(docks, plaintext)
    api = vault_app.test_client()
    locations = []
    for sealed in (first, second):
        created = _create(api, docks.north_credential, sealed)
        assert created.status_code == 201
        assert created.headers["Upload-Offset"] == "0"  # not a duplicate yet
        location = created.headers["Location"]
        head = sealed.ciphertext[:-100]
        assert _patch(api, docks.north_credential, location, head, 0).status_code == 204
        locations.append(location)

    first_inside, first_may_go = threading.Event(), threading.Event()
    real_store, real_lock = ingest._store_and_record, Staging.file_lock
    lock_calls: list[str] = []

    def held_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        if args[3] == locations[0].rsplit("/", 1)[1]:
            first_inside.set()
            assert first_may_go.wait(30)
        return real_store(*args, **kwargs)

    def counted_lock(self, identity, **kwargs):  # type: ignore[no-untyped-def]
        lock_calls.append(identity)
        return real_lock(self, identity, **kwargs)

    monkeypatch.setattr(ingest, "_store_and_record", held_open)
    monkeypatch.setattr(Staging, "file_lock", counted_lock)
    answers: dict[int, int] = {}

    def finish(n: int, sealed: Sealed) -> None:
        client = vault_app.test_client()
        tail, offset = sealed.ciphertext[-100:], len(sealed.ciphertext) - 100
        answer = _patch(client, docks.north_credential, locations[n], tail, offset)
        answers[n] = answer.status_code

    one = threading.Thread(target=finish, args=(0, first))
    one.start()
    assert first_inside.wait(30)
    two = threading.Thread(target=finish, args=(1, second))
    two.start()
    for _ in range(300):  # the second reaches the file's lock and waits there
        if len(lock_calls) == 2:
            break
        two.join(0.01)
    assert len(lock_calls) == 2 and two.is_alive()
    first_may_go.set()
    one.join(30)
    two.join(30)
    assert answers == {0: 204, 1: 204}

    receipts = [
        api.get(location + "/receipt", headers=tus_headers(docks.north_credential)).get_json()
        for location in locations
    ]
    assert [r["status"] for r in receipts] == ["verified", "verified"]
    assert receipts[1]["duplicate"] is True
    assert receipts[1]["evidence_id"] == receipts[0]["evidence_id"]
    assert _count(world, EvidenceItem) == 1
    stored = sorted((world.settings.data_dir / "objects" / "originals").glob("*.obj"))
    assert [p.name for p in stored] == [f"{receipts[0]['evidence_id']}.obj"]
    assert stored[0].read_bytes() == first.ciphertext
    assert _staged(world) == []
