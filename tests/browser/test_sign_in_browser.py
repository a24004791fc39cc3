"""In Debian's Chromium: sign in with password and TOTP, land on the role's home, sign out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest
from flask import Flask

from app import create_app
from app.db import upgrade
from app.settings import Settings
from tests.e2e.conftest import PASSWORD, World, seed
from tests.fast_hashing import fast_password_hashing  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path: Path, live_server: Callable[[Flask], str]) -> tuple[str, World]:
    url = f"sqlite:///{tmp_path}/bwc.sqlite3"
    settings = Settings(
        data_dir=tmp_path, database_url=url, secret_key="k" * 48, checkpoint_seconds=0
    )
    upgrade(url)
    world = seed(settings)
    return live_server(create_app(settings)), world


def test_supervisor_signs_in_with_totp_and_out_again(served, page) -> None:  # type: ignore[no-untyped-def]
    base, world = served
    person = world.people["supervisor"]
    page.goto(base + "/")
    assert page.url.endswith("/login")
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/login/code")
    page.get_by_label("Code").fill(pyotp.TOTP(person.secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home")
    assert page.locator("#home-supervisor h2").inner_text() == "Supervision"
    assert page.get_by_role("link", name="Users").count() == 0
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert "You have signed out" in page.content()
    page.goto(base + "/home")
    assert page.url.endswith("/login?next=/home")


def test_first_sign_in_enrols_totp_from_the_server_rendered_qr_page(served, page) -> None:  # type: ignore[no-untyped-def]
    base, _ = served
    page.goto(base + "/login")
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/login/enrol")
    assert page.locator("figure.qr svg").is_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and continue").click()
    page.wait_for_url("**/account/recovery-codes")
    assert page.locator("ol.codes li").count() == 10
    page.get_by_role("button", name="I have stored them").click()
    page.wait_for_url("**/home")
    assert page.locator("#home-supervisor").is_visible()


def test_pages_load_no_blocked_resources_under_the_csp(served, page) -> None:  # type: ignore[no-untyped-def]
    base, _ = served
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("requestfailed", lambda req: problems.append(f"failed: {req.url}"))
    page.goto(base + "/login")
    page.wait_for_load_state("networkidle")
    # The vendored stylesheet applied (Pico sets the body font), and keyboard focus shows.
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "system-ui" in font or "sans-serif" in font
    # Keyboard use: the username field has focus, Tab moves on with a visible outline,
    # and the skip link appears on screen when focused.
    assert page.evaluate("document.activeElement.id") == "username"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.focus("a.skip-link")
    box = page.locator("a.skip-link").bounding_box()
    assert box is not None and box["x"] >= 0
    assert problems == []
