"""In Debian's Chromium, which plays no HEVC: an HEVC original docked through the tus API
gets a playback proxy from the job worker, the item page plays and seeks the proxy, and
the original's hash and stored bytes are unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from app import create_app, jobs
from app.fixity import check_fixity
from evidence.adapters.sql.items import Derivative, EvidenceItem
from tests.browser.support import browser_world, sign_in
from tests.browser.test_stream_browser import _AWAIT_DATA, _SEEK_TO
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import seal, tus_headers
from tests.fast_hashing import fast_password_hashing  # noqa: F401
from tests.media_factory import make_clip

pytestmark = pytest.mark.browser

_PLAYS = """async () => {
  const v = document.querySelector('video');
  const advanced = new Promise((ok, fail) => {
    const start = v.currentTime;
    v.addEventListener('timeupdate', () => { if (v.currentTime > start + 0.3) ok(v.currentTime); });
    v.addEventListener('error', () => fail(new Error('media ' + v.error.code)), {once: true});
    setTimeout(() => fail(new Error('did not play on within 15 s')), 15000);
  });
  v.muted = true;
  await v.play();
  const at = await advanced;
  v.pause();
  return at;
}"""


def test_an_hevc_original_plays_in_chromium_through_its_proxy(
    tmp_path: Path,
    live_server: Callable[[Flask], str],
    page,  # type: ignore[no-untyped-def]
) -> None:
    bw = browser_world(tmp_path)
    docks, world = bw.docks, bw.world
    clip = make_clip(codec="libx265", seconds=6.0, fps=15, width=320, height=180)
    app = create_app(bw.settings)
    api = app.test_client()
    sealed = seal(docks, clip, segment_size=64 * 1024, name=b"GYM0001.MP4")
    location = _upload(api, docks.north_credential, sealed, chunk=256 * 1024)
    evidence_id = api.get(
        location + "/receipt", headers=tus_headers(docks.north_credential)
    ).get_json()["evidence_id"]
    database, vault = app.extensions["bwc.db"], app.extensions["bwc.vault"]
    with database.sessions() as session:
        item = session.get(EvidenceItem, evidence_id)
        assert item is not None
        stored = b"".join(vault.store.iter_bytes(item.object_key))
    assert jobs.work_once(jobs.JobContext(bw.settings, database, vault)) == 1
    with database.sessions() as session:
        proxy = session.query(Derivative).filter_by(evidence_id=evidence_id).one()
    base = live_server(app)

    sign_in(page, base, world.people["supervisor"])
    page.goto(f"{base}/evidence/{evidence_id}")
    page.get_by_label("Purpose").select_option("incident_review")
    page.get_by_role("button", name="Continue to playback").click()
    assert "rendition=proxy" in (page.locator("video").get_attribute("src") or "")
    duration = page.evaluate(_AWAIT_DATA)
    assert 5.5 < duration < 6.5
    assert page.evaluate("document.querySelector('video').readyState") >= 2
    assert page.evaluate("document.querySelector('video').videoWidth") == 320
    position = page.evaluate(_SEEK_TO, duration / 2)
    assert position >= duration / 2 - 0.5
    assert page.evaluate(_PLAYS) > position
    note = page.locator("#proxy-note")
    assert "HEVC" in note.inner_text() and proxy.sha256 in note.inner_text()

    # The original is untouched: same hash as the camera's file, same stored bytes,
    # and a fixity check still passes.
    with database.sessions() as session:
        item = session.get(EvidenceItem, evidence_id)
        assert item is not None and item.sha256 == hashlib.sha256(clip).hexdigest()
        assert b"".join(vault.store.iter_bytes(item.object_key)) == stored
    result = check_fixity(database, vault, evidence_id, actor="cli", now=datetime.now(UTC))
    assert result.ok and result.sha256 == item.sha256
