"""In Debian's Chromium, the supervisor's path through the evidence pages: sign in with
TOTP, search, open an item, state a purpose, play, seek to the middle, and find the
viewing in the item's custody timeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from dock.simulate import simulate_volume
from tests.browser.support import browser_world, sign_in
from tests.browser.test_stream_browser import _AWAIT_DATA, _SEEK_TO
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import seal, tus_headers
from tests.fast_hashing import fast_password_hashing  # noqa: F401

pytestmark = pytest.mark.browser


def test_a_supervisor_finds_states_a_purpose_plays_seeks_and_sees_the_viewing_logged(
    tmp_path: Path,
    live_server: Callable[[Flask], str],
    page,  # type: ignore[no-untyped-def]
) -> None:
    bw = browser_world(tmp_path)
    docks, world = bw.docks, bw.world
    volume = simulate_volume(tmp_path / "cam", clips=1, seconds=12.0, width=320, height=180)
    clip = volume.clips[0].path.read_bytes()
    app = create_app(bw.settings)
    api = app.test_client()
    sealed = seal(docks, clip, segment_size=64 * 1024, name=b"HALLWAY1.MP4")
    location = _upload(api, docks.north_credential, sealed, chunk=256 * 1024)
    evidence_id = api.get(
        location + "/receipt", headers=tus_headers(docks.north_credential)
    ).get_json()["evidence_id"]
    base = live_server(app)

    sign_in(page, base, world.people["supervisor"])

    page.get_by_role("link", name="Evidence", exact=True).click()
    page.get_by_label("Search tags, notes, incident titles and file names").fill("hallway")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="HALLWAY1.MP4").click()
    page.wait_for_url(f"**/evidence/{evidence_id}")
    assert page.locator("video").count() == 0  # no playback before a purpose
    page.get_by_label("Purpose").select_option("incident_review")
    page.get_by_label("Details (optional)").fill("IR-2026-17")
    page.get_by_role("button", name="Continue to playback").click()

    duration = page.evaluate(_AWAIT_DATA)
    assert 11 < duration < 13
    assert page.evaluate("document.querySelector('video').readyState") >= 2
    position = page.evaluate(_SEEK_TO, duration / 2)
    assert position >= duration / 2 - 0.5
    watermark = page.locator(".watermark")
    assert watermark.is_visible() and "supervisor" in watermark.inner_text()

    page.reload()
    timeline = page.locator("#custody")
    streamed = timeline.locator("tr", has_text="evidence.streamed")
    assert streamed.count() == 1
    assert "Reviewing an incident (IR-2026-17)" in streamed.inner_text()
