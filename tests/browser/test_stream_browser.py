"""In Debian's Chromium: a camera's H.264 clip, decrypted on the fly through the ranged
stream endpoint, plays and seeks without downloading the whole file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from dock.simulate import simulate_volume
from tests.browser.support import browser_world, sign_in
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import seal, tus_headers
from tests.fast_hashing import fast_password_hashing  # noqa: F401

pytestmark = pytest.mark.browser


_AWAIT_DATA = """async () => {
  const v = document.querySelector('video');
  if (v.readyState < 2) {
    await new Promise((ok, fail) => {
      v.addEventListener('loadeddata', ok, {once: true});
      v.addEventListener('error', () => fail(new Error('media ' + v.error.code)), {once: true});
      setTimeout(() => fail(new Error('no data after 15 s')), 15000);
    });
  }
  return v.duration;
}"""

_SEEK_TO = """async (target) => {
  const v = document.querySelector('video');
  const seeked = new Promise((ok, fail) => {
    v.addEventListener('seeked', ok, {once: true});
    v.addEventListener('error', () => fail(new Error('media ' + v.error.code)), {once: true});
    setTimeout(() => fail(new Error('no seek after 15 s')), 15000);
  });
  v.currentTime = target;
  await seeked;
  return v.currentTime;
}"""


def test_a_clip_plays_and_seeks_in_chromium_through_ranged_decrypting_reads(
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
    location = _upload(
        api, docks.north_credential, seal(docks, clip, segment_size=64 * 1024), chunk=256 * 1024
    )
    evidence_id = api.get(
        location + "/receipt", headers=tus_headers(docks.north_credential)
    ).get_json()["evidence_id"]
    base = live_server(app)

    ranges: list[str] = []
    page.on(
        "request",
        lambda r: ranges.append(r.headers.get("range", "")) if "/stream" in r.url else None,
    )
    sign_in(page, base, world.people["supervisor"])

    page.goto(f"{base}/evidence/{evidence_id}/stream?purpose=incident_review")
    video = page.locator("video")
    # page.evaluate runs outside the page's CSP (which forbids eval, so no wait_for_function):
    # each step awaits the media event itself, with a timeout that fails the test.
    duration = page.evaluate(_AWAIT_DATA)
    assert 11 < duration < 13
    position = page.evaluate(_SEEK_TO, duration / 2)
    assert position >= duration / 2 - 0.5
    assert video.count() == 1
    assert any(r.startswith("bytes=") for r in ranges), ranges  # the player asked for ranges
