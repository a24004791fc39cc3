"""The dock's HTTP client of the evidence service: tus uploads that resume, and reports.

Transient failures (connection cuts, stalls, 5xx, 423 busy, 429) are retried with
exponential backoff and jitter; everything else is a `ServiceError` with the service's
reason. An upload always asks the service for its offset before sending, so bytes the
service confirmed are never sent twice, whatever happened to the last attempt."""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

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


class _SpoolRange:
    """size bytes of a spool file from offset, as a body with a known length (so the
    request carries Content-Length, never chunked encoding), read at the throttle's pace."""

    def __init__(self, path: Path, offset: int, size: int, throttle: Throttle) -> None:
        self._handle = path.open("rb")
        self._handle.seek(offset)
        self._left = size
        self._size = size
        self._throttle = throttle

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        want = min(want, PIECE)
        if want <= 0:
            return b""
        data = self._handle.read(want)
        self._throttle.take(len(data))
        self._left -= len(data)
        return data

    def __enter__(self) -> _SpoolRange:
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.close()


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
                while offset < length:
                    offset = self._patch(url, spool, offset, min(self.chunk_size, length - offset))
                    if progress:
                        progress(offset)
                return
            except ServiceError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                logger.warning("upload interrupted (%s); resuming in %.1f s", exc, delay)
                self._sleep(delay * (0.5 + random.random()))  # noqa: S311  (jitter)
                delay = min(delay * 2, self.max_backoff)

    def _patch(self, url: str, spool: Path, offset: int, size: int) -> int:
        digest = hashlib.sha256()
        with spool.open("rb") as handle:
            handle.seek(offset)
            left = size
            while left:
                piece = handle.read(min(PIECE, left))
                if not piece:
                    raise ServiceError(f"spool file {spool.name} is shorter than recorded")
                digest.update(piece)
                left -= len(piece)

        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": "sha256 " + base64.b64encode(digest.digest()).decode("ascii"),
        }
        with _SpoolRange(spool, offset, size, self.throttle) as body:
            response = self._check(self._once("PATCH", url, headers=headers, data=body), 204)
        return int(response.headers["Upload-Offset"])

    def receipt(self, url: str) -> dict[str, Any]:
        return dict(self.call("GET", url + "/receipt", 200).json())
