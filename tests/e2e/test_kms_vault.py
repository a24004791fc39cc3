"""The vault with AWS KMS (through moto) as its key provider: ingest, read, rotate."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import select

from app import create_app
from app.db import Database
from app.fixity import check_fixity
from app.rotation import rotate_keys
from app.vault import Vault
from evidence.adapters.aws_kms import AwsKmsKeyProvider
from evidence.adapters.sql.items import EvidenceItem
from tests.conftest import AWS_REGION
from tests.e2e.conftest import World, sign_in
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import equip, seal, tus_headers


@pytest.fixture
def kms(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name=AWS_REGION)


def test_ingest_read_and_rotation_under_kms(world: World, kms: Any) -> None:
    first = kms.create_key(Description="bwc kek 1")["KeyMetadata"]["Arn"]
    vault = Vault(world.settings, keys=AwsKmsKeyProvider(kms, first))
    docks = equip(world.settings, vault)
    app = create_app(world.settings, vault=vault)
    api = app.test_client()
    plain = os.urandom(20000)
    location = _upload(api, docks.north_credential, seal(docks, plain))
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential))
    evidence_id = receipt.get_json()["evidence_id"]

    database = Database(world.settings.database_url)
    with database.sessions() as session:
        item = session.get(EvidenceItem, evidence_id)
        assert item is not None and item.key_version == first
    # KMS binds the wrap to the evidence id (encryption context): check it on the blob.
    blob = __import__("base64").b64decode(item.wrapped_key or "")
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=blob, KeyId=first, EncryptionContext={"evidence_id": "x"})

    client = app.test_client()
    sign_in(client, world.people["supervisor"])
    assert client.get(f"/evidence/{evidence_id}/stream?purpose=audit").data == plain

    # Rotation under KMS: the service is pointed at a new key; rotate re-wraps to it.
    second = kms.create_key(Description="bwc kek 2")["KeyMetadata"]["Arn"]
    rotated = Vault(world.settings, keys=AwsKmsKeyProvider(kms, second))
    report = rotate_keys(database, rotated, actor="cli", now=datetime.now(UTC))
    assert report.items == 1 and report.ingest_keys == 1
    with database.sessions() as session:
        versions = set(session.scalars(select(EvidenceItem.key_version)))
    assert versions == {second}
    assert check_fixity(database, rotated, evidence_id, actor="cli", now=datetime.now(UTC)).ok
    kms.disable_key(KeyId=first.rsplit("/", 1)[1])  # nothing needs the old key any more
    assert check_fixity(database, rotated, evidence_id, actor="cli", now=datetime.now(UTC)).ok
    assert json.loads(receipt.data)["status"] == "verified"
    database.dispose()
    app.extensions["bwc.db"].dispose()
