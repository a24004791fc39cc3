"""Settings from the environment, and refusals of embedded-only choices in production."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from app import cli
from app.settings import ENV_VARS, ConfigError, Settings, read_secret_file, write_secret_file

PRODUCTION_OK = {
    "BWC_PRODUCTION": "1",
    "BWC_DATABASE_URL": "postgresql+psycopg://bwc@db.internal/bwc",
    "BWC_STORAGE_URL": "s3://evidence-bucket",
    "BWC_KEY_PROVIDER": "aws-kms:arn:aws:kms:eu-west-2:111122223333:key/abcd",
    "BWC_REDIS_URL": "redis://cache.internal:6379/0",
    "BWC_SECRET_KEY": "x" * 48,
}


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"BWC_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/bwc.sqlite3"
    assert settings.storage_url == f"file://{tmp_path.resolve()}/objects"
    assert settings.key_provider == "local"
    assert settings.redis_url == ""
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)
    assert settings.session_idle_minutes == 30
    assert not settings.production


def test_host_and_port_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"BWC_DATA_DIR": str(tmp_path), "HOST": "0.0.0.0", "PORT": "8080"})
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "eighty"), ("BWC_PRODUCTION", "maybe"), ("BWC_LOCKOUT_THRESHOLD", "0")],
)
def test_malformed_values_are_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"BWC_DATA_DIR": str(tmp_path), name: value})


def test_production_with_real_services_is_accepted(tmp_path: Path) -> None:
    settings = Settings.from_env({**PRODUCTION_OK, "BWC_DATA_DIR": str(tmp_path)})
    assert settings.production
    assert settings.production_problems() == []


@pytest.mark.parametrize(
    ("change", "names_setting"),
    [
        ({"BWC_DATABASE_URL": "sqlite:////srv/bwc.db"}, "BWC_DATABASE_URL"),
        ({"BWC_DEBUG": "1"}, "BWC_DEBUG"),
        ({"BWC_KEY_PROVIDER": "local"}, "BWC_ALLOW_LOCAL_KEYRING"),
        ({"BWC_STORAGE_URL": "file:///srv/objects"}, "BWC_ALLOW_LOCAL_STORAGE"),
        ({"BWC_REDIS_URL": ""}, "BWC_REDIS_URL"),
        ({"BWC_SECRET_KEY": ""}, "BWC_SECRET_KEY"),
        ({"BWC_SECRET_KEY": "short"}, "BWC_SECRET_KEY"),
    ],
)
def test_production_refuses_embedded_only_choices_and_names_the_setting(
    tmp_path: Path, change: dict[str, str], names_setting: str
) -> None:
    env = {**PRODUCTION_OK, "BWC_DATA_DIR": str(tmp_path), **change}
    with pytest.raises(ConfigError, match="refusing to run in production") as error:
        Settings.from_env(env)
    assert names_setting in str(error.value)


def test_local_keyring_is_allowed_in_production_with_explicit_opt_in(tmp_path: Path) -> None:
    env = {
        **PRODUCTION_OK,
        "BWC_DATA_DIR": str(tmp_path),
        "BWC_KEY_PROVIDER": "local",
        "BWC_ALLOW_LOCAL_KEYRING": "1",
    }
    assert Settings.from_env(env).uses_local_keyring


def test_unknown_key_provider_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BWC_KEY_PROVIDER"):
        Settings.from_env({"BWC_DATA_DIR": str(tmp_path), "BWC_KEY_PROVIDER": "vault"})


def test_generated_secret_is_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    assert write_secret_file(tmp_path) is True
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = read_secret_file(tmp_path)
    assert first and len(first) >= 48
    assert write_secret_file(tmp_path) is False
    assert read_secret_file(tmp_path) == first
    assert Settings.from_env({"BWC_DATA_DIR": str(tmp_path)}).secret_key == first


def test_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    write_secret_file(tmp_path)
    os.chmod(tmp_path / "secret_key", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Settings.from_env({"BWC_DATA_DIR": str(tmp_path)})


def test_secret_key_never_appears_in_repr() -> None:
    settings = Settings(secret_key="do-not-print-me-" * 3)
    assert "do-not-print-me" not in repr(settings)


def test_every_environment_variable_read_is_documented_in_the_readme(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = Path(__file__).parents[2]
    read = set(re.findall(r'env\.get\("([A-Z_]+)"', (root / "app" / "settings.py").read_text()))
    assert read <= {var.name for var in ENV_VARS}
    monkeypatch.setenv("BWC_DATA_DIR", str(tmp_path))
    assert cli.main(["config"]) == 0
    table = capsys.readouterr().out
    readme = (root / "README.md").read_text()
    assert table.strip() in readme, "README's configuration table differs from `bwc config`"
