"""The dock agent against the real service over HTTP, with simulated cameras on a
simulated USB bus: offload, receipts, wipes, refusals and failures."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from dock.__main__ import main as dock_main
from tests.e2e.conftest import World
from tests.e2e.dock_support import DockWorld, files_on, wait_until_stable
from tests.e2e.vault_support import NORTH_CAMERA, SOUTH_CAMERA, equip

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
KEPT = {"DEVICE.JSON", "LOGS/EVENTS.LOG"}


@pytest.fixture
def service(world: World, live_server: Callable[[Any], str]) -> Iterator[tuple[Flask, str]]:
    world_docks = equip(world.settings)
    app = create_app(world.settings)
    app.extensions["bwc.test_docks"] = world_docks
    yield app, live_server(app)
    app.extensions["bwc.db"].dispose()


@pytest.fixture
def dw(world: World, service: tuple[Flask, str], tmp_path: Path) -> DockWorld:
    app, base = service
    dock_world = DockWorld(
        world, app.extensions["bwc.test_docks"], base, tmp_path / "dock", tmp_path / "bay"
    )
    dock_world.root.mkdir()
    dock_world.enrol()
    return dock_world


def _run(dw: DockWorld, monkeypatch: pytest.MonkeyPatch, **env: str) -> int:
    for key, value in dw.env(**env).items():
        monkeypatch.setenv(key, value)
    return dock_main(dw.run_args())


def test_a_docked_camera_is_offloaded_verified_and_wiped(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = dw.camera(clips=2)
    before = files_on(volume)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 0

    assert set(files_on(volume)) == KEPT  # recordings and sidecars left; identity and log kept
    (report,) = dw.reports()
    assert report["decision"] == "accept" and report["alerts"] == []
    by_path = {e["path"]: e for e in report["entries"]}
    assert set(by_path) == set(before)
    for path, data in before.items():
        entry = by_path[path]
        assert entry["outcome"] == "ingested"
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["evidence_id"] and entry["leaf_index"] is not None
        assert entry["wiped"] is (path not in KEPT)
    held = {item.sha256 for item in dw.items()}
    assert {hashlib.sha256(d).hexdigest() for d in before.values()} <= held
    types = dw.leaf_types()
    assert types.count("evidence.camera_wiped") == len(before) - len(KEPT)
    assert "camera.activations_received" in types and "dock.session_recorded" in types
    assert not any((dw.state_dir / "spool").iterdir()), "spool entries outlived their receipts"


def test_docking_again_ingests_nothing_twice(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = dw.camera(clips=1)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 0
    count = len(dw.items())
    assert _run(dw, monkeypatch) == 0  # same camera, unplugged and docked again
    second = dw.reports()[-1]
    outcomes = {e["path"]: e["outcome"] for e in second["entries"]}
    assert outcomes == {"DEVICE.JSON": "duplicate", "LOGS/EVENTS.LOG": "duplicate"}
    assert len(dw.items()) == count


@pytest.mark.parametrize(
    ("device", "reason"),
    [
        ({"vid": "0x0781", "pid": "0x5581", "serial": "4C530001"}, "usb_id_not_allowlisted"),
        ({"interfaces": ["mass_storage", "hid_keyboard"]}, "unexpected_usb_interface"),
        ({"serial": "BWC-9999"}, "unregistered_serial"),
        ({"serial": SOUTH_CAMERA}, "unregistered_serial"),  # another school's camera
    ],
)
def test_devices_that_fail_identity_are_refused_read_nothing_and_alert(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch, device: dict[str, Any], reason: str
) -> None:
    volume = dw.camera()
    before = files_on(volume)
    spec = {
        "vid": "0xb0d1",
        "pid": "0xca01",
        "serial": NORTH_CAMERA,
        "interfaces": ["mass_storage"],
        "volume": "cam",
        **device,
    }
    dw.usb([spec])
    assert _run(dw, monkeypatch) == 0
    (report,) = dw.reports()
    assert report["decision"] == "refuse" and reason in report["refusal_reasons"]
    assert report["alerts"] == ["device_refused"] and report["entries"] == []
    assert files_on(volume) == before
    assert dw.items() == []
    assert "dock.device_refused" in dw.leaf_types()


def test_a_volume_whose_identity_disagrees_is_refused(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = dw.camera()
    device_json = volume / "DEVICE.JSON"
    device_json.write_text(device_json.read_text().replace(NORTH_CAMERA, "BWC-0003"))
    before = files_on(volume)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 0
    (report,) = dw.reports()
    assert report["decision"] == "refuse" and report["refusal_reasons"] == ["serial_mismatch"]
    assert files_on(volume) == before and dw.items() == []


def test_desktop_debris_means_offload_but_delete_nothing(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = dw.camera()
    (volume / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    before = files_on(volume)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 0
    (report,) = dw.reports()
    assert report["decision"] == "accept_no_delete"
    assert "volume_integrity_suspect" in report["alerts"]
    assert files_on(volume) == before  # everything still on the camera
    assert all(not e["wiped"] for e in report["entries"])
    assert len(dw.items()) == len(before)  # but everything safely offloaded


def test_a_receipt_signed_by_another_key_wipes_nothing(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    from audit import notes

    real = requests.get(dw.base + "/api/v1/ledger/key", timeout=10).text.splitlines()[0]
    origin = real.split("+", 1)[0]
    dw.enrol(log_key=notes.verifier_key(origin, notes.new_signing_key().public_key()))
    volume = dw.camera(clips=1)
    before = files_on(volume)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 4
    assert files_on(volume) == before
    (report,) = dw.reports()
    assert report["errors"] and all(not e["wiped"] for e in report["entries"])


def test_an_unreachable_service_leaves_the_camera_untouched_and_resumes_later(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    dw.enrol(base="http://127.0.0.1:9")  # nothing listens on the discard port
    volume = dw.camera(clips=1)
    before = files_on(volume)
    wait_until_stable(volume)
    monkeypatch.setattr("dock.client.time.sleep", lambda s: None)  # no real backoff waits
    assert _run(dw, monkeypatch) == 4
    assert files_on(volume) == before
    (report,) = dw.reports()
    assert any("cannot reach the service" in e for e in report["errors"])
    dw.enrol()  # the network is back
    assert _run(dw, monkeypatch) == 0
    assert set(files_on(volume)) == KEPT


def test_a_full_spool_gives_a_clear_error_and_touches_nothing(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = dw.camera(clips=1)
    before = files_on(volume)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch, BWC_DOCK_SPOOL_GIB="0.01") == 4
    (report,) = dw.reports()
    assert any("spool full" in e for e in report["errors"])
    assert files_on(volume) == before


def test_status_shows_sessions_files_and_states(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = dw.camera(clips=1)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 0
    capsys.readouterr()
    assert dock_main(["status"]) == 0
    out = capsys.readouterr().out
    assert NORTH_CAMERA in out and "finished" in out and "wiped=2" in out


def test_enrolment_redeems_the_token_once_and_keeps_the_credential_private(
    dw: DockWorld,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import stat
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app.db import Database
    from app.devices import create_dock
    from evidence.adapters.sql.org import District, School

    database = Database(dw.world.settings.database_url)
    with database.transaction() as session:
        district = session.scalars(select(District)).one()
        school = session.scalars(select(School).where(School.code == "NHS")).one()
        _, token = create_dock(
            session, district, school, "library-dock", actor="cli", now=datetime.now(UTC)
        )
    database.dispose()
    first = tmp_path / "first"
    monkeypatch.setenv("BWC_DOCK_STATE_DIR", str(first))
    assert dock_main(["enroll", "--service", dw.base, "--token", token]) == 0
    enrolment = first / "enrolment.json"
    assert stat.S_IMODE(enrolment.stat().st_mode) == 0o600
    assert "library-dock" in capsys.readouterr().out
    assert dock_main(["enroll", "--service", dw.base, "--token", token]) == 1  # enrolled
    monkeypatch.setenv("BWC_DOCK_STATE_DIR", str(tmp_path / "second"))
    assert dock_main(["enroll", "--service", dw.base, "--token", token]) == 1  # token spent
    assert "unknown, used or expired" in capsys.readouterr().err
    enrolment.chmod(0o644)
    monkeypatch.setenv("BWC_DOCK_STATE_DIR", str(first))
    assert dock_main(["status"]) == 0  # status needs no credential
    assert dock_main(dw.run_args()) == 3  # but nothing runs on a readable credential
    assert "chmod 600" in capsys.readouterr().err


def test_a_revoked_dock_stops_uploading_and_touches_nothing(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.db import Database
    from app.devices import dock_for_credential, revoke_dock

    database = Database(dw.world.settings.database_url)
    with database.transaction() as session:
        dock = dock_for_credential(session, dw.docks.north_credential)
        assert dock is not None
        revoke_dock(session, dock, actor="cli", now=dock.created_at)
    database.dispose()
    volume = dw.camera(clips=1)
    before = files_on(volume)
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 4
    assert files_on(volume) == before and dw.items() == []
    (report,) = dw.reports()
    assert any("401" in error for error in report["errors"])


def _symlink_out(volume: Path) -> None:
    (volume / "DCIM/100BWC/BWC00009.MP4").symlink_to("/etc/passwd")


def _fifo(volume: Path) -> None:
    import os

    os.mkfifo(volume / "DCIM/100BWC/BWC00009.MP4")


def _impossible_name(volume: Path) -> None:
    (volume / "DCIM/100BWC/BWC:0001.MP4").write_bytes(b"\0" * 100)


def _sidecar_lies(volume: Path) -> None:
    import json

    sidecar = volume / "DCIM/100BWC/BWC00001.JSON"
    claims = json.loads(sidecar.read_text())
    claims["sha256"] = "0" * 64
    sidecar.write_text(json.dumps(claims))


def _recording_removed(volume: Path) -> None:
    (volume / "DCIM/100BWC/BWC00002.MP4").unlink()
    (volume / "DCIM/100BWC/BWC00002.JSON").unlink()


def _stray_file(volume: Path) -> None:
    (volume / "DCIM/extra.bin").write_bytes(b"not from a camera")


@pytest.mark.parametrize(
    ("tamper", "alert"),
    [
        (_symlink_out, "volume_integrity_suspect"),
        (_fifo, "volume_integrity_suspect"),
        (_impossible_name, "volume_integrity_suspect"),
        (_sidecar_lies, "possible_tamper"),
        (_recording_removed, "missing_recording"),
        (_stray_file, "unexpected_content"),
    ],
)
def test_hostile_volumes_are_offloaded_as_far_as_safe_and_nothing_is_wiped(
    dw: DockWorld, monkeypatch: pytest.MonkeyPatch, tamper: Callable[[Path], None], alert: str
) -> None:
    volume = dw.camera(clips=2)
    tamper(volume)
    before = None if tamper is _fifo else files_on(volume)  # a FIFO cannot be read here
    wait_until_stable(volume)
    assert _run(dw, monkeypatch) == 0
    (report,) = dw.reports()
    assert report["decision"] == "accept_no_delete", report["alerts"]
    assert alert in report["alerts"]
    assert all(not e["wiped"] for e in report["entries"])
    if before is not None:
        assert files_on(volume) == before
    held = {item.sha256 for item in dw.items()}
    ingested = [e for e in report["entries"] if e["outcome"] == "ingested"]
    assert ingested and all(e["sha256"] in held for e in ingested)
    assert "root:" not in "".join(str(e) for e in report["entries"])  # /etc/passwd unread
