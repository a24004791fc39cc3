"""A 2 GiB upload through the real server (gunicorn) with the service's memory bounded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tusclient.client import TusClient

from evidence.upload_metadata import seal_for_ingest
from tests.e2e.big_media import GeneratedMedia, sha256_of
from tests.e2e.conftest import World
from tests.e2e.test_tus_client import Sha256Uploader, _latin1
from tests.e2e.vault_support import NORTH_CAMERA, equip

SIZE = 2 * 1024**3 + 12345  # over 2 GiB, and not a whole number of segments
PEAK_RSS_LIMIT = 200 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.fixture
def server(world: World) -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = {
        **os.environ,
        "BWC_DATA_DIR": str(world.settings.data_dir),
        "BWC_DATABASE_URL": world.settings.database_url,
        "BWC_SECRET_KEY": world.settings.secret_key or "",
        "BWC_WEB_WORKERS": "1",
        "BWC_CHECKPOINT_SECONDS": "0",
        "BWC_LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    bwc = Path(sys.executable).with_name("bwc")
    process = subprocess.Popen([str(bwc), "serve"], env=env)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/api/v1/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the server did not start")
        time.sleep(0.1)
    yield base, process.pid
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_2_gib_upload_is_verified_with_bounded_service_memory(
    world: World, server: tuple[str, int], tmp_path: Path
) -> None:
    docks = equip(world.settings)
    base, master = server
    seed = os.urandom(GeneratedMedia.BLOCK)
    sealed = tmp_path / "big.sealed"
    with sealed.open("wb") as out:
        result, meta = seal_for_ingest(
            GeneratedMedia(SIZE, seed),  # type: ignore[arg-type]
            out,
            ingest_public_key=docks.ingest_public,
            ingest_key_version=docks.ingest_version,
            camera_serial=NORTH_CAMERA,
            file_identity="BIG00001.MP4@2026-11-30T10:00:00Z",
            file_name=b"BIG00001.MP4",
            media_type="video/mp4",
        )
    assert result.plaintext_size == SIZE
    auth = {"Authorization": f"Bearer {docks.north_credential}"}
    client = TusClient(base + "/api/v1/uploads/", headers=auth)
    with sealed.open("rb") as stream:
        uploader = Sha256Uploader(
            file_stream=stream,
            client=client,
            chunk_size=64 * 1024 * 1024,
            metadata=_latin1(meta),
            metadata_encoding="latin-1",
            upload_checksum=True,
        )
        uploader.upload()
    receipt = requests.get(uploader.url + "/receipt", headers=auth, timeout=300).json()
    assert receipt["status"] == "verified", receipt
    assert receipt["size"] == SIZE
    assert receipt["sha256"] == result.plaintext_sha256 == sha256_of(SIZE, seed)

    workers = _children(master)
    assert workers, "gunicorn has no worker"
    peak = max(_peak_rss(pid) for pid in [master, *workers])
    print(f"service peak RSS {peak / 2**20:.0f} MiB")
    assert peak < PEAK_RSS_LIMIT, f"service peak RSS {peak / 2**20:.0f} MiB"
