"""A stand-in for the service's PATCH handler under the same gunicorn settings: it reads the
body in 1 MiB chunks from the server's input stream, SHA-256s it, appends it to a file
(starting writeback every 8 MiB, app/writeback.py) and fsyncs, and does nothing else (no
database, no lock, no verification). What this stack can do with that per-byte work
is the ceiling for the bytes-arriving part of an upload, measured in the same run.

Run by the vault ingest benchmark as `gunicorn _vault_sink_app:app` with
BWC_BENCH_SINK_DIR naming the folder to write to."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from flask import Flask, request

from app.staging import WRITEBACK_BYTES
from app.writeback import start_writeback

CHUNK = 1024 * 1024
app = Flask(__name__)


def _chunks() -> Iterator[bytes]:
    stream, left = request.environ["wsgi.input"], request.content_length or 0
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise ConnectionError("client went away")
        left -= len(chunk)
        yield chunk


@app.patch("/sink/<name>")
def sink(name: str) -> tuple[str, int]:
    if not name.isalnum():
        return "", 400
    digest = hashlib.sha256()
    path = os.path.join(os.environ["BWC_BENCH_SINK_DIR"], name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = flushed = os.lseek(fd, 0, os.SEEK_END)
        written = 0
        for chunk in _chunks():
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            written += len(chunk)
            if start + written - flushed >= WRITEBACK_BYTES:
                start_writeback(fd, flushed, start + written - flushed)
                flushed = start + written
        os.fsync(fd)
    finally:
        os.close(fd)
    return digest.hexdigest(), 200


@app.get("/health")
def health() -> str:
    return "ok"
