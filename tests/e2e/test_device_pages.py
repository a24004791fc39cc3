"""Cameras and docks administration: register, assign, add a dock and enrol it with the
token shown once, its live state from heartbeats, revoke; scoped to the admin's grant."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.db import Database
from app.device_admin import dock_state
from evidence.adapters.sql.org import Camera, Dock
from tests.e2e.conftest import World, csrf_token, sign_in
from tests.e2e.vault_support import equip


def _as(app: Flask, world: World, who: str) -> FlaskClient:
    client = app.test_client()
    sign_in(client, world.people[who])
    return client


def _form(client: FlaskClient, page: str, action: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(action, data={"csrf_token": csrf_token(client, page), **data})


def test_an_admin_registers_and_assigns_a_camera(app: Flask, world: World) -> None:
    client = _as(app, world, "admin")
    made = _form(
        client,
        "/admin/cameras",
        "/admin/cameras",
        {
            "school": str(world.schools["NHS"]),
            "serial": "BWC-7001",
            "profile": "bwc-msc/1",
            "wearer": "WEARER",
        },
    )
    assert made.status_code == 302
    page = client.get("/admin/cameras").get_data(as_text=True)
    assert "BWC-7001" in page
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            camera = session.scalars(select(Camera).where(Camera.serial == "BWC-7001")).one()
            assert camera.assigned_wearer_id is not None
            camera_id = camera.id
    finally:
        database.dispose()
    pooled = _form(
        client, "/admin/cameras", f"/admin/cameras/{camera_id}/assign", {"wearer_id": ""}
    )
    assert pooled.status_code == 302
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            assert session.get(Camera, camera_id).assigned_wearer_id is None  # type: ignore[union-attr]
    finally:
        database.dispose()
    twice = _form(
        client,
        "/admin/cameras",
        "/admin/cameras",
        {"school": str(world.schools["NHS"]), "serial": "BWC-7001", "profile": "bwc-msc/1"},
    )
    assert twice.status_code == 200  # the form again, with what went wrong
    assert "already registered" in twice.get_data(as_text=True)
    bad = _form(
        client,
        "/admin/cameras",
        "/admin/cameras",
        {"school": str(world.schools["NHS"]), "serial": "../etc", "profile": "bwc-msc/1"},
    )
    assert bad.status_code == 200
    assert "letters, digits" in bad.get_data(as_text=True)


def test_a_dock_is_added_enrolled_shown_live_and_revoked(world: World) -> None:
    equip(world.settings)  # the ingest key and the log's signing key an enrolment hands out
    app = create_app(world.settings, start_worker=False)
    try:
        _dock_lifecycle(app, world)
    finally:
        app.extensions["bwc.db"].dispose()


def _dock_lifecycle(app: Flask, world: World) -> None:
    client = _as(app, world, "admin")
    added = _form(
        client,
        "/admin/docks",
        "/admin/docks",
        {"school": str(world.schools["SMS"]), "name": "south office"},
    )
    assert added.status_code == 200
    page = added.get_data(as_text=True)
    token = re.search(r"--token ([A-Za-z0-9_-]{20,})", page)
    assert token, page
    assert "awaiting enrolment" in page
    assert token.group(1) not in client.get("/admin/docks").get_data(as_text=True)  # shown once
    api = app.test_client()
    enrolled = api.post("/api/v1/docks/enrol", json={"token": token.group(1)})
    assert enrolled.status_code == 201, enrolled.get_data(as_text=True)
    credential = enrolled.get_json()["credential"]
    beat = api.post(
        "/api/v1/docks/heartbeat",
        json={"bays": 4, "queue": 2},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert beat.status_code in (200, 204), beat.get_data(as_text=True)
    live = client.get("/admin/docks").get_data(as_text=True)
    assert "online" in live and "queue: 2" in live
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            dock_id = session.scalars(select(Dock).where(Dock.name == "south office")).one().id
    finally:
        database.dispose()
    north_admin = _as(app, world, "north-admin")
    assert (
        _form(north_admin, "/admin/docks", f"/admin/docks/{dock_id}/revoke", {}).status_code == 404
    )
    assert "south office" not in north_admin.get("/admin/docks").get_data(as_text=True)
    revoked = _form(client, "/admin/docks", f"/admin/docks/{dock_id}/revoke", {})
    assert revoked.status_code == 302
    assert "revoked" in client.get("/admin/docks").get_data(as_text=True)
    refused = api.post(
        "/api/v1/docks/heartbeat", json={}, headers={"Authorization": f"Bearer {credential}"}
    )
    assert refused.status_code == 401


def test_footage_roles_have_no_device_administration(app: Flask, world: World) -> None:
    for who in ("supervisor", "records", "wearer", "oversight"):
        client = _as(app, world, who)
        assert client.get("/admin/cameras").status_code == 403, who
        assert client.get("/admin/docks").status_code == 403, who


def test_dock_state_reads_heartbeats_and_enrolment() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    dock = Dock(name="d", enrolled_at=None, enrolment_expires_at=now + timedelta(hours=1))
    assert dock_state(dock, now).label == "awaiting enrolment"
    dock.enrolment_expires_at = now - timedelta(seconds=1)
    assert dock_state(dock, now).label == "enrolment expired"
    dock.enrolled_at = now - timedelta(days=1)
    assert dock_state(dock, now).label == "offline"
    dock.last_heartbeat_at = now - timedelta(minutes=4)
    assert dock_state(dock, now).label == "online"
    dock.last_heartbeat_at = now - timedelta(minutes=6)
    assert dock_state(dock, now).label == "offline"
    dock.revoked_at = now
    assert dock_state(dock, now).label == "revoked"


def test_a_retired_camera_is_refused_by_docks_until_returned_to_service(
    app: Flask, world: World
) -> None:
    from tests.e2e.vault_support import NORTH_CAMERA, equip, seal, tus_headers

    docks = equip(world.settings)
    client = _as(app, world, "admin")
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            camera_id = session.scalars(
                select(Camera.id).where(Camera.serial == NORTH_CAMERA)
            ).one()
    finally:
        database.dispose()
    api = app.test_client()
    dock = tus_headers(docks.north_credential)

    def offered() -> list[str]:
        body = api.get("/api/v1/docks/cameras", headers=dock).get_json()
        return [c["serial"] for c in body["cameras"]]

    assert NORTH_CAMERA in offered()
    retired = _form(client, "/admin/cameras", f"/admin/cameras/{camera_id}/retire", {})
    assert retired.status_code == 302
    assert "retired" in client.get("/admin/cameras").get_data(as_text=True)
    assert NORTH_CAMERA not in offered()
    sealed = seal(docks, b"footage from a retired camera")
    created = api.post(
        "/api/v1/uploads/",
        headers=tus_headers(
            docks.north_credential,
            **{"Upload-Length": str(len(sealed.ciphertext)), "Upload-Metadata": sealed.header},
        ),
    )
    assert created.status_code in (403, 422) and created.is_json
    restored = _form(client, "/admin/cameras", f"/admin/cameras/{camera_id}/restore", {})
    assert restored.status_code == 302
    assert NORTH_CAMERA in offered()
    events = _events_of(world, "admin.camera_retired") + _events_of(world, "admin.camera_restored")
    assert len(events) == 2
    other = _as(app, world, "supervisor")
    token_page = other.get("/evidence").get_data(as_text=True)
    token = token_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert other.post(
        f"/admin/cameras/{camera_id}/retire", data={"csrf_token": token}
    ).status_code in (403, 404)


def _events_of(world: World, kind: str) -> list[object]:
    from audit.adapters.sql import AuditEventRow

    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            return list(session.scalars(select(AuditEventRow.id).where(AuditEventRow.type == kind)))
    finally:
        database.dispose()
