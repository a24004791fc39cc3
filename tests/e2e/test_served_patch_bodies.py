"""PATCH bodies under the real server (gunicorn), which the service reads straight from
the socket (app/request_body.py; its accounting against gunicorn's reader is in
tests/unit/test_request_body.py): bytes inside a refused body are never taken for a
request of their own, and a request pipelined after a body is answered."""

from __future__ import annotations

import os
import socket

import pytest
import requests

from tests.e2e.conftest import World
from tests.e2e.test_large_upload import server  # noqa: F401  (the fixture)
from tests.e2e.vault_support import equip, seal, tus_headers

SMUGGLED = b"GET /api/v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"  # 404 if answered
LAST = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _created(base: str, world: World) -> tuple[str, str, bytes]:
    """A new upload's path, the dock's credential and the upload's ciphertext."""
    docks = equip(world.settings)
    sealed = seal(docks, os.urandom(20000))
    created = requests.post(
        base + "/api/v1/uploads/",
        headers=tus_headers(
            docks.north_credential,
            **{"Upload-Length": str(len(sealed.ciphertext)), "Upload-Metadata": sealed.header},
        ),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    path = created.headers["Location"].removeprefix(base)
    return path, docks.north_credential, sealed.ciphertext


def _patch_head(path: str, credential: str, length: int) -> bytes:
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {credential}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _status_lines(base: str, raw: bytes) -> list[bytes]:
    """Send raw on one connection and read until the server closes it; the status line
    of every response that came back."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return [line for line in received.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_what_a_refused_body_holds_is_never_answered_as_a_request(
    world: World,
    server: tuple[str, int],  # noqa: F811
) -> None:
    base, _ = server
    path, credential, ciphertext = _created(base, world)
    # More bytes than the upload's length (refused, 413); the body ends with what looks
    # like a request of its own.
    body = ciphertext + b"X" + SMUGGLED
    answers = _status_lines(base, _patch_head(path, credential, len(body)) + body + LAST)
    assert answers[0].startswith(b"HTTP/1.1 413")
    assert not [a for a in answers if b" 404 " in a], answers  # the smuggled one: never
    assert len(answers) <= 2, answers  # then at most the real request's answer


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_requests_pipelined_after_a_body_are_answered_in_turn(
    world: World,
    server: tuple[str, int],  # noqa: F811
) -> None:
    base, _ = server
    path, credential, ciphertext = _created(base, world)
    head = _patch_head(path, credential, len(ciphertext))
    answers = _status_lines(base, head + ciphertext + LAST)
    assert [a.split(b" ")[1] for a in answers] == [b"204", b"200"], answers
    receipt = requests.get(
        f"{base}{path}/receipt", headers=tus_headers(credential), timeout=60
    ).json()
    assert receipt["status"] == "verified", receipt
