"""Tampering with stored objects, on the local folder and on S3 (moto in process and over
HTTP): every read and fixity check fails, nothing garbled is served, the item is marked."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from moto import mock_aws

from app import create_app
from app.db import Database
from app.fixity import check_fixity, export_item
from app.vault import Vault
from evidence.adapters.local_store import LocalObjectStore
from evidence.adapters.s3_store import S3ObjectStore
from evidence.adapters.sql.items import EvidenceItem
from evidence.errors import IntegrityError
from tests.conftest import AWS_REGION
from tests.e2e.conftest import World, sign_in
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import equip, seal, tus_headers

SEGMENT = 4096


@dataclass
class Backend:
    """Raw access to a store's bytes, as an attacker with storage access has."""

    store: Any
    read: Callable[[str], bytes]
    write: Callable[[str, bytes], None]


def _local(tmp_path: Path) -> Backend:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)

    def path(key: str) -> Path:
        return root / f"{key}.obj"

    def write(key: str, data: bytes) -> None:
        target = path(key)
        target.chmod(0o600)
        target.write_bytes(data)  # an attacker with the folder ignores our retention

    return Backend(store, lambda key: path(key).read_bytes(), write)


def _s3(client: Any) -> Backend:
    bucket = "evidence-" + secrets.token_hex(4)
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    store = S3ObjectStore(client, bucket, prefix="vault/", part_size=5 * 1024 * 1024)

    def read(key: str) -> bytes:
        return bytes(client.get_object(Bucket=bucket, Key="vault/" + key)["Body"].read())

    def write(key: str, data: bytes) -> None:
        # Object Lock keeps every version, but a writer can still stack a new current one.
        client.put_object(Bucket=bucket, Key="vault/" + key, Body=data)

    return Backend(store, read, write)


@pytest.fixture(params=["local", "s3-moto", "s3-server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, aws_env: None) -> Iterator[Backend]:
    if request.param == "local":
        yield _local(tmp_path)
    elif request.param == "s3-moto":
        with mock_aws():
            yield _s3(boto3.client("s3", region_name=AWS_REGION))
    else:
        endpoint = request.getfixturevalue("moto_server")
        yield _s3(boto3.client("s3", region_name=AWS_REGION, endpoint_url=endpoint))


@dataclass
class Stored:
    app: Flask
    vault: Vault
    database: Database
    ids: list[str]
    plain: list[bytes]


@pytest.fixture
def stored(world: World, backend: Backend) -> Iterator[Stored]:
    docks = equip(world.settings)
    vault = Vault(world.settings, store=backend.store)
    app = create_app(world.settings, vault=vault)
    api = app.test_client()
    plain = [os.urandom(4 * SEGMENT + 100), os.urandom(4 * SEGMENT + 100)]
    ids = []
    for n, data in enumerate(plain):
        sealed = seal(docks, data, segment_size=SEGMENT, identity=f"BWC0000{n}.MP4@t")
        location = _upload(api, docks.north_credential, sealed)
        receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential))
        ids.append(receipt.get_json()["evidence_id"])
    database = Database(world.settings.database_url)
    yield Stored(app, vault, database, ids, plain)
    database.dispose()
    app.extensions["bwc.db"].dispose()


def _key(evidence_id: str) -> str:
    return f"originals/{evidence_id}"


def _flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x40
    return bytes(changed)


TAMPERS: dict[str, Callable[[bytes, bytes], bytes]] = {
    "flipped body byte": lambda mine, other: _flip(mine, 64 + SEGMENT + 7),
    "flipped header byte": lambda mine, other: _flip(mine, 20),
    "flipped tag byte": lambda mine, other: _flip(mine, 64 + SEGMENT + 16 - 1),
    "truncated at a segment boundary": lambda mine, other: mine[: 64 + 2 * (SEGMENT + 16)],
    "truncated mid-segment": lambda mine, other: mine[:-50],
    "bytes appended": lambda mine, other: mine + b"\0" * 16,
    "swapped with another item": lambda mine, other: other,
    "segments reordered": lambda mine, other: (
        mine[:64]
        + mine[64 + SEGMENT + 16 : 64 + 2 * (SEGMENT + 16)]
        + mine[64 : 64 + SEGMENT + 16]
        + mine[64 + 2 * (SEGMENT + 16) :]
    ),
}


def _supervisor(stored: Stored, world: World) -> Any:
    client = stored.app.test_client()
    sign_in(client, world.people["supervisor"])
    return client


def test_untampered_items_pass_fixity(stored: Stored) -> None:
    for evidence_id in stored.ids:
        result = check_fixity(
            stored.database, stored.vault, evidence_id, actor="cli", now=datetime.now(UTC)
        )
        assert result.ok, result.problem


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampering_fails_reads_and_fixity_and_marks_the_item(
    stored: Stored, backend: Backend, world: World, tamper: str, tmp_path: Path
) -> None:
    victim, other = stored.ids
    original = backend.read(_key(victim))
    backend.write(_key(victim), TAMPERS[tamper](original, backend.read(_key(other))))

    result = check_fixity(stored.database, stored.vault, victim, actor="cli", now=datetime.now(UTC))
    assert not result.ok
    with stored.database.sessions() as session:
        item = session.get(EvidenceItem, victim)
        assert item is not None and item.integrity == "tampered"

    # Reads serve nothing that did not authenticate: an error, or a short, correct prefix.
    client = _supervisor(stored, world)
    answer = client.get(f"/evidence/{victim}/stream?purpose=investigation")
    body = answer.data
    assert answer.status_code != 200 or len(body) < len(stored.plain[0])
    assert stored.plain[0].startswith(body) or answer.status_code >= 500
    assert stored.plain[1] not in body

    with pytest.raises(IntegrityError):
        export_item(
            stored.database,
            stored.vault,
            victim,
            tmp_path / "out.mp4",
            actor="cli",
            now=datetime.now(UTC),
        )
    assert not (tmp_path / "out.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []

    # The other item is untouched.
    assert check_fixity(stored.database, stored.vault, other, actor="cli", now=datetime.now(UTC)).ok


def test_an_export_decrypts_and_verifies(stored: Stored, tmp_path: Path) -> None:
    out = tmp_path / "export.mp4"
    sha, size = export_item(
        stored.database, stored.vault, stored.ids[0], out, actor="cli", now=datetime.now(UTC)
    )
    assert out.read_bytes() == stored.plain[0]
    assert size == len(stored.plain[0])
    with pytest.raises(Exception, match="exists"):
        export_item(
            stored.database, stored.vault, stored.ids[0], out, actor="cli", now=datetime.now(UTC)
        )
    assert sha


def test_a_failed_fixity_check_raises_an_alarm_for_those_who_must_act(
    stored: Stored, backend: Backend, world: World
) -> None:
    victim = stored.ids[0]
    backend.write(_key(victim), _flip(backend.read(_key(victim)), 100))
    check_fixity(stored.database, stored.vault, victim, actor="cli", now=datetime.now(UTC))
    for who, shown in (("admin", True), ("records", True), ("oversight", True), ("wearer", False)):
        client = stored.app.test_client()
        sign_in(client, world.people[who])
        page = client.get("/home").get_data(as_text=True)
        assert ('id="fixity-alarm"' in page) is shown, who
        if shown:
            assert "1 evidence item failed a fixity check" in page
