"""A gunicorn worker settles once its app is built: its vault's store and keys are
opened, start-up objects are frozen out of the garbage collector's full passes, and the
GIL switch interval is shortened."""

from __future__ import annotations

import gc
import sys
from types import SimpleNamespace

import pytest

from app.server import SWITCH_INTERVAL_SECONDS, settle_worker
from evidence.errors import StorageError


def test_a_settled_worker_has_its_start_up_objects_frozen() -> None:
    interval = sys.getswitchinterval()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        settle_worker()
        assert gc.get_freeze_count() > 1000  # every object alive now, the modules' among them
        assert sys.getswitchinterval() == SWITCH_INTERVAL_SECONDS
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)


class _Vault:
    """Counts what is opened; `fails` makes opening the store fail as S3 can."""

    def __init__(self, fails: bool = False) -> None:
        self.opened: list[str] = []
        self._fails = fails

    @property
    def store(self) -> object:
        if self._fails:
            raise StorageError("cannot reach the bucket")
        self.opened.append("store")
        return object()

    @property
    def keys(self) -> object:
        self.opened.append("keys")
        return object()


def test_a_settled_worker_has_opened_its_vault_before_any_request() -> None:
    vault = _Vault()
    interval = sys.getswitchinterval()
    try:
        settle_worker(SimpleNamespace(extensions={"bwc.vault": vault}))
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
    assert vault.opened == ["store", "keys"]


def test_a_vault_that_cannot_open_yet_is_logged_and_the_worker_still_settles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interval = sys.getswitchinterval()
    gc.unfreeze()
    try:
        settle_worker(SimpleNamespace(extensions={"bwc.vault": _Vault(fails=True)}))
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
    assert "cannot reach the bucket" in caplog.text
