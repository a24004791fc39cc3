"""The agent killed (SIGKILL) at every step of a session, then restarted: every file is
ingested exactly once, none is wiped without a verified receipt, nothing is lost."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from tests.e2e.conftest import World
from tests.e2e.cutting_proxy import CuttingProxy
from tests.e2e.dock_support import DockWorld, files_on, wait_until_stable
from tests.e2e.vault_support import equip

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
KEPT = {"DEVICE.JSON", "LOGS/EVENTS.LOG"}
SMALL_CHUNKS = {"BWC_DOCK_UPLOAD_CHUNK_KIB": "64"}  # so an upload spans many requests


@pytest.fixture
def dw(world: World, live_server: Callable[[Any], str], tmp_path: Path) -> Iterator[DockWorld]:
    docks = equip(world.settings)
    app: Flask = create_app(world.settings)
    dock_world = DockWorld(world, docks, live_server(app), tmp_path / "dock", tmp_path / "bay")
    dock_world.root.mkdir()
    dock_world.enrol()
    yield dock_world
    app.extensions["bwc.db"].dispose()


def _held(dw: DockWorld) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in dw.items():
        counts[item.sha256] = counts.get(item.sha256, 0) + 1
    return counts


def _check_invariants(dw: DockWorld, original: dict[str, bytes], volume: Path) -> None:
    held = _held(dw)
    wanted = {hashlib.sha256(data).hexdigest() for data in original.values()}
    assert wanted <= set(held), "a camera file was lost"
    assert all(n == 1 for n in held.values()), "a file was ingested twice"
    remaining = files_on(volume)
    for path, data in original.items():
        if path not in remaining:  # wiped: only with a verified copy in the service
            assert hashlib.sha256(data).hexdigest() in held
    wipes = dw.leaf_types().count("evidence.camera_wiped")
    assert wipes == len(original) - len(remaining), "a wipe was reported twice or not at all"


@pytest.mark.parametrize(
    "point", ["reading", "spooled", "uploading", "verified", "wiping", "unlinked"]
)
def test_a_killed_agent_resumes_without_loss_duplication_or_early_wipe(
    dw: DockWorld, point: str
) -> None:
    volume = dw.camera(clips=2, seconds=2.0)
    original = files_on(volume)
    wait_until_stable(volume)

    crashed = dw.run_subprocess(BWC_DOCK_CRASH_AT=point, **SMALL_CHUNKS)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    if point in ("reading", "spooled", "uploading", "verified"):
        assert files_on(volume) == original, f"something was wiped before a crash at {point}"

    finished = dw.run_subprocess(**SMALL_CHUNKS)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert set(files_on(volume)) == KEPT
    _check_invariants(dw, original, volume)
    assert not any((dw.state_dir / "spool").iterdir()), "spool files were left behind"


@pytest.mark.parametrize("mode", ["cut", "reset", "stall"])
def test_uploads_survive_dropped_reset_and_stalled_connections(dw: DockWorld, mode: str) -> None:
    port = int(dw.base.rsplit(":", 1)[1])
    proxy = CuttingProxy(port, cut_after=20_000, mode=mode)
    dw.enrol(base=f"http://127.0.0.1:{proxy.port}")
    volume = dw.camera(clips=2, seconds=2.0)
    original = files_on(volume)
    wait_until_stable(volume)
    done = dw.run_subprocess(BWC_DOCK_TIMEOUT_SECONDS="2", **SMALL_CHUNKS)
    assert proxy.cuts == 1
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(files_on(volume)) == KEPT
    _check_invariants(dw, original, volume)
    # Bytes the service confirmed were not sent again: only the broken request is
    # repeated. (Measured here: about 1.7x the footage, reports and headers included;
    # sending the footage twice would pass 2.6x.)
    footage = sum(len(d) for d in original.values())
    assert proxy.forwarded < 2 * footage
    proxy.close()


def test_service_5xx_gives_a_clear_error_and_leaves_the_camera_untouched(
    dw: DockWorld, live_server: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from werkzeug.wrappers import Response

    from dock.__main__ import main as dock_main

    def storage_down(environ: dict[str, Any], start_response: Any) -> Any:
        return Response(
            '{"error": {"status": 503, "detail": "storage down"}}',
            status=503,
            mimetype="application/json",
        )(environ, start_response)

    dw.enrol(base=live_server(storage_down))
    volume = dw.camera(clips=1)
    original = files_on(volume)
    wait_until_stable(volume)
    monkeypatch.setattr("dock.client.time.sleep", lambda seconds: None)
    for key, value in dw.env().items():
        monkeypatch.setenv(key, value)
    assert dock_main(dw.run_args()) == 4
    (report,) = dw.reports()
    assert any("503" in error for error in report["errors"]), report["errors"]
    assert files_on(volume) == original
