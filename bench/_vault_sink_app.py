"""A stand-in for the service's PATCH handler under the same gunicorn settings: it reads the
body in 1 MiB chunks from the server's input stream, SHA-256s it, appends it to a file
with the service's own writer (`app.staging.StagedUpload.append`: direct I/O from a
writer thread) and fsyncs, and does nothing else (no database, no lock, no
verification). What this stack can do with that per-byte work
is the ceiling for the bytes-arriving part of an upload, measured in the same run.

Run by the vault ingest benchmark as `gunicorn _vault_sink_app:app` with
BWC_BENCH_SINK_DIR naming the folder to write to."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from flask import Flask, request

from app.staging import StagedUpload

CHUNK = 1024 * 1024
app = Flask(__name__)


def _readinto() -> Callable[[memoryview], int]:
    stream, left = request.environ["wsgi.input"], request.content_length or 0

    def readinto(buffer: memoryview) -> int:
        nonlocal left
        chunk = stream.read(min(CHUNK, len(buffer), left)) if left > 0 else b""
        if left > 0 and not chunk:
            raise ConnectionError("client went away")
        buffer[: len(chunk)] = chunk
        left -= len(chunk)
        return len(chunk)

    return readinto


@app.patch("/sink/<name>")
def sink(name: str) -> tuple[str, int]:
    if not name.isalnum():
        return "", 400
    digest = hashlib.sha256()
    path = Path(os.environ["BWC_BENCH_SINK_DIR"]) / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b", buffering=0) as handle:
        StagedUpload(path, handle).append(  # type: ignore[arg-type]
            _readinto(), request.content_length or 0, [digest]
        )
    return digest.hexdigest(), 200


@app.get("/health")
def health() -> str:
    return "ok"
