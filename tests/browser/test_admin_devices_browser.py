"""In Debian's Chromium: an administrator adds a dock and gets its one-time enrolment
token, and registers a camera to a wearer, through the forms alone."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from tests.browser.support import browser_world, sign_in
from tests.fast_hashing import fast_password_hashing  # noqa: F401

pytestmark = pytest.mark.browser


def test_an_admin_adds_a_dock_and_registers_a_camera_in_chromium(
    tmp_path: Path,
    live_server: Callable[[Flask], str],
    page,  # type: ignore[no-untyped-def]
) -> None:
    bw = browser_world(tmp_path)
    base = live_server(create_app(bw.settings, start_worker=False))
    sign_in(page, base, bw.world.people["admin"])

    page.get_by_role("link", name="Docks", exact=True).click()
    page.locator("#school").select_option(label="South")
    page.get_by_label("Dock name").fill("south library")
    page.get_by_role("button", name="Add dock").click()
    token = page.locator("#enrolment-token code").inner_text()
    assert re.search(r"bwc-dock enroll --service http://127\.0\.0\.1:\d+ --token \S{20,}", token)
    row = page.locator("#docks tr", has_text="south library")
    assert "awaiting enrolment" in row.inner_text()

    page.get_by_role("link", name="Cameras", exact=True).click()
    page.locator("#school").select_option(label="North")
    page.get_by_label("Serial number").fill("BWC-8800")
    page.locator("#wearer").select_option("WEARER")
    page.get_by_role("button", name="Register camera").click()
    row = page.locator("#cameras tr", has_text="BWC-8800")
    assert row.count() == 1
    assert (
        row.locator("select").evaluate("s => s.options[s.selectedIndex].text").startswith("wearer")
    )
