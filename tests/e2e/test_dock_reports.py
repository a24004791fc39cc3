"""What docks report beside footage: sessions, activation logs, wipes, heartbeats."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.db import Database
from audit.adapters.ledger_tables import LedgerLeaf
from evidence.adapters.sql.docking import ActivationEvent, Alert, DockSession
from evidence.adapters.sql.org import Dock
from tests.e2e.conftest import World
from tests.e2e.test_ingest import _upload
from tests.e2e.vault_support import NORTH_CAMERA, SOUTH_CAMERA, Docks, equip, seal, tus_headers


@pytest.fixture
def docks(world: World) -> Docks:
    return equip(world.settings)


@pytest.fixture
def app(world: World, docks: Docks) -> Iterator[Flask]:
    flask_app = create_app(world.settings)
    yield flask_app
    flask_app.extensions["bwc.db"].dispose()


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


def _auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _rows(world: World, model: type) -> list:
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            return list(session.scalars(select(model)))
    finally:
        database.dispose()


def _leaf_types(world: World) -> list[str]:
    return [json.loads(row.leaf)["type"] for row in _rows(world, LedgerLeaf)]


def _report(session_id: str = "sess-0001", **extra: object) -> dict[str, object]:
    return {
        "schema": "bwc-session-report/1",
        "session_id": session_id,
        "started_at": "2026-11-30T15:00:00Z",
        "device": {"vid": "0xb0d1", "pid": "0xca01", "serial": NORTH_CAMERA},
        "decision": "accept",
        "alerts": [],
        "clock_offset_ms": 1500,
        "entries": [],
        **extra,
    }


def test_the_dock_lists_only_its_schools_cameras(api: FlaskClient, docks: Docks) -> None:
    north = api.get("/api/v1/docks/cameras", headers=_auth(docks.north_credential)).get_json()
    assert [c["serial"] for c in north["cameras"]] == [NORTH_CAMERA]
    assert north["cameras"][0]["wearer_badge"] == "WEARER"
    south = api.get("/api/v1/docks/cameras", headers=_auth(docks.south_credential)).get_json()
    assert [c["serial"] for c in south["cameras"]] == [SOUTH_CAMERA]
    assert api.get("/api/v1/docks/cameras").status_code == 401


def test_session_reports_are_stored_once_with_alerts_and_the_clock_offset_in_the_ledger(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    body = _report(
        alerts=["possible_tamper"], decision="accept_no_delete", clock_offset_ms=-400_000
    )
    for _ in range(2):  # a retried report is not stored twice
        answer = api.post(
            "/api/v1/docks/sessions", json=body, headers=_auth(docks.north_credential)
        )
        assert answer.status_code == 201
    (stored,) = _rows(world, DockSession)
    assert stored.decision == "accept_no_delete" and stored.clock_offset_ms == -400_000
    assert sorted(a.kind for a in _rows(world, Alert)) == ["clock_skew", "possible_tamper"]
    types = _leaf_types(world)
    assert types.count("dock.session_recorded") == 1
    assert types.count("camera.clock_offset_measured") == 1


def test_a_refused_device_is_a_ledger_event_and_an_alert(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    body = _report(
        "sess-refused",
        decision="refuse",
        alerts=["device_refused"],
        device={"vid": "0x0781", "pid": "0x5581", "serial": "USB-STICK"},
        refusal_reasons=["usb_id_not_allowlisted"],
        clock_offset_ms=None,
    )
    assert (
        api.post(
            "/api/v1/docks/sessions", json=body, headers=_auth(docks.north_credential)
        ).status_code
        == 201
    )
    assert "dock.device_refused" in _leaf_types(world)
    assert [a.kind for a in _rows(world, Alert)] == ["device_refused"]


@pytest.mark.parametrize(
    "change",
    [
        {"decision": "maybe"},
        {"session_id": "../../x"},
        {"alerts": ["<script>"]},
        {"clock_offset_ms": "soon"},
        {"entries": "many"},
        {"started_at": "yesterday"},
    ],
)
def test_malformed_session_reports_get_a_clear_400(
    api: FlaskClient, docks: Docks, world: World, change: dict[str, object]
) -> None:
    answer = api.post(
        "/api/v1/docks/sessions", json=_report(**change), headers=_auth(docks.north_credential)
    )
    assert answer.status_code == 400 and answer.get_json()["error"]["reason"] == "bad_report"
    assert _rows(world, DockSession) == []


def _events() -> list[dict[str, object]]:
    return [
        {"seq": 1, "t": "2026-11-30T08:00:00Z", "event": "POWER_ON"},
        {
            "seq": 2,
            "t": "2026-11-30T08:01:00Z",
            "event": "RECORD_START",
            "file": "BWC00001.MP4",
            "trigger": "discretionary",
            "reason": "pupil asked",
        },
        {
            "seq": 3,
            "t": "2026-11-30T08:02:00Z",
            "event": "RECORD_STOP",
            "file": "BWC00001.MP4",
            "reason": "incident_ended",
        },
    ]


def test_activation_events_are_idempotent_corrected_and_linked(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    location = _upload(api, docks.north_credential, seal(docks, os.urandom(5000)))
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential))
    evidence_id = receipt.get_json()["evidence_id"]
    body = {
        "camera_serial": NORTH_CAMERA,
        "session_id": "sess-0001",
        "clock_offset_ms": 60_000,
        "events": _events(),
        "evidence": {"BWC00001.MP4": evidence_id},
    }
    first = api.post("/api/v1/docks/activations", json=body, headers=_auth(docks.north_credential))
    assert first.status_code == 201 and first.get_json()["added"] == 3
    # Posted again with a forged line re-using seq 2: nothing earlier is rewritten.
    forged = dict(
        body,
        events=[
            *_events(),
            {
                "seq": 2,
                "t": "2026-11-30T08:01:00Z",
                "event": "RECORD_START",
                "file": "BWC00001.MP4",
                "trigger": "manual",
            },
        ],
    )
    again = api.post(
        "/api/v1/docks/activations", json=forged, headers=_auth(docks.north_credential)
    )
    assert again.get_json()["added"] == 0
    rows = sorted(_rows(world, ActivationEvent), key=lambda r: r.seq)
    assert [r.event for r in rows] == ["POWER_ON", "RECORD_START", "RECORD_STOP"]
    start = rows[1]
    assert start.trigger == "discretionary" and start.reason == "pupil asked"
    assert start.evidence_id == evidence_id and start.wearer_id is not None
    assert start.corrected_time is not None and start.corrected_time.minute == 0  # 08:01 - 60 s
    assert _leaf_types(world).count("camera.activations_received") == 2


def test_activations_of_another_schools_camera_or_malformed_are_refused(
    api: FlaskClient, docks: Docks
) -> None:
    body = {"camera_serial": SOUTH_CAMERA, "session_id": "sess-0001", "events": _events()}
    assert (
        api.post(
            "/api/v1/docks/activations", json=body, headers=_auth(docks.north_credential)
        ).status_code
        == 403
    )
    bad = {
        "camera_serial": NORTH_CAMERA,
        "session_id": "sess-0001",
        "events": [{"seq": "x", "event": "RECORD_START"}],
    }
    assert (
        api.post(
            "/api/v1/docks/activations", json=bad, headers=_auth(docks.north_credential)
        ).status_code
        == 400
    )
    unknown = dict(bad, events=[{"seq": 1, "t": "2026-11-30T08:00:00Z", "event": "EXPLODE"}])
    assert (
        api.post(
            "/api/v1/docks/activations", json=unknown, headers=_auth(docks.north_credential)
        ).status_code
        == 400
    )


def test_a_wipe_is_a_custody_event_in_the_items_chain_once(
    api: FlaskClient, docks: Docks, world: World
) -> None:
    location = _upload(api, docks.north_credential, seal(docks, os.urandom(5000)))
    receipt = api.get(location + "/receipt", headers=tus_headers(docks.north_credential)).get_json()
    body = {
        "evidence_id": receipt["evidence_id"],
        "sha256": receipt["sha256"],
        "session_id": "sess-0001",
    }
    for _ in range(2):
        assert (
            api.post(
                "/api/v1/docks/wipes", json=body, headers=_auth(docks.north_credential)
            ).status_code
            == 204
        )
    chain = [
        json.loads(r.leaf)
        for r in _rows(world, LedgerLeaf)
        if r.evidence_id == receipt["evidence_id"]
    ]
    assert [e["type"] for e in chain] == [
        "evidence.received",
        "evidence.verified",
        "evidence.camera_wiped",
    ]
    wrong = dict(body, sha256="0" * 64)
    assert (
        api.post(
            "/api/v1/docks/wipes", json=wrong, headers=_auth(docks.north_credential)
        ).status_code
        == 409
    )
    assert (
        api.post(
            "/api/v1/docks/wipes", json=body, headers=_auth(docks.south_credential)
        ).status_code
        == 404
    )


def test_heartbeats_keep_the_docks_state(api: FlaskClient, docks: Docks, world: World) -> None:
    state = {
        "bays": [{"serial": NORTH_CAMERA, "state": "uploading"}],
        "spool_bytes": 123,
        "queue": 2,
        "last_error": None,
    }
    assert (
        api.post(
            "/api/v1/docks/heartbeat", json=state, headers=_auth(docks.north_credential)
        ).status_code
        == 204
    )
    dock = next(d for d in _rows(world, Dock) if d.name == "north-dock")
    assert dock.last_heartbeat_at is not None and json.loads(dock.last_status) == state
    huge = {"junk": "x" * 20000}
    assert (
        api.post(
            "/api/v1/docks/heartbeat", json=huge, headers=_auth(docks.north_credential)
        ).status_code
        == 400
    )
