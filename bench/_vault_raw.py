"""Raw limits for the vault ingest benchmark: hashing, AES-GCM, loopback TCP and HTTP, disk.

Each is what one core (or one stream) of this machine can do with nothing of the
service around it, measured in the same run as the service so ratios survive drift.
The loopback receivers run in a forked process, as the service runs apart from its
client, so neither competes with the other for the GIL."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import time
from pathlib import Path
from typing import Any

import requests
from _common import percentile

# The one import of hazmat outside evidence/crypto (as in vault_crypto_bench.py): the
# raw AES-GCM rate is a limit to compare with, so it is measured without the format.
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MiB = 1024 * 1024
POOL = 64 * MiB  # random bytes served over and over
_FORK = multiprocessing.get_context("fork")


def random_pool() -> bytes:
    return os.urandom(POOL)


def _rate(total: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"bytes": total, "seconds": seconds, "MB_per_s": total / seconds / 1e6, **extra}


def sha256_rate(pool: bytes, total: int) -> dict[str, Any]:
    """hashlib SHA-256 in 1 MiB updates, one thread."""
    view, digest = memoryview(pool), hashlib.sha256()
    started = time.perf_counter()
    for at in range(0, total, MiB):
        digest.update(view[at % POOL : at % POOL + MiB])
    return _rate(total, time.perf_counter() - started)


def aesgcm_rates(pool: bytes, total: int, samples: int) -> dict[str, Any]:
    """AESGCM encrypt_into and decrypt_into on 1 MiB segments into a preallocated buffer,
    and the latency of one 1 MiB decrypt (the unit of a ranged read)."""
    aead, nonce, aad = AESGCM(bytes(range(32))), bytes(12), bytes(64)
    view = memoryview(pool)
    out = memoryview(bytearray(MiB + 16))
    started = time.perf_counter()
    for at in range(0, total, MiB):
        aead.encrypt_into(nonce, view[at % POOL : at % POOL + MiB], aad, out)
    encrypt = _rate(total, time.perf_counter() - started)
    sealed = aead.encrypt(nonce, view[:MiB], aad)
    plain = memoryview(bytearray(MiB))
    started = time.perf_counter()
    for _ in range(total // MiB):
        aead.decrypt_into(nonce, sealed, aad, plain)
    decrypt = _rate(total, time.perf_counter() - started)
    one = []
    for _ in range(samples):
        began = time.perf_counter()
        aead.decrypt_into(nonce, sealed, aad, plain)
        one.append(time.perf_counter() - began)
    return {
        "encrypt": encrypt,
        "decrypt": decrypt,
        "decrypt_1mib_ms": {
            "p50": percentile(one, 0.5) * 1e3,
            "p95": percentile(one, 0.95) * 1e3,
            "n": samples,
        },
    }


# --- Loopback ----------------------------------------------------------------------------


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server


def _tcp_sink(server: socket.socket, total: int) -> None:
    conn, _ = server.accept()
    buffer = memoryview(bytearray(MiB))
    got = 0
    while got < total and (n := conn.recv_into(buffer)):
        got += n
    conn.sendall(b"k")
    conn.close()


def tcp_loopback(pool: bytes, total: int) -> dict[str, Any]:
    """One TCP stream over 127.0.0.1: sendall of 1 MiB buffers to a receiver process that
    recv_into()s them; timed until the receiver acknowledges the last byte."""
    server = _listener()
    child = _FORK.Process(target=_tcp_sink, args=(server, total), daemon=True)
    child.start()
    try:
        view = memoryview(pool)
        with socket.create_connection(server.getsockname()) as conn:
            started = time.perf_counter()
            for at in range(0, total, MiB):
                conn.sendall(view[at % POOL : at % POOL + MiB])
            ack = conn.recv(1)
            seconds = time.perf_counter() - started
        assert ack == b"k"
    finally:
        server.close()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    return _rate(total, seconds)


def _http_sink(server: socket.socket) -> None:
    """A minimal HTTP/1.1 server: for each request, read the headers, then exactly
    Content-Length body bytes into a reused buffer, and answer 204 (keep-alive)."""
    conn, _ = server.accept()
    buffer = memoryview(bytearray(MiB))
    pending = b""
    while True:
        while b"\r\n\r\n" not in pending:
            data = conn.recv(65536)
            if not data:
                conn.close()
                return
            pending += data
        head, _, pending = pending.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        left = length - len(pending)
        pending = b"" if left >= 0 else pending[length:]
        while left > 0 and (n := conn.recv_into(buffer[: min(MiB, left)])):
            left -= n
        conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")


def http_loopback(pool: bytes, total: int, chunk: int) -> dict[str, Any]:
    """What one HTTP stream can carry over 127.0.0.1 with the client the tus uploads use
    (requests.Session, bytes bodies of `chunk` bytes, keep-alive), into a raw socket sink
    in another process that only counts the body bytes."""
    server = _listener()
    child = _FORK.Process(target=_http_sink, args=(server,), daemon=True)
    child.start()
    body = (pool * (chunk // POOL + 1))[:chunk]
    host, port = server.getsockname()
    try:
        with requests.Session() as http:
            http.put(f"http://{host}:{port}/warm", data=b"x", timeout=30)
            sent = 0
            started = time.perf_counter()
            while sent < total:
                response = http.put(f"http://{host}:{port}/sink", data=body, timeout=120)
                assert response.status_code == 204
                sent += len(body)
            seconds = time.perf_counter() - started
    finally:
        server.close()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    return _rate(sent, seconds, request_bytes=chunk)


# --- Disk --------------------------------------------------------------------------------


def disk_write_fsync(folder: Path, pool: bytes, total: int, fsync_every: int) -> dict[str, Any]:
    """os.write of 1 MiB blocks into a new file in folder, fsync after every `fsync_every`
    bytes and at the end (as the service fsyncs each PATCH), timed to the last fsync."""
    path = folder / "raw-disk.bin"
    view = memoryview(pool)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        started = time.perf_counter()
        for at in range(0, total, MiB):
            block = view[at % POOL : at % POOL + MiB]
            while block:
                block = block[os.write(fd, block) :]
            if (at + MiB) % fsync_every == 0:
                os.fsync(fd)
        os.fsync(fd)
        seconds = time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
    return _rate(total, seconds, fsync_every=fsync_every)


def pread_ms(fd: int, offset: int, length: int) -> float:
    """One os.pread of length bytes at offset, in milliseconds."""
    started = time.perf_counter()
    data = os.pread(fd, length, offset)
    elapsed = time.perf_counter() - started
    assert len(data) == length
    return elapsed * 1e3
