"""The KeyProvider contract, run against the local keyring and AWS KMS (under moto)."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from evidence.adapters.aws_kms import AwsKmsKeyProvider
from evidence.adapters.local_keyring import LocalKeyring
from evidence.errors import IntegrityError, KeyProviderError
from evidence.ports import KeyProvider, WrappedKey

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LATER = datetime(2027, 5, 24, 9, 0, tzinfo=UTC)
CONTEXT = {"evidence_id": "ev-0001", "object": "original"}
REGION = "us-east-1"


@dataclass
class Harness:
    """A provider plus how to rotate it and name a version it has never heard of."""

    provider: KeyProvider
    rotate: Callable[[], KeyProvider]
    unknown_version: str


def keyring_harness(tmp_path: Path) -> Harness:
    keyring = LocalKeyring.create(tmp_path / "keys" / "keyring.json", NOW)

    def rotate() -> KeyProvider:
        keyring.add_version(LATER)
        return keyring

    return Harness(keyring, rotate, "k9")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto KMS with fake credentials; nothing here can reach real AWS."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("kms", region_name=REGION)


def kms_harness(kms: Any) -> Harness:
    first = kms.create_key(Description="bwc kek 1")["KeyMetadata"]["KeyId"]

    def rotate() -> KeyProvider:
        second = kms.create_key(Description="bwc kek 2")["KeyMetadata"]["KeyId"]
        return AwsKmsKeyProvider.from_settings(second, region=REGION)

    unknown = f"arn:aws:kms:{REGION}:123456789012:key/{uuid.uuid4()}"
    return Harness(AwsKmsKeyProvider.from_settings(first, region=REGION), rotate, unknown)


@pytest.fixture(params=["local_keyring", "aws_kms"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "local_keyring":
        return keyring_harness(tmp_path)
    return kms_harness(request.getfixturevalue("aws"))


# --- the contract ----------------------------------------------------------------------


def test_generated_data_key_unwraps_to_the_same_key(harness: Harness) -> None:
    provider = harness.provider
    dek, wrapped = provider.generate_data_key(CONTEXT)
    assert len(dek) == 32
    assert wrapped.version == provider.current_version()
    assert dek not in wrapped.blob
    assert provider.unwrap(wrapped, CONTEXT) == dek
    assert provider.generate_data_key(CONTEXT)[0] != dek


def test_wrapped_key_unwraps_to_the_same_key(harness: Harness) -> None:
    dek = os.urandom(32)
    wrapped = harness.provider.wrap(dek, CONTEXT)
    assert wrapped.version == harness.provider.current_version()
    assert harness.provider.unwrap(wrapped, dict(reversed(CONTEXT.items()))) == dek


@pytest.mark.parametrize(
    "other",
    [
        {"evidence_id": "ev-0002", "object": "original"},
        {"evidence_id": "ev-0001", "object": "derivative-1"},
        {"evidence_id": "ev-0001"},
        {**CONTEXT, "extra": "x"},
        {},
    ],
)
def test_wrapped_key_moved_to_another_context_fails(
    harness: Harness, other: dict[str, str]
) -> None:
    _, wrapped = harness.provider.generate_data_key(CONTEXT)
    with pytest.raises(IntegrityError):
        harness.provider.unwrap(wrapped, other)


def test_tampered_blob_fails_authentication(harness: Harness) -> None:
    _, wrapped = harness.provider.generate_data_key(CONTEXT)
    blob = bytearray(wrapped.blob)
    blob[len(blob) // 2] ^= 0x01
    with pytest.raises(IntegrityError):
        harness.provider.unwrap(replace(wrapped, blob=bytes(blob)), CONTEXT)
    with pytest.raises(IntegrityError):
        harness.provider.unwrap(replace(wrapped, blob=wrapped.blob[:-1]), CONTEXT)


def test_rotation_keeps_old_wrapped_keys_readable(harness: Harness) -> None:
    old_dek, old_wrapped = harness.provider.generate_data_key(CONTEXT)
    old_version = harness.provider.current_version()

    rotated = harness.rotate()

    assert rotated.current_version() != old_version
    assert rotated.unwrap(old_wrapped, CONTEXT) == old_dek
    new_dek, new_wrapped = rotated.generate_data_key(CONTEXT)
    assert new_wrapped.version == rotated.current_version()
    assert rotated.wrap(old_dek, CONTEXT).version == rotated.current_version()
    assert rotated.unwrap(new_wrapped, CONTEXT) == new_dek


def test_unknown_key_version_is_a_key_provider_error(harness: Harness) -> None:
    _, wrapped = harness.provider.generate_data_key(CONTEXT)
    with pytest.raises(KeyProviderError):
        harness.provider.unwrap(replace(wrapped, version=harness.unknown_version), CONTEXT)


def test_wrap_refuses_a_dek_that_is_not_32_bytes(harness: Harness) -> None:
    with pytest.raises(ValueError):
        harness.provider.wrap(os.urandom(16), CONTEXT)


# --- local keyring only ----------------------------------------------------------------


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


def stored_keys(path: Path) -> list[bytes]:
    return [base64.b64decode(k["key"]) for k in json.loads(path.read_text())["keys"]]


def test_keyring_is_created_private(keyring_path: Path) -> None:
    keyring = LocalKeyring.create(keyring_path, NOW)
    assert stat.S_IMODE(keyring_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyring_path.parent.stat().st_mode) == 0o700
    doc = json.loads(keyring_path.read_text())
    assert doc["schema"] == "bwc-keyring/1"
    assert doc["current"] == "k1" == keyring.current_version()
    assert doc["keys"][0]["created_at"] == "2026-11-24T09:00:00Z"
    assert [len(k) for k in stored_keys(keyring_path)] == [32]


def test_keyring_create_refuses_to_overwrite(keyring_path: Path) -> None:
    LocalKeyring.create(keyring_path, NOW)
    before = keyring_path.read_bytes()
    with pytest.raises(KeyProviderError, match="already exists"):
        LocalKeyring.create(keyring_path, LATER)
    assert keyring_path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_keyring_open_refuses_a_file_others_can_access(keyring_path: Path, mode: int) -> None:
    LocalKeyring.create(keyring_path, NOW)
    keyring_path.chmod(mode)
    with pytest.raises(KeyProviderError, match=f"chmod 600 {keyring_path}"):
        LocalKeyring.open(keyring_path)


def test_keyring_open_refuses_a_symlink(keyring_path: Path) -> None:
    LocalKeyring.create(keyring_path, NOW)
    link = keyring_path.with_name("link.json")
    link.symlink_to(keyring_path)
    with pytest.raises(KeyProviderError, match="symlink"):
        LocalKeyring(link)


def test_keyring_open_refuses_a_directory_others_can_write(keyring_path: Path) -> None:
    LocalKeyring.create(keyring_path, NOW)
    keyring_path.parent.chmod(0o777)
    with pytest.raises(KeyProviderError, match="chmod 700"):
        LocalKeyring.open(keyring_path)


def test_keyring_open_reports_a_missing_file(keyring_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="no keyring"):
        LocalKeyring.open(keyring_path)


def good_doc() -> dict[str, Any]:
    key = base64.b64encode(bytes(32)).decode()
    return {
        "schema": "bwc-keyring/1",
        "current": "k1",
        "keys": [{"version": "k1", "key": key, "created_at": "2026-11-24T09:00:00Z"}],
    }


def with_key(**changes: Any) -> dict[str, Any]:
    doc = good_doc()
    doc["keys"][0].update(changes)
    return doc


MALFORMED = {
    "not json": b"{not json",
    "not utf-8": b"\xff\xfe",
    "a list": b"[]",
    "duplicate field": b'{"schema": "bwc-keyring/1", "schema": "x", "current": "k1", "keys": []}',
    "wrong schema": json.dumps({**good_doc(), "schema": "bwc-keyring/2"}).encode(),
    "extra field": json.dumps({**good_doc(), "note": "x"}).encode(),
    "no keys": json.dumps({**good_doc(), "keys": []}).encode(),
    "unknown current": json.dumps({**good_doc(), "current": "k2"}).encode(),
    "bad version": json.dumps(with_key(version="v1")).encode(),
    "short key": json.dumps(with_key(key=base64.b64encode(bytes(16)).decode())).encode(),
    "key not base64": json.dumps(with_key(key="!" * 44)).encode(),
    "key not a string": json.dumps(with_key(key=7)).encode(),
    "naive timestamp": json.dumps(with_key(created_at="2026-11-24T09:00:00")).encode(),
    "duplicate version": json.dumps({**good_doc(), "keys": good_doc()["keys"] * 2}).encode(),
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_keyring_open_explains_a_malformed_file(keyring_path: Path, content: bytes) -> None:
    keyring_path.parent.mkdir(mode=0o700)
    keyring_path.write_bytes(content)
    keyring_path.chmod(0o600)
    with pytest.raises(KeyProviderError, match=f"keyring {keyring_path} is malformed: "):
        LocalKeyring.open(keyring_path)


def test_well_formed_handwritten_keyring_opens(keyring_path: Path) -> None:
    keyring_path.parent.mkdir(mode=0o700)
    keyring_path.write_text(json.dumps(good_doc()))
    keyring_path.chmod(0o600)
    assert LocalKeyring.open(keyring_path).versions() == ("k1",)


def test_keyring_repr_shows_no_key_bytes(keyring_path: Path) -> None:
    keyring = LocalKeyring.create(keyring_path, NOW)
    keyring.add_version(LATER)
    text = repr(keyring) + str(keyring)
    assert "keyring.json" in text
    for key in stored_keys(keyring_path):
        for spelling in (base64.b64encode(key).decode(), key.hex(), repr(key)):
            assert spelling not in text


def test_add_version_persists_atomically_and_privately(keyring_path: Path) -> None:
    keyring = LocalKeyring.create(keyring_path, NOW)
    assert keyring.add_version(LATER) == "k2"
    assert keyring.add_version(LATER) == "k3"
    assert keyring.versions() == ("k1", "k2", "k3")
    assert stat.S_IMODE(keyring_path.stat().st_mode) == 0o600
    assert sorted(p.name for p in keyring_path.parent.iterdir()) == ["keyring.json"]
    reopened = LocalKeyring.open(keyring_path)
    assert reopened.current_version() == "k3"
    assert reopened.versions() == ("k1", "k2", "k3")
    assert len(set(stored_keys(keyring_path))) == 3


def test_add_version_from_a_stale_instance_keeps_the_other_versions(keyring_path: Path) -> None:
    first = LocalKeyring.create(keyring_path, NOW)
    second = LocalKeyring.open(keyring_path)
    first.add_version(LATER)
    dek, wrapped_k2 = first.generate_data_key(CONTEXT)

    assert second.add_version(LATER) == "k3"

    assert LocalKeyring.open(keyring_path).versions() == ("k1", "k2", "k3")
    assert second.unwrap(wrapped_k2, CONTEXT) == dek


def test_another_process_rotation_is_picked_up_on_unwrap(keyring_path: Path) -> None:
    LocalKeyring.create(keyring_path, NOW)
    worker = LocalKeyring.open(keyring_path)
    admin = LocalKeyring.open(keyring_path)
    admin.add_version(LATER)
    dek, wrapped = admin.generate_data_key(CONTEXT)
    assert wrapped.version == "k2"
    assert worker.unwrap(wrapped, CONTEXT) == dek


def test_keyring_that_lost_a_version_is_refused(keyring_path: Path) -> None:
    keyring = LocalKeyring.create(keyring_path, NOW)
    backup = keyring_path.read_bytes()
    keyring.add_version(LATER)
    fd = os.open(keyring_path, os.O_WRONLY | os.O_TRUNC)  # restored from the old backup
    os.write(fd, backup)
    os.close(fd)
    with pytest.raises(KeyProviderError, match="no longer holds version k2"):
        keyring.add_version(LATER)
    with pytest.raises(KeyProviderError):
        keyring.unwrap(WrappedKey("k7", b""), CONTEXT)
    assert keyring.versions() == ("k1", "k2")


def test_keyring_wrap_is_bound_to_its_version_label(keyring_path: Path) -> None:
    # Two versions with the same key bytes (a hand-edited keyring): only the version in
    # the associated data tells their wraps apart.
    doc = good_doc()
    doc["keys"].append({**doc["keys"][0], "version": "k2"})
    doc["current"] = "k2"
    keyring_path.parent.mkdir(mode=0o700)
    keyring_path.write_text(json.dumps(doc))
    keyring_path.chmod(0o600)
    keyring = LocalKeyring.open(keyring_path)
    _, wrapped = keyring.generate_data_key(CONTEXT)
    assert wrapped.version == "k2"
    with pytest.raises(IntegrityError):
        keyring.unwrap(replace(wrapped, version="k1"), CONTEXT)


def test_keyring_refuses_naive_timestamps(keyring_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        LocalKeyring.create(keyring_path, datetime(2026, 11, 24, 9, 0))
    assert not keyring_path.exists()


# --- AWS KMS only ----------------------------------------------------------------------


def test_kms_version_is_the_key_arn_even_through_an_alias(aws: Any) -> None:
    meta = aws.create_key()["KeyMetadata"]
    aws.create_alias(AliasName="alias/bwc-kek", TargetKeyId=meta["KeyId"])
    provider = AwsKmsKeyProvider(aws, "alias/bwc-kek")
    assert provider.current_version() == meta["Arn"]
    _, wrapped = provider.generate_data_key(CONTEXT)
    assert wrapped.version == meta["Arn"]


def test_kms_refuses_a_disabled_key(aws: Any) -> None:
    key_id = aws.create_key()["KeyMetadata"]["KeyId"]
    aws.disable_key(KeyId=key_id)
    with pytest.raises(KeyProviderError, match="Disabled"):
        AwsKmsKeyProvider(aws, key_id).current_version()


def test_kms_refuses_a_version_from_the_local_keyring(aws: Any) -> None:
    provider = AwsKmsKeyProvider(aws, aws.create_key()["KeyMetadata"]["KeyId"])
    with pytest.raises(KeyProviderError, match="not a KMS key ARN"):
        provider.unwrap(WrappedKey("k1", b"x" * 61), CONTEXT)


class FailingKms:
    """A KMS client whose every call fails with the given exception."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(**kwargs: Any) -> Any:
            raise self.error

        return call


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Decrypt")


