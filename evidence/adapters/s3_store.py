"""ObjectStore on S3 with Object Lock: checksummed, write-once, multipart uploads."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from evidence.adapters.local_store import check_key
from evidence.errors import NotAdoptable, ObjectExists, ObjectMissing, StorageError
from evidence.ports import StoredObject

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
STREAMED_PART_SIZE = 8 * MiB  # parts of an upload streamed while it arrives
# Uploads up to this size are stored with one PutObject once verified (`adopt_file`)
# instead of being streamed as parts: a multipart upload costs four requests for a
# 10 MiB clip, and its parts barely overlap a body that arrives in one PATCH.
ADOPT_LIMIT = 16 * MiB
LOCK_MODES = frozenset({"COMPLIANCE", "GOVERNANCE"})

# botocore retries every call (throttling such as SlowDown, 5xx, connection errors and
# timeouts) up to 8 times after the first try, with exponential backoff; "adaptive" also
# slows the client down while throttled. Our bodies are always bytes, which botocore
# rewinds and resends, so parts are covered too and we add no retry loop of our own
# (stacked retries multiply attempts). A retry that meets its own earlier, stored
# attempt is recognised in `_write_once`.
RETRIES = {"max_attempts": 8, "mode": "adaptive"}

_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
# 409 ConditionalRequestConflict (a concurrent conditional write) is not "exists": it
# stays a plain StorageError and the caller may try again.
_PRECONDITION = frozenset({"412", "PreconditionFailed"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


@contextlib.contextmanager
def _translated(action: str, key: str) -> Iterator[None]:
    """Turn botocore's exceptions into ours; messages carry codes, never credentials."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code in _MISSING:
            raise ObjectMissing(f"no object under {key}") from exc
        if code in _PRECONDITION:
            raise ObjectExists(f"object {key} already exists (write-once)") from exc
        raise StorageError(f"cannot {action} {key}: S3 answered {code}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"cannot {action} {key}: {type(exc).__name__}") from exc


def _utc_ceil(when: datetime) -> datetime:
    """UTC, rounded up to the second: S3 headers carry whole seconds, and rounding down
    would shorten the retention we were asked for."""
    if when.tzinfo is None:
        raise ValueError("retention times must be timezone-aware")
    when = when.astimezone(UTC)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when


def _b64_sha256(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class _BufferBody(io.RawIOBase):
    """A part held in a caller's reusable buffer, as the file-like body boto3 sends: read
    where it lies, a socket write's worth at a time, and seekable (botocore measures it
    and rewinds it to retry). boto3 would send a bytearray itself over HTTP, but not to
    every S3 client (moto's in-process one refuses it), and copying each part to bytes
    first cost a fresh, page-faulted part-sized buffer per part."""

    def __init__(self, data: bytearray | memoryview) -> None:
        super().__init__()
        self._view = memoryview(data).cast("B")
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._position + size
        piece = bytes(self._view[self._position : end])
        self._position += len(piece)
        return piece

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        piece = self._view[self._position : self._position + len(target)]
        target[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Up to n bytes, fewer only at end of stream (raw streams may return short reads)."""
    data = src.read(n)
    if len(data) == n or not data:
        return data
    pieces, got = [data], len(data)
    while got < n and (more := src.read(n - got)):
        pieces.append(more)
        got += len(more)
    return b"".join(pieces)


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    if any(part in {"", ".", ".."} for part in prefix.split("/")):
        raise StorageError(f"invalid S3 prefix {prefix!r}")
    return prefix + "/"


class S3ObjectStore:
    """Objects under `prefix + key` in one bucket that has Object Lock enabled.

    Writes are write-once twice over: a HeadObject check gives a clear error, and
    `If-None-Match: *` on PutObject/CompleteMultipartUpload makes S3 itself refuse a
    key that another writer created in between. Every part carries a SHA-256 checksum
    that S3 verifies on arrival. Retention uses Object Lock (COMPLIANCE by default),
    which on real S3 not even the account root can shorten or bypass.

    `client` is a boto3 S3 client; build one with `from_url`. Nothing secret is
    logged: no credentials, no presigned URLs."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        part_size: int = 16 * MiB,
        lock_mode: str = "COMPLIANCE",
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        if lock_mode not in LOCK_MODES:
            raise ValueError(f"lock_mode must be one of {sorted(LOCK_MODES)}")
        self.client = client
        self.bucket = bucket
        self.prefix = _normalise_prefix(prefix)
        self.part_size = part_size
        self.lock_mode = lock_mode

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = 16 * MiB,
        lock_mode: str = "COMPLIANCE",
    ) -> S3ObjectStore:
        """A store for `s3://bucket/prefix`, with credentials from boto3's default chain
        (environment, shared config, instance role) and retries as in `RETRIES`.

        endpoint_url selects an S3-compatible service (MinIO, a test server) and then
        path-style addressing."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise StorageError("object store URL must look like s3://bucket/prefix")
        # Bodies are not hashed again for the request signature: every write carries
        # a signed x-amz-checksum-sha256 header that S3 checks the body against, which
        # is what botocore already relies on over HTTPS (one SHA-256 pass per byte less
        # where an endpoint is plain HTTP, as a local S3-compatible store may be).
        s3_options: dict[str, Any] = {"payload_signing_enabled": False}
        if endpoint_url:
            s3_options["addressing_style"] = "path"
        config = Config(retries=dict(RETRIES), s3=s3_options)
        with _translated("configure a client for", url):
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        return cls(
            client, parts.netloc, prefix=parts.path, part_size=part_size, lock_mode=lock_mode
        )

    # --- writing ------------------------------------------------------------------------

    def put(
        self,
        key: str,
        src: BinaryIO,
        *,
        size: int | None = None,
        retain_until: datetime | None = None,
    ) -> StoredObject:
        """Upload src under key: one PutObject up to part_size, multipart beyond.

        Memory holds about one part. A failed multipart upload is aborted, so S3 never
        assembles a partial object. `size`, when given, must match the bytes read.
        Exceptions raised by src propagate unchanged (after the abort)."""
        check_key(key)
        if size is not None and size > MAX_PARTS * self.part_size:
            raise StorageError(f"{key}: {size} bytes need more than {MAX_PARTS} parts")
        name = self.prefix + key
        if self._find(name, key) is not None:
            raise ObjectExists(f"object {key} already exists (write-once)")
        return self._upload(name, key, src, size, self._lock_args(retain_until))

    @property
    def adopt_limit(self) -> int:
        """The largest staged file `adopt_file` takes (one PutObject)."""
        return min(self.part_size, ADOPT_LIMIT)

    def adopt_file(
        self,
        key: str,
        path: Path,
        *,
        size: int,
        sha256: str,
        inode: tuple[int, int],
        retain_until: datetime | None = None,
    ) -> StoredObject:
        """Store a staged file the caller has already read back in full and hashed
        (`sha256`, `size`, of the file whose (st_dev, st_ino) is `inode`) with one
        PutObject carrying that SHA-256 as its checksum: S3 refuses a body that does
        not match it, so what the caller verified is what is stored, without reading
        the object back. Write-once, as `put`.

        `NotAdoptable` when it cannot be (larger than `adopt_limit`, another inode or
        size at path): nothing is stored; the caller stores the file and reads it back."""
        check_key(key)
        if size > self.adopt_limit:
            raise NotAdoptable(f"{key}: {size} bytes is over one PutObject's share here")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise NotAdoptable(f"staged file {path.name}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as src:
            st = os.fstat(fd)
            if (
                not stat.S_ISREG(st.st_mode)
                or (st.st_dev, st.st_ino) != inode
                or st.st_size != size
            ):
                raise NotAdoptable(f"staged file {path.name} is not the file that was verified")
            name = self.prefix + key
            if self._find(name, key) is not None:
                raise ObjectExists(f"object {key} already exists (write-once)")
            lock = self._lock_args(retain_until)
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
            self._put_once(name, key, src, checksum, size, lock)
        logger.debug("stored %s (%d bytes, verified as it arrived)", key, size)
        return StoredObject(key=key, size=size, sha256=sha256)

    def begin_streamed(self, key: str) -> StreamedPut:
        """Start a multipart upload that is fed parts as they become known (an upload
        still arriving); `StreamedPut.complete` makes it the object, write-once."""
        check_key(key)
        name = self.prefix + key
        if self._find(name, key) is not None:
            raise ObjectExists(f"object {key} already exists (write-once)")
        with _translated("start an upload of", key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=name, ChecksumAlgorithm="SHA256"
            )["UploadId"]
        return StreamedPut(self, name, key, upload_id)

    def extend_retention(self, key: str, until: datetime) -> None:
        """Lock the current version until at least `until`; a later date already in place
        stays (asking for less is a no-op, not an error).

        Real S3 refuses to shorten COMPLIANCE retention, but S3-compatible stores and
        moto let it happen, so we read the current date first and never send a shorter
        one. A COMPLIANCE lock is never downgraded to GOVERNANCE. HeadObject shows the
        retention only with s3:GetObjectRetention; grant it, or this check sees none."""
        check_key(key)
        name, until = self.prefix + key, _utc_ceil(until)
        head = self._head(name, key)
        current, mode = self._retention_of(head), head.get("ObjectLockMode")
        if current is not None and until <= current:
            logger.debug("%s is already retained until %s", key, current.isoformat())
            return
        args: dict[str, Any] = {"VersionId": head["VersionId"]} if "VersionId" in head else {}
        retention = {"Mode": "COMPLIANCE" if mode == "COMPLIANCE" else self.lock_mode}
        with _translated("extend the retention of", key):
            self.client.put_object_retention(
                Bucket=self.bucket,
                Key=name,
                Retention={**retention, "RetainUntilDate": until},
                **args,
            )

    def delete(self, key: str) -> None:
        """Permanently delete the current version; Object Lock refusal → `StorageError`.

        A plain DeleteObject on a versioned bucket only stacks a delete marker on top
        of the data, so we name the version."""
        check_key(key)
        name = self.prefix + key
        head = self._find(name, key)
        if head is None:
            return
        args: dict[str, Any] = {"VersionId": head["VersionId"]} if "VersionId" in head else {}
        with _translated("delete", key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=name, **args)
            except ClientError as exc:
                if _code(exc) == "AccessDenied":  # what Object Lock answers
                    raise StorageError(f"S3 refused to delete {key} (retained?)") from exc
                raise

    # --- reading ------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        check_key(key)
        return self._find(self.prefix + key, key) is not None

    def size(self, key: str) -> int:
        check_key(key)
        return int(self._head(self.prefix + key, key)["ContentLength"])

    def retained_until(self, key: str) -> datetime | None:
        """The Object Lock retain-until date of the current version, or None."""
        check_key(key)
        return self._retention_of(self._head(self.prefix + key, key))

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Up to length bytes from start with a ranged GetObject; b"" from the end on."""
        if start < 0 or length < 0:
            raise ValueError("start and length must not be negative")
        check_key(key)
        name = self.prefix + key
        if length == 0:
            self._head(name, key)
            return b""
        with _translated("read", key):
            try:
                response = self.client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={start}-{start + length - 1}"
                )
            except ClientError as exc:
                if _code(exc) == "InvalidRange":  # 416 from the end on: the object is over
                    return b""
                raise
            return bytes(response["Body"].read())

    def iter_bytes(self, key: str, chunk_size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        """The object in chunks; the GetObject is sent now, so `ObjectMissing` is raised
        by this call. A connection lost mid-body is not resumed (`StorageError`)."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        check_key(key)
        with _translated("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        return self._chunks(key, body, chunk_size)

    # --- internals ----------------------------------------------------------------------

    @staticmethod
    def _chunks(key: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            with _translated("read", key):
                for chunk in body.iter_chunks(chunk_size):
                    if chunk:
                        yield bytes(chunk)
        finally:
            body.close()

    def _head(self, name: str, key: str) -> dict[str, Any]:
        with _translated("look up", key):
            return dict(self.client.head_object(Bucket=self.bucket, Key=name))

    def _find(self, name: str, key: str) -> dict[str, Any] | None:
        try:
            return self._head(name, key)
        except ObjectMissing:
            return None

    @staticmethod
    def _retention_of(head: dict[str, Any] | None) -> datetime | None:
        until = (head or {}).get("ObjectLockRetainUntilDate")
        return until.astimezone(UTC) if isinstance(until, datetime) else None

    def _lock_args(self, retain_until: datetime | None, mode: str | None = None) -> dict[str, Any]:
        if retain_until is None:
            return {}
        return {
            "ObjectLockMode": mode or self.lock_mode,
            "ObjectLockRetainUntilDate": _utc_ceil(retain_until),
        }

    def _upload(
        self, name: str, key: str, src: BinaryIO, size: int | None, lock: dict[str, Any]
    ) -> StoredObject:
        first = _read_full(src, self.part_size)
        single = len(first) < self.part_size
        if not single and size == self.part_size:
            if src.read(1):  # declared as exactly one part: make sure nothing follows
                raise StorageError(f"{key}: source is longer than the declared {size} bytes")
            single = True
        if single:
            self._check_size(key, size, len(first))
            checksum = _b64_sha256(first)
            self._put_once(name, key, first, checksum, len(first), lock)
            logger.debug("stored %s (%d bytes)", key, len(first))
            return StoredObject(key=key, size=len(first), sha256=hashlib.sha256(first).hexdigest())
        pending = [first]
        del first  # _multipart must hold the only reference to drop it after sending
        return self._multipart(name, key, pending, src, size, lock)

    def _put_once(
        self,
        name: str,
        key: str,
        body: bytes | BinaryIO,
        checksum: str,
        size: int,
        lock: dict[str, Any],
    ) -> None:
        """One conditional PutObject (If-None-Match) whose body S3 checks against the
        base64 SHA-256 `checksum`, carrying its Object Lock.

        Unlike a multipart upload's (`_ensure_retention`), a PutObject's lock headers
        are applied with the object or the put is refused, and the production start-up
        check (`self_check`) proves the bucket does so with a locked PutObject of its
        own; so no HEAD follows each put to look again."""
        with self._write_once("store", name, key, (checksum, size, lock)):
            self.client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=body,
                ContentLength=size,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
                IfNoneMatch="*",
                **lock,
            )

    def _multipart(
        self,
        name: str,
        key: str,
        first: list[bytes],
        src: BinaryIO,
        size: int | None,
        lock: dict[str, Any],
    ) -> StoredObject:
        """Upload src in parts after the already-read first part (handed over in a list so
        that this frame holds the only reference and can drop it once it is sent)."""
        with _translated("start an upload of", key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=name, ChecksumAlgorithm="SHA256", **lock
            )["UploadId"]
        total, count = hashlib.sha256(), 0
        parts: list[dict[str, Any]] = []
        chunk = first.pop()
        try:
            while chunk:
                if len(parts) == MAX_PARTS:
                    raise StorageError(f"{key}: more than {MAX_PARTS} parts; raise part_size")
                count += len(chunk)
                if size is not None and count > size:
                    raise StorageError(f"{key}: source is longer than the declared {size} bytes")
                total.update(chunk)
                parts.append(self._upload_part(name, key, upload_id, len(parts) + 1, chunk))
                chunk = b""  # drop the sent part before reading the next one
                chunk = _read_full(src, self.part_size)
            self._check_size(key, size, count)
            composite = hashlib.sha256(
                b"".join(base64.b64decode(part["ChecksumSHA256"]) for part in parts)
            ).digest()
            expected = (base64.b64encode(composite).decode("ascii"), count, lock)
            with self._write_once("complete the upload of", name, key, expected):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                )
        except BaseException:
            self._abort(name, key, upload_id)
            raise
        self._ensure_retention(name, key, lock)
        logger.debug("stored %s (%d bytes, %d parts)", key, count, len(parts))
        return StoredObject(key=key, size=count, sha256=total.hexdigest())

    @contextlib.contextmanager
    def _write_once(
        self, action: str, name: str, key: str, expected: tuple[str, int, dict[str, Any]]
    ) -> Iterator[None]:
        """Translate a conditional write's errors, but accept its 412 when the object
        under name is exactly what we sent (checksum, size, lock).

        botocore retries a request whose response was lost (connection reset, a 5xx
        from a proxy after S3 stored it); the retry then meets our own first attempt
        and If-None-Match refuses it. Without this check we would report "exists" for
        an object we stored, retained and can no longer delete."""
        with _translated(action, key):
            try:
                yield
            except ClientError as exc:
                if _code(exc) not in _PRECONDITION or not self._holds(name, *expected):
                    raise
                logger.info("%s: a retried write found its own first attempt stored", key)

    def _holds(self, name: str, checksum: str, size: int, lock: dict[str, Any]) -> bool:
        head = self.client.head_object(Bucket=self.bucket, Key=name, ChecksumMode="ENABLED")
        stored = (
            str(head.get("ChecksumSHA256", "")).split("-")[0],  # composite: "<b64>-<parts>"
            head.get("ContentLength"),
            head.get("ObjectLockMode"),
            self._retention_of(head),
        )
        wanted = (checksum, size, lock.get("ObjectLockMode"), lock.get("ObjectLockRetainUntilDate"))
        return stored == wanted

    def _ensure_retention(self, name: str, key: str, lock: dict[str, Any]) -> None:
        """Check that the stored version carries the lock we asked for, and set it if not.

        Real S3 applies Object Lock headers given to CreateMultipartUpload; moto 5.2 and
        some S3-compatible stores drop them. A HEAD per retained multipart upload is
        cheap next to storing evidence that could silently be deleted."""
        if not lock:
            return
        head = self._head(name, key)
        current, mode = self._retention_of(head), head.get("ObjectLockMode")
        until, wanted = lock["ObjectLockRetainUntilDate"], lock["ObjectLockMode"]
        if current is not None and current >= until and mode in {wanted, "COMPLIANCE"}:
            return
        logger.warning("%s was stored without its Object Lock; setting it now", key)
        args: dict[str, Any] = {"VersionId": head["VersionId"]} if "VersionId" in head else {}
        with _translated("set the retention of", key):
            self.client.put_object_retention(
                Bucket=self.bucket,
                Key=name,
                Retention={"Mode": wanted, "RetainUntilDate": until},
                **args,
            )

    def _upload_part(
        self,
        name: str,
        key: str,
        upload_id: str,
        number: int,
        chunk: bytes | bytearray | memoryview,
    ) -> dict[str, Any]:
        checksum = _b64_sha256(chunk)
        body: bytes | _BufferBody = chunk if isinstance(chunk, bytes) else _BufferBody(chunk)
        with _translated("upload a part of", key):
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}

    def _abort(self, name: str, key: str, upload_id: str) -> None:
        """Best effort: the original failure is what the caller needs to see. A bucket
        lifecycle rule (AbortIncompleteMultipartUpload) is the backstop for this."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            logger.warning("could not abort the multipart upload of %s", key)

    @staticmethod
    def _check_size(key: str, size: int | None, count: int) -> None:
        if size is not None and size != count:
            raise StorageError(f"{key}: read {count} bytes, expected {size}")


class StreamedPut:
    """One multipart upload fed part by part, possibly from several threads.

    Parts carry SHA-256 checksums that S3 checks on arrival; `complete` checks the
    part count against the bytes sent and assembles the object with If-None-Match, so
    what S3 holds is exactly the parts' bytes. Anything short of `complete` should end
    in `abort` (a bucket lifecycle rule is the backstop, as for every multipart)."""

    def __init__(self, store: S3ObjectStore, name: str, key: str, upload_id: str) -> None:
        # Smaller parts than a whole put's: a part starts on its way as soon as it is
        # verified, so the upload's last PATCH waits for less (at most 10,000 parts of
        # 8 MiB: 78 GiB per object)
        self.part_size = min(store.part_size, STREAMED_PART_SIZE)
        self.key = key
        self._store, self._name, self._upload_id = store, name, upload_id
        self._parts: dict[int, dict[str, Any]] = {}
        self._sizes: dict[int, int] = {}
        self._lock = threading.Lock()

    def send(self, number: int, chunk: bytes | bytearray | memoryview) -> None:
        """Upload part `number` (1-based); every part but the last is `part_size` long."""
        if not 1 <= number <= MAX_PARTS:
            raise StorageError(f"{self.key}: part {number} is outside 1..{MAX_PARTS}")
        part = self._store._upload_part(self._name, self.key, self._upload_id, number, chunk)
        with self._lock:
            self._parts[number], self._sizes[number] = part, len(chunk)

    def complete(self, size: int) -> str:
        """Assemble the object from parts 1..N covering exactly `size` bytes; returns
        the composite SHA-256 checksum S3 holds for it."""
        with self._lock:
            numbers = sorted(self._parts)
            sizes = [self._sizes[n] for n in numbers]
            parts = [self._parts[n] for n in numbers]
        if numbers != list(range(1, len(numbers) + 1)) or sum(sizes) != size:
            raise StorageError(f"{self.key}: the parts sent do not cover {size} bytes")
        if any(n != self.part_size for n in sizes[:-1]):
            raise StorageError(f"{self.key}: a part before the last is not full size")
        composite = hashlib.sha256(
            b"".join(base64.b64decode(part["ChecksumSHA256"]) for part in parts)
        ).digest()
        checksum = base64.b64encode(composite).decode("ascii")
        with self._store._write_once(
            "complete the upload of", self._name, self.key, (checksum, size, {})
        ):
            self._store.client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        logger.debug("stored %s (%d bytes, %d parts, streamed)", self.key, size, len(parts))
        return checksum

    def abort(self) -> None:
        self._store._abort(self._name, self.key, self._upload_id)


def self_check(store: S3ObjectStore, *, now: datetime | None = None) -> None:
    """Prove at start-up that the bucket enforces Object Lock and write-once conditional
    puts; `StorageError` if not.

    Reads the bucket's Object Lock configuration, writes a small probe under
    `<prefix>_selfcheck/<random>` with one day of COMPLIANCE retention, and tries to
    delete that exact version. A delete that succeeds means retention is not enforced
    (no Object Lock, versioning off, or an S3-compatible store that ignores the
    headers). Each run leaves one probe that S3 keeps for a day; expire `_selfcheck/`
    with a lifecycle rule. An IAM policy denying DeleteObjectVersion also refuses the
    delete, so the probe's recorded lock mode is checked as well. Last, a second
    conditional put under the probe's key must be refused (412)."""
    client, bucket = store.client, store.bucket
    with _translated("read the Object Lock configuration of bucket", bucket):
        try:
            config = client.get_object_lock_configuration(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            config = {}
    if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
        raise StorageError(f"Object Lock is not enforced: bucket {bucket} has it disabled")
    key = f"{store.prefix}_selfcheck/{secrets.token_hex(16)}"
    until = (now or datetime.now(UTC)) + timedelta(days=1)
    with _translated("write the self-check probe", key):
        response = _put_probe(
            client, bucket, key, b"object lock self-check\n", store._lock_args(until, "COMPLIANCE")
        )
    version = response.get("VersionId")
    if not version or version == "null":
        raise StorageError(f"Object Lock is not enforced: bucket {bucket} is not versioned")
    try:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    except ClientError as exc:
        if _code(exc) != "AccessDenied":
            raise StorageError(f"self-check delete failed oddly: {_code(exc)}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"self-check delete failed: {type(exc).__name__}") from exc
    else:
        raise StorageError(f"Object Lock is not enforced: bucket {bucket} let a retained delete")
    with _translated("re-read the self-check probe", key):
        head = client.head_object(Bucket=bucket, Key=key, VersionId=version)
    if head.get("ObjectLockMode") != "COMPLIANCE":
        raise StorageError(f"Object Lock is not enforced: bucket {bucket} dropped the lock")
    _check_conditional_writes(client, bucket, key)
    logger.info("Object Lock self-check passed on bucket %s", bucket)


def _put_probe(
    client: Any, bucket: str, key: str, body: bytes, lock: dict[str, Any]
) -> dict[str, Any]:
    """One conditional (If-None-Match: *), checksummed PutObject of a self-check probe."""
    return dict(
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=_b64_sha256(body),
            IfNoneMatch="*",
            **lock,
        )
    )


def _check_conditional_writes(client: Any, bucket: str, key: str) -> None:
    """Write-once rests on conditional writes (If-None-Match: *) as much as on the lock:
    a second put under the probe's key must be refused. A store that ignores the
    condition would put a new current version over an original; its stray version is
    removed (it is not retained) and the check fails."""
    try:
        with _translated("test a conditional write under", key):
            response = _put_probe(client, bucket, key, b"a second write under this key\n", {})
    except ObjectExists:
        return
    version = response.get("VersionId")
    if version:
        with contextlib.suppress(ClientError, BotoCoreError):
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    raise StorageError(
        f"write-once is not enforced: bucket {bucket} let a conditional put (If-None-Match) "
        "overwrite an object"
    )
