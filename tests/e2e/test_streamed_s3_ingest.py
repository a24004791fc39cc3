"""Uploads to an S3 store are streamed: the parts go to S3 while the PATCHes arrive,
from the same read that authenticates and hashes them, and the last PATCH completes the
multipart upload instead of storing the file again and reading it back. If streaming
fails the upload is stored whole and read back, as before; either way the object is the
staged ciphertext and passes fixity. In process (moto) and over HTTP (ThreadedMotoServer)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from app import create_app
from app.fixity import check_fixity
from app.vault import Vault
from evidence.adapters import s3_store
from evidence.adapters.s3_store import S3ObjectStore
from tests.conftest import AWS_REGION
from tests.e2e.conftest import World
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import equip, seal, tus_headers

PART = 5 * 1024 * 1024


@pytest.fixture(params=["s3-moto", "s3-server"])
def s3(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Any]:
    if request.param == "s3-moto":
        with mock_aws():
            yield boto3.client("s3", region_name=AWS_REGION)
    else:
        endpoint = request.getfixturevalue("moto_server")
        yield boto3.client("s3", region_name=AWS_REGION, endpoint_url=endpoint)


class _Counting:
    """The S3 client, counting the calls the store makes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


def _ingest(world: World, s3: Any, size: int) -> tuple[Any, _Counting, str, bytes, str]:
    bucket = "evidence-" + secrets.token_hex(4)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    counting = _Counting(s3)
    store = S3ObjectStore(counting, bucket, part_size=PART)
    docks = equip(world.settings)
    app = create_app(world.settings, vault=Vault(world.settings, store=store))
    api = app.test_client()
    plaintext = os.urandom(size)
    sealed = seal(docks, plaintext, segment_size=64 * 1024)
    location = _upload(api, docks.north_credential, sealed, chunk=1024 * 1024)
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential))
    body = receipt.get_json()
    assert body["status"] == "verified", body
    return app, counting, bucket, sealed.ciphertext, str(body["evidence_id"])


def _check_stored(app: Any, s3: Any, bucket: str, ciphertext: bytes, evidence_id: str) -> None:
    stored = s3.get_object(Bucket=bucket, Key=f"originals/{evidence_id}")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(ciphertext).digest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    result = check_fixity(
        app.extensions["bwc.db"],
        app.extensions["bwc.vault"],
        evidence_id,
        actor="cli",
        now=datetime.now(UTC),
    )
    assert result.ok


def test_parts_go_to_s3_as_the_upload_arrives_and_nothing_is_read_back(
    world: World, s3: Any
) -> None:
    app, counting, bucket, ciphertext, evidence_id = _ingest(world, s3, 12 * 1024 * 1024 + 99)
    try:
        assert counting.calls.count("upload_part") == 3  # 5 + 5 + 2 MiB
        assert "put_object" not in counting.calls
        assert "get_object" not in counting.calls  # the digest came from the live read
        assert counting.calls.count("complete_multipart_upload") == 1
        head = s3.head_object(Bucket=bucket, Key=f"originals/{evidence_id}")
        assert head["ObjectLockMode"] == "COMPLIANCE"  # locked once completed
        assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC)
        _check_stored(app, s3, bucket, ciphertext, evidence_id)
    finally:
        app.extensions["bwc.db"].dispose()


def test_a_small_upload_is_stored_with_one_put_once_verified_and_not_read_back(
    world: World, s3: Any
) -> None:
    """Up to the store's adopt_limit (here one part) the verified file goes to S3 whole,
    in one PutObject whose checksum is the SHA-256 the live verification took, and
    which carries the item's retention: besides it only the write-once look-up (one
    HEAD) is sent, no second look-up and no PutObjectRetention."""
    app, counting, bucket, ciphertext, evidence_id = _ingest(world, s3, 3 * 1024 * 1024 + 5)
    try:
        assert counting.calls == ["head_object", "put_object"]
        head = s3.head_object(Bucket=bucket, Key=f"originals/{evidence_id}")
        retained = datetime.now(UTC) + timedelta(days=world.settings.lock_days, hours=-1)
        assert head["ObjectLockRetainUntilDate"] > retained
        assert "create_multipart_upload" not in counting.calls
        assert "upload_part" not in counting.calls
        assert "get_object" not in counting.calls  # the digest came from the live read
        head = s3.head_object(Bucket=bucket, Key=f"originals/{evidence_id}", ChecksumMode="ENABLED")
        assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(ciphertext).digest()
        assert head["ObjectLockMode"] == "COMPLIANCE"
        _check_stored(app, s3, bucket, ciphertext, evidence_id)
    finally:
        app.extensions["bwc.db"].dispose()


def test_a_failed_part_falls_back_to_storing_whole_and_reading_back(
    world: World, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = s3_store.StreamedPut.send
    failed: list[int] = []

    def flaky(self: s3_store.StreamedPut, number: int, chunk: bytes) -> None:
        if number == 2 and not failed:
            failed.append(number)
            raise s3_store.StorageError("the store refused a part")
        real(self, number, chunk)

    monkeypatch.setattr(s3_store.StreamedPut, "send", flaky)
    app, counting, bucket, ciphertext, evidence_id = _ingest(world, s3, 11 * 1024 * 1024)
    try:
        assert failed == [2]
        assert "abort_multipart_upload" in counting.calls
        assert "get_object" in counting.calls  # stored whole, then read back in full
        _check_stored(app, s3, bucket, ciphertext, evidence_id)
    finally:
        app.extensions["bwc.db"].dispose()
