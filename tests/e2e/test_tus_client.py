"""An independent tus client (tuspy) against the real HTTP server, with a cut connection."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader import Uploader

from app import create_app
from tests.e2e.conftest import World
from tests.e2e.cutting_proxy import CuttingProxy
from tests.e2e.vault_support import Docks, equip, seal_file


class Sha256Uploader(Uploader):  # type: ignore[misc]
    """tuspy sends sha1 checksums by default; this service speaks sha256 only."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def _latin1(meta: dict[str, bytes]) -> dict[str, str]:
    # tuspy encodes str values; latin-1 carries arbitrary bytes (the wrapped key) intact.
    return {key: value.decode("latin-1") for key, value in meta.items()}


@pytest.fixture
def served(world: World, live_server: Callable[[Any], str]) -> Iterator[tuple[str, Docks, Flask]]:
    docks = equip(world.settings)
    app = create_app(world.settings)
    yield live_server(app), docks, app
    app.extensions["bwc.db"].dispose()


def _sealed_file(
    tmp_path: Path, docks: Docks, size: int
) -> tuple[Path, bytes, str, dict[str, bytes]]:
    plain = tmp_path / "clip.mp4"
    plain.write_bytes(os.urandom(size))
    sealed = tmp_path / "clip.sealed"
    sha, meta = seal_file(docks, plain, sealed)
    return sealed, plain.read_bytes(), sha, meta


def test_tuspy_uploads_with_sha256_checksums_to_a_verified_receipt(
    served: tuple[str, Docks, Flask], tmp_path: Path
) -> None:
    base, docks, _ = served
    sealed, plain, sha, meta = _sealed_file(tmp_path, docks, 3 * 1024 * 1024 + 5)
    client = TusClient(
        base + "/api/v1/uploads/", headers={"Authorization": f"Bearer {docks.north_credential}"}
    )
    with sealed.open("rb") as stream:  # tuspy leaves files it opens itself unclosed
        uploader = Sha256Uploader(
            file_stream=stream,
            client=client,
            chunk_size=1024 * 1024,
            metadata=_latin1(meta),
            metadata_encoding="latin-1",
            upload_checksum=True,
        )
        uploader.upload()
    receipt = requests.get(
        uploader.url + "/receipt",
        headers={"Authorization": f"Bearer {docks.north_credential}"},
        timeout=30,
    ).json()
    assert receipt["status"] == "verified"
    assert receipt["sha256"] == sha == hashlib.sha256(plain).hexdigest()


def test_an_upload_cut_mid_request_resumes_without_resending_kept_bytes(
    served: tuple[str, Docks, Flask], tmp_path: Path
) -> None:
    base, docks, _ = served
    sealed, plain, sha, meta = _sealed_file(tmp_path, docks, 6 * 1024 * 1024)
    port = int(base.rsplit(":", 1)[1])
    proxy = CuttingProxy(port, cut_after=2_500_000)  # in the middle of the first PATCH body
    auth = {"Authorization": f"Bearer {docks.north_credential}"}
    client = TusClient(f"http://127.0.0.1:{proxy.port}/api/v1/uploads/", headers=auth)
    with (
        sealed.open("rb") as stream,
        pytest.raises((TusCommunicationError, requests.ConnectionError)),
    ):
        uploader = Sha256Uploader(
            file_stream=stream,
            client=client,
            chunk_size=4 * 1024 * 1024,
            metadata=_latin1(meta),
            metadata_encoding="latin-1",
        )
        uploader.upload()
    assert proxy.cuts == 1
    assert proxy.cut_done.wait(30), "the server never finished the cut request"
    url = uploader.url
    assert url is not None, "the upload was created before the cut"
    # What the server kept of the cut request is fsynced and reported, not lost.
    head = requests.head(url, headers={**auth, "Tus-Resumable": "1.0.0"}, timeout=30)
    assert head.status_code == 200, (head.status_code, head.text)
    kept = int(head.headers["Upload-Offset"])
    assert 0 < kept < 4 * 1024 * 1024

    sent: list[int] = []
    original = requests.patch

    def counting_patch(*args: Any, **kwargs: Any) -> Any:
        sent.append(len(kwargs.get("data") or b""))
        return original(*args, **kwargs)

    with sealed.open("rb") as stream:
        resumed = Sha256Uploader(
            file_stream=stream,
            url=url,
            client=client,
            chunk_size=4 * 1024 * 1024,
            upload_checksum=True,
        )
        assert resumed.offset == kept
        requests.patch = counting_patch  # type: ignore[assignment]
        try:
            resumed.upload()
        finally:
            requests.patch = original  # type: ignore[assignment]
    assert sum(sent) == sealed.stat().st_size - kept, "confirmed bytes were sent again"
    receipt = requests.get(url + "/receipt", headers=auth, timeout=30).json()
    assert receipt["status"] == "verified"
    assert receipt["sha256"] == sha == hashlib.sha256(plain).hexdigest()
    proxy.close()
