"""A live service and an enrolled dock with simulated cameras, for the agent's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from app.db import Database
from audit.adapters.ledger_tables import LedgerLeaf
from dock.simulate import simulate_volume
from evidence.adapters.sql.items import EvidenceItem
from tests.e2e.conftest import World
from tests.e2e.vault_support import NORTH_CAMERA, Docks

STABILITY_SECONDS = 2.0  # the reference profile's window for files still being written


@dataclass
class DockWorld:
    world: World
    docks: Docks
    base: str
    state_dir: Path
    root: Path

    def enrol(self, *, log_key: str | None = None, base: str | None = None) -> None:
        key = requests.get(self.base + "/api/v1/ledger/key", timeout=10).text.splitlines()[0]
        info = {
            "service": base or self.base,
            "dock": "north-dock",
            "credential": self.docks.north_credential,
            "ingest_key_version": self.docks.ingest_version,
            "ingest_public_key": _public_text(self.docks.ingest_public),
            "log_origin": key.split("+", 1)[0],
            "log_verifier_key": log_key or key,
        }
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.state_dir / "enrolment.json"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(info, handle)

    def camera(
        self,
        name: str = "cam",
        *,
        serial: str = NORTH_CAMERA,
        clips: int = 2,
        seconds: float = 1.0,
        interfaces: tuple[str, ...] = ("mass_storage",),
        vid: str = "0xb0d1",
        pid: str = "0xca01",
    ) -> Path:
        """A simulated camera volume and the simulated-USB file that docks it."""
        volume = self.root / name
        simulate_volume(
            volume, serial=serial, clips=clips, seconds=seconds, width=160, height=96, fps=10
        )
        self.usb(
            [
                {
                    "vid": vid,
                    "pid": pid,
                    "serial": serial,
                    "manufacturer": "ExampleCam",
                    "product": "EC-1",
                    "interfaces": list(interfaces),
                    "volume": name,
                }
            ]
        )
        return volume

    def usb(self, devices: list[dict[str, Any]]) -> Path:
        path = self.root / "usb.json"
        path.write_text(json.dumps({"devices": devices}))
        return path

    def env(self, **extra: str) -> dict[str, str]:
        return {"BWC_DOCK_STATE_DIR": str(self.state_dir), **extra}

    def run_args(self) -> list[str]:
        return [
            "run",
            "--once",
            "--simulated-usb",
            str(self.root / "usb.json"),
            "--report-dir",
            str(self.root / "reports"),
        ]

    def run_subprocess(self, **env: str) -> subprocess.CompletedProcess[str]:
        agent = Path(sys.executable).with_name("bwc-dock")
        return subprocess.run(  # noqa: S603
            [str(agent), *self.run_args()],
            env={**os.environ, **self.env(**env)},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def reports(self) -> list[dict[str, Any]]:
        folder = self.root / "reports"
        found = [json.loads(p.read_text()) for p in folder.glob("*.json")]
        return sorted(found, key=lambda r: (r["finished_at"] or "", r["started_at"]))

    def items(self) -> list[EvidenceItem]:
        database = Database(self.world.settings.database_url)
        try:
            with database.sessions() as session:
                return list(session.scalars(select(EvidenceItem)))
        finally:
            database.dispose()

    def leaf_types(self) -> list[str]:
        database = Database(self.world.settings.database_url)
        try:
            with database.sessions() as session:
                rows = session.scalars(select(LedgerLeaf.leaf).order_by(LedgerLeaf.idx))
                return [json.loads(leaf)["type"] for leaf in rows]
        finally:
            database.dispose()


def _public_text(raw: bytes) -> str:
    from evidence.crypto import keywrap

    return keywrap.encode_public_key(raw)


def wait_until_stable(volume: Path) -> None:
    """Let the profile's stability window pass since the simulator wrote the volume:
    files changed within it are (rightly) skipped as still being written."""
    newest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in volume.rglob("*"))
    remaining = newest + STABILITY_SECONDS + 0.2 - time.time()
    if remaining > 0:
        time.sleep(remaining)


def files_on(volume: Path) -> dict[str, bytes]:
    return {str(p.relative_to(volume)): p.read_bytes() for p in volume.rglob("*") if p.is_file()}
