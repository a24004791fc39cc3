"""The client side of the vault ingest benchmark: generated footage, a dock's sealing, a
lean tus 1.0 client (requests) that uploads a sealed file to a verified receipt, and a
signed-in reader of ranges.

The client does as little as a client can so the timings are the service's: each PATCH
body is one bytes object read from the (page-cached) sealed file and sent with one
sendall, and its `Upload-Checksum` was computed while sealing, on the dock's time."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from _common import percentile
from _vault_raw import pread_ms
from _vault_service import CAMERA, Server, World, sign_in

from evidence.upload_metadata import encode_tus_metadata, seal_for_ingest

MiB = 1024 * 1024
PATCH_BYTES = 64 * MiB  # per PATCH request, as tests/e2e/test_large_upload.py sends


class GeneratedMedia(io.RawIOBase):
    """`size` bytes of incompressible data from a random 1 MiB block, each MiB stamped
    with its index so no two are equal (a copy of tests/e2e/big_media.py, with `at` to
    recompute any range for checking reads)."""

    BLOCK = MiB

    def __init__(self, size: int, seed: bytes) -> None:
        self.size = size
        self.position = 0
        self._block = bytearray(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self.position)
        done = 0
        while done < want:
            index, offset = divmod(self.position, self.BLOCK)
            self._block[:8] = index.to_bytes(8, "big")
            take = min(self.BLOCK - offset, want - done)
            view[done : done + take] = self._block[offset : offset + take]
            done += take
            self.position += take
        return done

    def at(self, offset: int, length: int) -> bytes:
        self.position = offset
        out = bytearray(length)
        self.readinto(out)
        return bytes(out)


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_head(size: int) -> bytes:
    """ftyp, moov and the mdat header of a `size`-byte file whose mdat runs to its end
    (the top-level layout of tests/unit/camera_volumes.py's mp4_bytes, at any size)."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    moov = _box(b"moov", _box(b"mvhd", bytes(100)))
    mdat = size - len(ftyp) - len(moov)
    if not 8 <= mdat < 2**32:
        raise ValueError("the recording must leave room for an mdat of 32-bit size")
    return ftyp + moov + struct.pack(">I4s", mdat, b"mdat")


class Footage(io.RawIOBase):
    """A camera-shaped MP4 of `size` bytes: real ftyp/moov/mdat box headers, then
    `GeneratedMedia` (incompressible) as the mdat's payload, as the dock benchmark's
    recording. So the playback check each ingested item gets reads an MP4's boxes, as
    it would a camera's, instead of running FFmpeg's format probe over noise (about
    40 times the CPU). `at` recomputes any range, for checking reads."""

    def __init__(self, size: int, seed: bytes) -> None:
        self.size = size
        self.position = 0
        self._head = mp4_head(size)
        self._media = GeneratedMedia(size - len(self._head), seed)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        head = len(self._head)
        if self.position < head:
            done = min(len(view), head - self.position)
            view[:done] = self._head[self.position : self.position + done]
            self.position += done
        if done < len(view) and self.position >= head:
            self._media.position = self.position - head
            got = self._media.readinto(view[done:])
            self.position += got
            done += got
        return done

    def at(self, offset: int, length: int) -> bytes:
        self.position = offset
        out = bytearray(length)
        filled = 0
        while filled < length and (got := self.readinto(memoryview(out)[filled:])):
            filled += got
        return bytes(out[:filled])


class _ChunkHashingFile:
    """A write-only file that also SHA-256s every PATCH_BYTES-sized chunk of what it is
    given: the tus `Upload-Checksum` of each PATCH, computed in the sealing pass."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()
        self._filled = 0
        self.digests: list[bytes] = []

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            take = min(len(view), PATCH_BYTES - self._filled)
            self._hash.update(view[:take])
            self._handle.write(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == PATCH_BYTES:
                self._close_chunk()
        return total

    def _close_chunk(self) -> None:
        self.digests.append(self._hash.digest())
        self._hash, self._filled = hashlib.sha256(), 0

    def finish(self) -> list[bytes]:
        if self._filled:
            self._close_chunk()
        return self.digests


@dataclass
class Sealed:
    path: Path
    metadata: dict[str, bytes]
    plaintext_sha256: str
    plaintext_size: int
    ciphertext_size: int
    chunk_sha256: list[bytes]
    seed: bytes
    seconds: float  # the dock's time: sealing plus the chunk checksums


def seal(world: World, folder: Path, name: str, size: int) -> Sealed:
    """Seal `size` bytes of generated footage (`Footage`) as a dock does
    (evidence/upload_metadata)."""
    seed = os.urandom(MiB)
    path = folder / f"{name}.sealed"
    started = time.perf_counter()
    with path.open("wb") as out:
        hashing = _ChunkHashingFile(out)
        result, meta = seal_for_ingest(
            Footage(size, seed),  # type: ignore[arg-type]
            hashing,  # type: ignore[arg-type]
            ingest_public_key=world.ingest_public,
            ingest_key_version=world.ingest_version,
            camera_serial=CAMERA,
            file_identity=f"{name.upper()}.MP4@2026-12-01T09:00:00Z",
            file_name=f"{name.upper()}.MP4".encode(),
            media_type="video/mp4",
        )
        digests = hashing.finish()
        seconds = time.perf_counter() - started
        out.flush()
        os.fsync(out.fileno())  # not timed: so its writeback does not slow the service
    return Sealed(
        path,
        meta,
        result.plaintext_sha256,
        result.plaintext_size,
        result.ciphertext_size,
        digests,
        seed,
        seconds,
    )


@dataclass
class Upload:
    """One upload's timings (seconds from the first POST) and what the receipt said.

    Service CPU is (utime, stime) of all its processes: up to the last PATCH (bytes
    arriving), and from there on (the last PATCH, which verifies, and the receipt)."""

    seconds: float
    post_s: float
    patch_s: list[float]
    receipt_s: float
    client_gap_s: float  # the rest: the client between requests
    receipt_retries: int
    evidence_id: str
    receipt: dict[str, Any] = field(repr=False)
    client_cpu_s: float = 0.0
    service_cpu_bytes: tuple[float, float] = (0.0, 0.0)
    service_cpu_finish: tuple[float, float] = (0.0, 0.0)


def _since(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    return after[0] - before[0], after[1] - before[1]


def upload(
    http: requests.Session,
    base: str,
    world: World,
    sealed: Sealed,
    service_cpu: Callable[[], tuple[float, float]] | None = None,
) -> Upload:
    """POST, PATCH every chunk (with its checksum), GET the receipt; time the whole.

    The next chunk is read from the file on a helper thread while a PATCH is in flight,
    as a dock with a disk of its own would."""
    auth = {"Authorization": f"Bearer {world.dock_credential}", "Tus-Resumable": "1.0.0"}
    cpu = service_cpu or (lambda: (0.0, 0.0))
    client0, svc0 = time.process_time(), cpu()
    started = time.perf_counter()
    created = http.post(
        base + "/api/v1/uploads/",
        headers=auth
        | {
            "Upload-Length": str(sealed.ciphertext_size),
            "Upload-Metadata": encode_tus_metadata(sealed.metadata),
        },
        timeout=60,
    )
    if created.status_code != 201:
        raise RuntimeError(f"creation refused: {created.status_code} {created.text[:300]}")
    url = base + created.headers["Location"]
    post_s = time.perf_counter() - started
    patch_s: list[float] = []
    svc_last = svc0
    offset = 0
    with sealed.path.open("rb", buffering=0) as src, ThreadPoolExecutor(1) as reader:
        ahead = reader.submit(src.read, PATCH_BYTES)
        for digest in sealed.chunk_sha256:
            body = ahead.result()
            ahead = reader.submit(src.read, PATCH_BYTES)
            if offset + len(body) == sealed.ciphertext_size:
                svc_last = cpu()
            began = time.perf_counter()
            answer = http.patch(
                url,
                data=body,
                headers=auth
                | {
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset),
                    "Upload-Checksum": "sha256 " + base64.b64encode(digest).decode("ascii"),
                },
                timeout=600,
            )
            patch_s.append(time.perf_counter() - began)
            if answer.status_code != 204:
                raise RuntimeError(f"PATCH refused: {answer.status_code} {answer.text[:300]}")
            offset = int(answer.headers["Upload-Offset"])
            del body
    began = time.perf_counter()
    # A dock asks again when the receipt request fails; so do we, and count it (the
    # service's log then has the error).
    retries = 0
    while (answer := http.get(url + "/receipt", headers=auth, timeout=120)).status_code >= 500:
        if retries == 2:
            break
        retries += 1
    receipt = answer.json()
    done = time.perf_counter()
    if receipt.get("status") != "verified" or receipt.get("sha256") != sealed.plaintext_sha256:
        raise RuntimeError(f"not a verified receipt: {receipt}")
    seconds = done - started
    return Upload(
        seconds=seconds,
        post_s=post_s,
        patch_s=patch_s,
        receipt_s=done - began,
        receipt_retries=retries,
        client_gap_s=seconds - post_s - sum(patch_s) - (done - began),
        evidence_id=receipt["evidence_id"],
        receipt=receipt,
        client_cpu_s=time.process_time() - client0,
        service_cpu_bytes=_since(svc0, svc_last),
        service_cpu_finish=_since(svc_last, cpu()),
    )


def push(http: requests.Session, url: str, sealed: Sealed) -> float:
    """PATCH the sealed file to a plain sink in 64 MiB bodies, as `upload` sends them (the
    next chunk read while one is in flight); check each answer's digest; seconds taken."""
    started = time.perf_counter()
    with sealed.path.open("rb", buffering=0) as src, ThreadPoolExecutor(1) as reader:
        ahead = reader.submit(src.read, PATCH_BYTES)
        for digest in sealed.chunk_sha256:
            body = ahead.result()
            ahead = reader.submit(src.read, PATCH_BYTES)
            answer = http.patch(url, data=body, timeout=600)
            if answer.status_code != 200 or answer.text != digest.hex():
                raise RuntimeError(f"the sink answered {answer.status_code}")
            del body
    return time.perf_counter() - started


def read_latency(
    server: Server, world: World, item: str, sealed: Sealed, samples: int, obj: Path
) -> dict[str, Any]:
    """1 MiB ranges at random offsets through /evidence/<id>/stream, signed in as a
    supervisor on one keep-alive session; each answer checked against the footage. After
    each, a raw pread of the object's 1 MiB at that place (the storage alone)."""
    http = sign_in(server.base, world)
    url = f"{server.base}/evidence/{item}/stream?purpose=investigation"
    media = Footage(sealed.plaintext_size, sealed.seed)
    rng = random.Random(20261201)
    segment = int(sealed.metadata["segment_size"])
    fd = os.open(obj, os.O_RDONLY)
    warm, service, raw = [], [], []
    try:
        for n in range(samples + 5):
            start = rng.randrange(0, sealed.plaintext_size - MiB)
            began = time.perf_counter()
            answer = http.get(
                url, headers={"Range": f"bytes={start}-{start + MiB - 1}"}, timeout=60
            )
            body = answer.content
            elapsed = (time.perf_counter() - began) * 1e3
            if answer.status_code != 206 or body != media.at(start, MiB):
                raise RuntimeError(f"range read at {start} wrong: {answer.status_code}")
            (warm if n < 5 else service).append(elapsed)
            at = 64 + start // segment * (segment + 16)
            raw.append(pread_ms(fd, at, MiB))
    finally:
        os.close(fd)
        http.close()

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "n": len(values),
            "p50_ms": percentile(values, 0.5),
            "p95_ms": percentile(values, 0.95),
            "p99_ms": percentile(values, 0.99),
            "max_ms": max(values),
        }

    return {"service": stats(service), "warm_up_ms": warm, "raw_pread_1mib": stats(raw)}
