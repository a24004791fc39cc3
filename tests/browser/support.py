"""What the browser tests share: a migrated SQLite world with docks, and signing in with
password and TOTP through the real forms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyotp

from app.db import upgrade
from app.settings import Settings
from tests.e2e.conftest import PASSWORD, Person, World, seed
from tests.e2e.vault_support import Docks, equip


@dataclass
class BrowserWorld:
    settings: Settings
    world: World
    docks: Docks


def browser_world(tmp_path: Path) -> BrowserWorld:
    url = f"sqlite:///{tmp_path}/bwc.sqlite3"
    settings = Settings(
        data_dir=tmp_path, database_url=url, secret_key="k" * 48, checkpoint_seconds=0
    )
    upgrade(url)
    world = seed(settings)
    return BrowserWorld(settings, world, equip(settings))


def sign_in(page, base: str, person: Person) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/login/code")
    page.get_by_label("Code").fill(pyotp.TOTP(person.secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home")