ARN = f"arn:aws:kms:{REGION}:123456789012:key/{uuid.UUID(int=1)}"


@pytest.mark.parametrize("code", ["InvalidCiphertextException", "IncorrectKeyException"])
def test_kms_authentication_failures_are_integrity_errors(code: str) -> None:
    provider = AwsKmsKeyProvider(FailingKms(client_error(code, "secret-ish detail")), ARN)
    with pytest.raises(IntegrityError) as caught:
        provider.unwrap(WrappedKey(ARN, b"blob"), CONTEXT)
    assert "secret-ish" not in str(caught.value)
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDeniedException", "User: arn:... is not authorized"),
        client_error("KMSInvalidStateException"),
        client_error("ThrottlingException"),
        EndpointConnectionError(endpoint_url="https://kms.us-east-1.amazonaws.com"),
    ],
)
def test_kms_service_failures_are_key_provider_errors(error: Exception) -> None:
    provider = AwsKmsKeyProvider(FailingKms(error), ARN)
    dek = os.urandom(32)
    with pytest.raises(KeyProviderError) as caught:
        provider.unwrap(WrappedKey(ARN, b"blob"), CONTEXT)
    assert "failed" in str(caught.value)
    with pytest.raises(KeyProviderError) as caught:
        provider.wrap(dek, CONTEXT)
    assert dek.hex() not in str(caught.value) and repr(dek) not in str(caught.value)
