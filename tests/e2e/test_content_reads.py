"""Decrypting ranged reads of evidence (RFC 9110 ranges), authorised and recorded."""

from __future__ import annotations

import json
import os

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.db import Database
from audit.adapters.ledger_tables import LedgerLeaf
from tests.e2e.conftest import World, sign_in
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import Docks, equip, seal, tus_headers

SEGMENT = 4096
PLAIN = os.urandom(5 * SEGMENT + 123)


@pytest.fixture
def stored(world: World) -> tuple[Flask, str, Docks]:
    docks = equip(world.settings)
    app = create_app(world.settings)
    api = app.test_client()
    location = _upload(api, docks.north_credential, seal(docks, PLAIN, segment_size=SEGMENT))
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential))
    yield app, receipt.get_json()["evidence_id"], docks
    app.extensions["bwc.db"].dispose()


def _client(app: Flask, world: World, who: str) -> FlaskClient:
    client = app.test_client()
    sign_in(client, world.people[who])
    return client


def _url(evidence_id: str, purpose: str = "incident_review") -> str:
    return f"/evidence/{evidence_id}/stream?purpose={purpose}"


def _events(world: World, evidence_id: str) -> list[str]:
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            leaves = session.scalars(
                select(LedgerLeaf.leaf)
                .where(LedgerLeaf.evidence_id == evidence_id)
                .order_by(LedgerLeaf.idx)
            )
            return [json.loads(leaf)["type"] for leaf in leaves]
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),  # first byte
        (f"bytes={len(PLAIN) - 1}-{len(PLAIN) - 1}", len(PLAIN) - 1, len(PLAIN)),  # last byte
        ("bytes=-100", len(PLAIN) - 100, len(PLAIN)),  # suffix
        (f"bytes=-{len(PLAIN) * 2}", 0, len(PLAIN)),  # suffix longer than the item
        ("bytes=4000-8300", 4000, 8301),  # across a segment boundary
        ("bytes=10000-", 10000, len(PLAIN)),  # open-ended
        (f"bytes=100-{len(PLAIN) * 3}", 100, len(PLAIN)),  # last-byte-pos past the end
    ],
)
def test_a_single_range_is_answered_with_206_and_exactly_those_bytes(
    stored: tuple[Flask, str, Docks], world: World, header: str, start: int, end: int
) -> None:
    app, evidence_id, _ = stored
    client = _client(app, world, "supervisor")
    answer = client.get(_url(evidence_id), headers={"Range": header})
    assert answer.status_code == 206
    assert answer.data == PLAIN[start:end]
    assert answer.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(PLAIN)}"
    assert answer.headers["Content-Length"] == str(end - start)
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["Content-Type"] == "video/mp4"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_no_range_gives_the_whole_item_with_200(
    stored: tuple[Flask, str, Docks], world: World
) -> None:
    app, evidence_id, _ = stored
    answer = _client(app, world, "supervisor").get(_url(evidence_id))
    assert answer.status_code == 200
    assert answer.data == PLAIN
    assert answer.headers["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize(
    "header", [f"bytes={len(PLAIN)}-", f"bytes={len(PLAIN) + 10}-{len(PLAIN) + 20}", "bytes=-0"]
)
def test_an_unsatisfiable_range_is_416_with_the_size(
    stored: tuple[Flask, str, Docks], world: World, header: str
) -> None:
    app, evidence_id, _ = stored
    answer = _client(app, world, "supervisor").get(_url(evidence_id), headers={"Range": header})
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{len(PLAIN)}"


@pytest.mark.parametrize("header", ["bytes=5-1", "bytes=abc", "items=0-5", "bytes=", "bytes=--1"])
def test_an_invalid_range_is_ignored(
    stored: tuple[Flask, str, Docks], world: World, header: str
) -> None:
    app, evidence_id, _ = stored
    answer = _client(app, world, "supervisor").get(_url(evidence_id), headers={"Range": header})
    assert answer.status_code == 200
    assert answer.data == PLAIN


def test_several_ranges_get_the_whole_item(stored: tuple[Flask, str, Docks], world: World) -> None:
    app, evidence_id, _ = stored
    answer = _client(app, world, "supervisor").get(
        _url(evidence_id), headers={"Range": "bytes=0-10,20-30"}
    )
    assert answer.status_code == 200
    assert answer.data == PLAIN


def test_conditional_requests(stored: tuple[Flask, str, Docks], world: World) -> None:
    app, evidence_id, _ = stored
    client = _client(app, world, "supervisor")
    etag = client.get(_url(evidence_id), headers={"Range": "bytes=0-0"}).headers["ETag"]
    assert client.get(_url(evidence_id), headers={"If-None-Match": etag}).status_code == 304
    assert client.get(_url(evidence_id), headers={"If-Match": '"other"'}).status_code == 412
    fresh = client.get(_url(evidence_id), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.data == PLAIN[:10]
    stale = client.get(_url(evidence_id), headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.data == PLAIN


def test_a_purpose_is_required_and_the_view_is_recorded_once_per_session(
    stored: tuple[Flask, str, Docks], world: World
) -> None:
    app, evidence_id, _ = stored
    client = _client(app, world, "supervisor")
    missing = client.get(f"/evidence/{evidence_id}/stream")
    assert missing.status_code == 400
    assert "purpose" in missing.get_data(as_text=True)
    assert client.get(f"/evidence/{evidence_id}/stream?purpose=curiosity").status_code == 400
    before = _events(world, evidence_id)
    for header in ("bytes=0-99", "bytes=100-199", "bytes=5000-"):
        assert client.get(_url(evidence_id), headers={"Range": header}).status_code == 206
    after = _events(world, evidence_id)
    assert after == before + ["evidence.streamed"]


def test_downloads_need_the_download_permission_and_are_recorded(
    stored: tuple[Flask, str, Docks], world: World
) -> None:
    app, evidence_id, _ = stored
    supervisor = _client(app, world, "supervisor")
    url = f"/api/v1/evidence/{evidence_id}/content?download=1&purpose=disclosure"
    assert supervisor.get(url).status_code == 403
    records = _client(app, world, "records")
    answer = records.get(url)
    assert answer.status_code == 200 and answer.data == PLAIN
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert "BWC00001.MP4" in answer.headers["Content-Disposition"]
    assert _events(world, evidence_id)[-1] == "evidence.downloaded"


@pytest.mark.parametrize("who", ["south-teacher", "south-supervisor", "admin", "oversight"])
def test_people_outside_the_items_scope_get_404(
    stored: tuple[Flask, str, Docks], world: World, who: str
) -> None:
    app, evidence_id, _ = stored
    client = _client(app, world, who)
    assert client.get(_url(evidence_id)).status_code == 404
    assert client.get(f"/api/v1/evidence/{evidence_id}/content?purpose=audit").status_code == 404


def test_the_wearer_sees_their_own_recording(
    stored: tuple[Flask, str, Docks], world: World
) -> None:
    app, evidence_id, _ = stored
    answer = _client(app, world, "wearer").get(_url(evidence_id, "wearer_review"))
    assert answer.status_code == 200 and answer.data == PLAIN


def test_reads_need_a_sign_in(stored: tuple[Flask, str, Docks]) -> None:
    app, evidence_id, _ = stored
    assert (
        app.test_client().get(f"/api/v1/evidence/{evidence_id}/content?purpose=audit").status_code
        == 401
    )
    assert app.test_client().get(_url(evidence_id)).status_code == 302
