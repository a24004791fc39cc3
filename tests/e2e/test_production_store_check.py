"""In production the service proves at start-up that S3 enforces Object Lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from app import create_app
from app.db import upgrade
from app.settings import ConfigError, Settings
from app.vault import Vault
from evidence.adapters.s3_store import S3ObjectStore
from tests.conftest import AWS_REGION


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name=AWS_REGION)


def _production(url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=url,
        storage_url="s3://evidence",
        production=True,
        allow_local_keyring=True,
        redis_url="redis://127.0.0.1:6379/15",
        secret_key="s" * 40,
        checkpoint_seconds=0,
    )


@pytest.mark.postgres
def test_production_refuses_a_bucket_without_object_lock(
    fresh_pg_url: str, tmp_path: Path, s3: Any
) -> None:
    upgrade(fresh_pg_url)
    s3.create_bucket(Bucket="unlocked")
    vault = Vault(_production(fresh_pg_url, tmp_path), store=S3ObjectStore(s3, "unlocked"))
    with pytest.raises(ConfigError, match="Object Lock"):
        create_app(_production(fresh_pg_url, tmp_path), vault=vault)


@pytest.mark.postgres
def test_production_starts_on_a_locked_bucket(fresh_pg_url: str, tmp_path: Path, s3: Any) -> None:
    upgrade(fresh_pg_url)
    s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    settings = _production(fresh_pg_url, tmp_path)
    app = create_app(settings, vault=Vault(settings, store=S3ObjectStore(s3, "locked")))
    probes = s3.list_objects_v2(Bucket="locked", Prefix="_selfcheck/").get("KeyCount", 0)
    assert probes == 1  # the locked probe it wrote and could not delete
    app.extensions["bwc.db"].dispose()
