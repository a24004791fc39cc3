"""The dock's HTTP client of the evidence service: tus uploads that resume, and reports.

Transient failures (connection cuts, stalls, 5xx, 423 busy, 429) are retried with
exponential backoff and jitter; everything else is a `ServiceError` with the service's
reason. An upload always asks the service for its offset before sending, so bytes the
service confirmed are never sent twice, whatever happened to the last attempt."""

from __future__ import annotations

import base64
import hashlib
import logging
import mmap
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from evidence.direct_io import ALIGN, aligned_buffer, open_direct, read_range
from evidence.upload_metadata import encode_tus_metadata

logger = logging.getLogger(__name__)
TUS = {"Tus-Resumable": "1.0.0"}
RETRYABLE_STATUS = {408, 423, 429, 500, 502, 503, 504}
CHUNK = 16 * 1024 * 1024
PIECE = 256 * 1024


class ServiceError(Exception):
    """The service refused or could not be reached; `retryable` says whether to try later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retryable = retryable


class Throttle:
    """A token bucket shared by all uploads: at most `rate` bytes per second overall."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + n / self.rate
            wait = start - now
        if wait > 0:
            time.sleep(wait)  # pacing the link, by design


class _Chunk:
    """One PATCH body, read from the spool, and its SHA-256 (for Upload-Checksum). `data`
    is a view of one of `_Chunks`' two buffers: valid until the next chunk but one is
    read, that is while this one is being sent."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.digest = hashlib.sha256(data).digest()


class _Chunks:
    """The spool file's PATCH bodies, each read once and hashed while the one before is
    sent: the next chunk is read and hashed on a helper thread (hashlib and the read
    release the GIL), so the upload neither pauses to hash nor reads a chunk twice.
    Memory: two page-aligned buffers of one chunk, reused. The spool is read with direct
    I/O where its filesystem allows (its writer wrote it so, dock/_spool_writer.py):
    taking it into the page cache on the way out cost the dock more system time than
    the disk needed to read it. The offset asked for is the service's; a chunk read
    ahead for another offset (after a cut) is dropped."""

    def __init__(self, path: Path, length: int, size: int) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._direct = open_direct(path, os.O_RDONLY, like=self._fd)
        if self._direct is None:
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        self._name = path.name
        self._length = length
        self._size = size
        self._buffers = [aligned_buffer(size + 2 * ALIGN) for _ in range(2)]
        self._turn = 0  # the buffer the next read goes into
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="patch-sha256")
        self._ahead: tuple[int, Future[_Chunk]] | None = None

    def _read(self, offset: int, buffer: mmap.mmap) -> _Chunk:
        want = min(self._size, self._length - offset)
        direct = self._direct is not None
        try:
            fd = self._fd if self._direct is None else self._direct
            data = read_range(fd, direct, buffer, offset, offset + want)
        except OSError:
            raise ServiceError(f"spool file {self._name} is shorter than recorded") from None
        return _Chunk(data)

    def _submit(self, offset: int) -> Future[_Chunk]:
        # One reader thread takes reads in order, so a read into a buffer never starts
        # before the read submitted into it earlier has finished.
        buffer = self._buffers[self._turn]
        self._turn ^= 1
        return self._pool.submit(self._read, offset, buffer)

    def at(self, offset: int) -> _Chunk:
        ahead, self._ahead = self._ahead, None
        future = ahead[1] if ahead and ahead[0] == offset else None
        if future is None:
            future = self._submit(offset)
        chunk = future.result()
        following = offset + len(chunk.data)
        if following < self._length:
            self._ahead = (following, self._submit(following))
        return chunk

    def __enter__(self) -> _Chunks:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        os.close(self._fd)
        if self._direct is not None:
            os.close(self._direct)
        # the buffers are left to the collector: a chunk handed out may still be referenced


class _Paced:
    """A chunk as a body read at the throttle's pace, with a known length (so the
    request carries Content-Length, never chunked encoding)."""

    def __init__(self, data: memoryview, throttle: Throttle) -> None:
        self._view = data
        self._throttle = throttle

    def __len__(self) -> int:
        return len(self._view)

    def read(self, n: int = -1) -> bytes:
        want = len(self._view) if n is None or n < 0 else n
        piece, self._view = self._view[: min(want, PIECE)], self._view[min(want, PIECE) :]
        self._throttle.take(len(piece))
        return bytes(piece)


def _reason(response: requests.Response) -> tuple[str | None, str]:
    try:
        error = response.json().get("error", {})
        return error.get("reason"), str(error.get("detail") or error.get("title") or "")
    except ValueError:
        return None, response.text[:200]


class ServiceClient:
    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        timeout: tuple[float, float] = (10.0, 120.0),
        attempts: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        bandwidth: float | None = None,
        chunk_size: int = CHUNK,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {credential}"}
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.throttle = Throttle(bandwidth)
        self.chunk_size = chunk_size
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ServiceClient({self.base!r})"  # never the credential

    @property
    def _http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def _once(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self._auth, **kwargs.pop("headers", {})}
        try:
            return self._http.request(
                method, self._url(path), headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise ServiceError(
                f"cannot reach the service: {exc.__class__.__name__}", retryable=True
            ) from None

    def _check(self, response: requests.Response, *ok: int) -> requests.Response:
        if response.status_code in ok:
            return response
        reason, detail = _reason(response)
        raise ServiceError(
            f"{response.request.method} {response.url.split('?')[0]}: "
            f"{response.status_code} {reason or ''} {detail}".strip(),
            status=response.status_code,
            reason=reason,
            retryable=response.status_code in RETRYABLE_STATUS,
        )

    def _retrying(self, action: Callable[[], Any]) -> Any:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return action()
            except ServiceError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                logger.warning("%s; retrying in %.1f s (attempt %d)", exc, delay, attempt)
                self._sleep(delay * (0.5 + random.random()))  # noqa: S311  (jitter)
                delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, path: str, *ok: int, **kwargs: Any) -> requests.Response:
        return self._retrying(lambda: self._check(self._once(method, path, **kwargs), *ok))  # type: ignore[no-any-return]

    # --- reports ----------------------------------------------------------------------

    def cameras(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/v1/docks/cameras", 200).json()["cameras"])

    def heartbeat(self, state: dict[str, Any]) -> None:
        self.call("POST", "/api/v1/docks/heartbeat", 204, json=state)

    def post_session(self, report: dict[str, Any]) -> None:
        self.call("POST", "/api/v1/docks/sessions", 201, json=report)

    def post_activations(self, body: dict[str, Any]) -> int:
        return int(self.call("POST", "/api/v1/docks/activations", 201, json=body).json()["added"])

    def post_wipe(self, evidence_id: str, sha256: str, session_id: str) -> None:
        body = {"evidence_id": evidence_id, "sha256": sha256, "session_id": session_id}
        self.call("POST", "/api/v1/docks/wipes", 204, json=body)

    # --- uploads ----------------------------------------------------------------------

    def create_upload(self, length: int, metadata: dict[str, bytes]) -> str:
        headers = {
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": encode_tus_metadata(metadata),
        }
        response = self.call("POST", "/api/v1/uploads/", 201, headers=headers)
        return self._url(response.headers["Location"])

    def offset(self, url: str) -> int | None:
        """What the service has kept of an upload; None if it is closed or unknown."""
        response = self._retrying(lambda: self._once("HEAD", url, headers=TUS))
        if response.status_code in (404, 410):
            return None
        self._check(response, 200)
        return int(response.headers["Upload-Offset"])

    def upload(
        self, url: str, spool: Path, length: int, *, progress: Callable[[int], None] | None = None
    ) -> None:
        """Send spool to url from the service's offset on, resuming after any failure."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                offset = self.offset(url)
                if offset is None:
                    raise ServiceError("the upload was closed by the service", status=410)
                with _Chunks(spool, length, self.chunk_size) as chunks:
                    while offset < length:
                        offset = self._patch(url, offset, chunks.at(offset))
                        if progress:
                            progress(offset)
                return
            except ServiceError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                logger.warning("upload interrupted (%s); resuming in %.1f s", exc, delay)
                self._sleep(delay * (0.5 + random.random()))  # noqa: S311  (jitter)
                delay = min(delay * 2, self.max_backoff)

    def _patch(self, url: str, offset: int, chunk: _Chunk) -> int:
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": "sha256 " + base64.b64encode(chunk.digest).decode("ascii"),
        }
        if self.throttle.rate:
            body: Any = _Paced(chunk.data, self.throttle)
        else:
            body = chunk.data  # one sendall from memory
        response = self._check(self._once("PATCH", url, headers=headers, data=body), 204)
        return int(response.headers["Upload-Offset"])

    def receipt(self, url: str) -> dict[str, Any]:
        return dict(self.call("GET", url + "/receipt", 200).json())
