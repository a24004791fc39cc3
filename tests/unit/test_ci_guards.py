"""The test harness itself: a missing service fails in CI instead of skipping."""

from __future__ import annotations

import pytest

from tests.conftest import need_service


def test_missing_service_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        need_service("PostgreSQL", "connection refused")


def test_missing_service_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        need_service("PostgreSQL", "connection refused")
