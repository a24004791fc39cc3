"""The ObjectStore contract on a local folder, on moto in process and on a moto HTTP server."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session
from moto import mock_aws

from evidence.adapters.local_store import LocalObjectStore
from evidence.adapters.s3_store import S3ObjectStore, self_check
from evidence.errors import NotAdoptable, ObjectMissing, StorageError
from evidence.ports import ObjectStore

MiB = 1024 * 1024
PART = 5 * MiB  # S3's minimum part size, so that ~11 MiB makes three parts
BIG = 11 * MiB + 123
REGION = "us-east-1"
INVALID_KEYS = ["../x", "/abs", "A", "", "a/../b", "a//b", "a/", "a.b", "x" * 201, "é", "a\x00"]


def now() -> datetime:
    return datetime.now(UTC)


class FailingSource(io.RawIOBase):
    """Yields data up to fail_at, then raises on the next read (a dropped upload)."""

    def __init__(self, data: bytes, fail_at: int, on_fail: Callable[[], None] = lambda: None):
        self._data, self._pos, self._fail_at, self._on_fail = data, 0, fail_at, on_fail

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._pos >= self._fail_at:
            self._on_fail()
            raise RuntimeError("camera dock went away")
        end = min(self._fail_at, self._pos + (n if n >= 0 else len(self._data)))
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk


class RacingSource(io.BytesIO):
    """Runs `race` on the first read: another writer acting after our existence check."""

    def __init__(self, data: bytes, race: Callable[[], None]):
        super().__init__(data)
        self._race: Callable[[], None] | None = race

    def read(self, n: int | None = -1) -> bytes:
        if self._race is not None:
            race, self._race = self._race, None
            race()
        return super().read(n)


# --- fixtures ------------------------------------------------------------------------


@dataclass
class S3:
    kind: str  # "moto" (in process) or "server" (HTTP over loopback)
    store: S3ObjectStore
    client: Any
    bucket: str

    def name(self, key: str) -> str:
        return self.store.prefix + key

    def pending_uploads(self) -> list[Any]:
        return list(self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))

    def versions(self, key: str) -> list[Any]:
        listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=self.name(key))
        return [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]


@contextlib.contextmanager
def s3_backend(kind: str, request: pytest.FixtureRequest) -> Iterator[S3]:
    request.getfixturevalue("aws_env")
    endpoint = request.getfixturevalue("moto_server") if kind == "server" else None
    with mock_aws() if kind == "moto" else contextlib.nullcontext():
        bucket = f"evidence-{secrets.token_hex(6)}"
        store = S3ObjectStore.from_url(
            f"s3://{bucket}/vault", endpoint_url=endpoint, region=REGION, part_size=PART
        )
        store.client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        yield S3(kind, store, store.client, bucket)


@pytest.fixture(params=["local", "moto", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "objects")
        return
    with s3_backend(request.param, request) as s3:
        yield s3.store


@pytest.fixture(params=["moto", "server"])
def s3(request: pytest.FixtureRequest) -> Iterator[S3]:
    with s3_backend(request.param, request) as backend:
        yield backend


@pytest.fixture
def s3_server(request: pytest.FixtureRequest) -> Iterator[S3]:
    """Only over HTTP can a fault stop a request before it reaches moto: in process,
    moto's own before-send hook handles every request whatever ours answers."""
    with s3_backend("server", request) as backend:
        yield backend


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


# --- the contract, on every store ------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1000, BIG], ids=["empty", "small", "multipart"])
def test_put_then_read_returns_the_same_bytes(store: ObjectStore, length: int) -> None:
    data = os.urandom(length)
    stored = store.put("clips/c1", io.BytesIO(data), size=length)
    assert (stored.key, stored.size) == ("clips/c1", length)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists("clips/c1")
    assert store.size("clips/c1") == length
    assert store.read_range("clips/c1", 0, length + 10) == data
    chunks = list(store.iter_bytes("clips/c1", chunk_size=MiB))
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= MiB for chunk in chunks)


def test_put_without_a_declared_size_streams_everything(store: ObjectStore) -> None:
    data = os.urandom(BIG)
    assert store.put("clips/c2", io.BytesIO(data)).size == BIG
    assert store.read_range("clips/c2", PART - 2, 4) == data[PART - 2 : PART + 2]


def test_read_range_at_first_byte_last_byte_and_past_the_end(store: ObjectStore) -> None:
    data = os.urandom(1000)
    store.put("k", io.BytesIO(data))
    assert store.read_range("k", 0, 1) == data[:1]
    assert store.read_range("k", 999, 1) == data[-1:]
    assert store.read_range("k", 995, 10) == data[995:]
    assert store.read_range("k", 1000, 5) == b""
    assert store.read_range("k", 5000, 5) == b""
    assert store.read_range("k", 10, 0) == b""


def test_put_refuses_a_key_that_exists(store: ObjectStore) -> None:
    store.put("originals/o1", io.BytesIO(b"first"))
    with pytest.raises(StorageError, match="exists"):
        store.put("originals/o1", io.BytesIO(b"second"))
    assert store.read_range("originals/o1", 0, 100) == b"first"


def test_a_missing_key_is_object_missing(store: ObjectStore) -> None:
    assert not store.exists("nope/n1")
    with pytest.raises(ObjectMissing):
        store.size("nope/n1")
    with pytest.raises(ObjectMissing):
        store.read_range("nope/n1", 0, 10)
    with pytest.raises(ObjectMissing):
        store.iter_bytes("nope/n1")
    store.delete("nope/n1")  # absent keys are not an error


@pytest.mark.parametrize("length", [1000, BIG], ids=["small", "multipart"])
def test_delete_is_refused_while_retention_holds(store: ObjectStore, length: int) -> None:
    data, until = os.urandom(length), now() + timedelta(days=1)
    store.put("originals/o2", io.BytesIO(data), retain_until=until)
    with pytest.raises(StorageError):
        store.delete("originals/o2")
    assert store.read_range("originals/o2", 0, length) == data
    retained = store.retained_until("originals/o2")  # type: ignore[attr-defined]
    assert retained is not None and retained >= until


def test_delete_removes_an_unretained_object(store: ObjectStore) -> None:
    store.put("staging/s1", io.BytesIO(b"scratch"))
    store.delete("staging/s1")
    assert not store.exists("staging/s1")
    with pytest.raises(ObjectMissing):
        store.read_range("staging/s1", 0, 1)
    store.put("staging/s1", io.BytesIO(b"again"))  # the key is free once more
    assert store.read_range("staging/s1", 0, 100) == b"again"


def test_invalid_keys_are_refused_everywhere(store: ObjectStore) -> None:
    for key in INVALID_KEYS:
        with pytest.raises(StorageError, match="invalid object key"):
            store.put(key, io.BytesIO(b"x"))
        for call in (store.size, store.exists, store.delete, store.iter_bytes):
            with pytest.raises(StorageError, match="invalid object key"):
                call(key)
        with pytest.raises(StorageError, match="invalid object key"):
            store.read_range(key, 0, 1)


def test_extend_retention_lengthens_but_never_shortens(store: ObjectStore) -> None:
    first = now() + timedelta(days=2)
    store.put("originals/o3", io.BytesIO(b"evidence"), retain_until=first)
    kept = store.retained_until("originals/o3")  # type: ignore[attr-defined]
    store.extend_retention("originals/o3", first - timedelta(days=1))
    assert store.retained_until("originals/o3") == kept  # type: ignore[attr-defined]
    later = first + timedelta(days=30)
    store.extend_retention("originals/o3", later)
    assert store.retained_until("originals/o3") >= later  # type: ignore[attr-defined]
    with pytest.raises(StorageError):
        store.delete("originals/o3")


def test_extend_retention_locks_an_unretained_object(store: ObjectStore) -> None:
    store.put("originals/o11", io.BytesIO(b"evidence"))
    until = now() + timedelta(days=1)
    store.extend_retention("originals/o11", until)
    assert store.retained_until("originals/o11") >= until  # type: ignore[attr-defined]
    with pytest.raises(StorageError):
        store.delete("originals/o11")
    with pytest.raises(ObjectMissing):
        store.extend_retention("nope/n2", until)


@pytest.mark.parametrize("length", [1000, BIG], ids=["small", "multipart"])
@pytest.mark.parametrize("skew", [-1, +1], ids=["short", "long"])
def test_a_wrong_declared_size_stores_nothing(store: ObjectStore, length: int, skew: int) -> None:
    with pytest.raises(StorageError, match="bytes"):
        store.put("clips/c3", io.BytesIO(os.urandom(length)), size=length + skew)
    assert not store.exists("clips/c3")


def test_a_source_failing_mid_stream_stores_nothing(store: ObjectStore) -> None:
    with pytest.raises(RuntimeError, match="went away"):
        store.put("clips/c4", FailingSource(os.urandom(BIG), fail_at=PART + MiB))
    assert not store.exists("clips/c4")


# --- S3 specifics --------------------------------------------------------------------


def test_objects_live_under_the_prefix_with_sha256_checksums(s3: S3) -> None:
    small, big = os.urandom(1000), os.urandom(BIG)
    s3.store.put("small", io.BytesIO(small))
    s3.store.put("big", io.BytesIO(big))
    head = s3.client.head_object(Bucket=s3.bucket, Key="vault/small", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(small).digest()).decode()
    parts = [big[i : i + PART] for i in range(0, BIG, PART)]
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    head = s3.client.head_object(Bucket=s3.bucket, Key="vault/big", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].split("-")[0] == base64.b64encode(composite).decode()
    assert len(parts) == 3


def test_a_source_failing_after_the_first_part_leaves_no_object_or_upload(s3: S3) -> None:
    sent: list[int] = []
    s3.client.meta.events.register(
        "after-call.s3.UploadPart",
        lambda **kwargs: sent.append(kwargs["http_response"].status_code),
    )
    with pytest.raises(RuntimeError, match="went away"):
        s3.store.put("clips/c5", FailingSource(os.urandom(BIG), fail_at=PART + MiB))
    assert sent == [200]  # the first part did reach S3 before the source failed
    assert s3.pending_uploads() == []
    assert s3.versions("clips/c5") == []


@pytest.mark.parametrize("length", [1000, BIG], ids=["single", "multipart"])
def test_if_none_match_refuses_a_writer_that_raced_past_the_check(s3: S3, length: int) -> None:
    def race() -> None:
        s3.client.put_object(Bucket=s3.bucket, Key=s3.name("originals/o4"), Body=b"theirs")

    with pytest.raises(StorageError, match="exists"):
        s3.store.put("originals/o4", RacingSource(os.urandom(length), race))
    assert s3.store.read_range("originals/o4", 0, 100) == b"theirs"
    assert s3.pending_uploads() == []


def test_delete_removes_the_version_rather_than_hiding_it(s3: S3) -> None:
    s3.store.put("staging/s2", io.BytesIO(b"scratch"))
    s3.store.delete("staging/s2")
    assert s3.versions("staging/s2") == []


def test_self_check_passes_on_an_object_lock_bucket(s3: S3) -> None:
    self_check(s3.store)
    probes = s3.client.list_object_versions(Bucket=s3.bucket, Prefix="vault/_selfcheck/")
    assert len(probes["Versions"]) == 1  # the probe survived its delete


def test_self_check_fails_on_a_bucket_without_object_lock(s3: S3) -> None:
    plain = f"plain-{secrets.token_hex(6)}"
    s3.client.create_bucket(Bucket=plain)
    s3.client.put_bucket_versioning(Bucket=plain, VersioningConfiguration={"Status": "Enabled"})
    with pytest.raises(StorageError, match="Object Lock is not enforced"):
        self_check(S3ObjectStore(s3.client, plain))


def test_self_check_fails_when_the_store_ignores_lock_headers(s3: S3) -> None:
    """An S3-compatible store that accepts and drops Object Lock headers: the probe's
    delete succeeds, and only trying it shows that retention is not enforced."""

    def drop_lock(params: dict[str, Any], **kwargs: Any) -> None:
        params.pop("ObjectLockMode", None)
        params.pop("ObjectLockRetainUntilDate", None)

    s3.client.meta.events.register("before-parameter-build.s3.PutObject", drop_lock)
    with pytest.raises(StorageError, match="Object Lock is not enforced"):
        self_check(s3.store)


def test_self_check_fails_when_the_store_ignores_conditional_writes(s3: S3) -> None:
    """An S3-compatible store that drops If-None-Match would let a put replace an
    original's current version: the self-check refuses it, and removes the stray
    version it made, leaving only the locked probe."""

    def drop_condition(params: dict[str, Any], **kwargs: Any) -> None:
        params.pop("IfNoneMatch", None)

    s3.client.meta.events.register("before-parameter-build.s3.PutObject", drop_condition)
    with pytest.raises(StorageError, match="write-once is not enforced"):
        self_check(s3.store)
    probes = s3.client.list_object_versions(Bucket=s3.bucket, Prefix="vault/_selfcheck/")
    assert len(probes["Versions"]) == 1
    assert probes["Versions"][0]["Size"] == len(b"object lock self-check\n")


def _stream_from_one_buffer(store: S3ObjectStore, key: str, data: bytes) -> None:
    """Send data as a streamed upload's parts, every part from the same buffer,
    overwritten for the next part as soon as the one before is sent."""
    streamed = store.begin_streamed(key)
    size, buffer = streamed.part_size, bytearray(streamed.part_size)
    for number, start in enumerate(range(0, len(data), size), start=1):
        piece = data[start : start + size]
        buffer[: len(piece)] = piece
        streamed.send(number, memoryview(buffer)[: len(piece)])
        buffer[:] = bytes(size)  # reused at once: nothing of this part may still be unread
    streamed.complete(len(data))


def test_streamed_parts_sent_from_a_reused_buffer_store_exactly_their_bytes(s3: S3) -> None:
    data = os.urandom(2 * PART + 777)
    _stream_from_one_buffer(s3.store, "originals/o11", data)
    assert s3.store.read_range("originals/o11", 0, len(data) + 1) == data
    head = s3.client.head_object(Bucket=s3.bucket, Key="vault/originals/o11")
    assert head["ContentLength"] == len(data) and s3.pending_uploads() == []


def test_a_streamed_part_is_sent_again_in_full_after_a_503(s3_server: S3) -> None:
    attempts = answer_503(s3_server, "UploadPart", times=2, code="ServiceUnavailable", lost=False)
    data = os.urandom(PART + 999)
    _stream_from_one_buffer(s3_server.store, "originals/o12", data)
    assert len(attempts) == 2 + 2  # the first part twice refused, then both parts
    assert s3_server.store.read_range("originals/o12", 0, len(data)) == data


def test_bodies_are_covered_by_a_signed_checksum_not_hashed_again_to_sign(s3_server: S3) -> None:
    sent: list[Any] = []
    for operation in ("PutObject", "UploadPart"):
        s3_server.client.meta.events.register(
            f"before-send.s3.{operation}", lambda request, **kwargs: sent.append(request)
        )
    s3_server.store.put("clips/c12", io.BytesIO(os.urandom(1000)))
    s3_server.store.put("clips/c13", io.BytesIO(os.urandom(PART + 1)))
    assert len(sent) == 1 + 2
    for request in sent:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
        assert "x-amz-checksum-sha256" in signed


def test_from_url_reads_bucket_and_prefix_and_sets_retries(aws_env: None) -> None:
    store = S3ObjectStore.from_url("s3://evidence-bucket/district-1/vault/", region=REGION)
    assert (store.bucket, store.prefix) == ("evidence-bucket", "district-1/vault/")
    retries = store.client.meta.config.retries  # botocore counts the first try too
    assert (retries["mode"], retries["total_max_attempts"]) == ("adaptive", 9)
    for bad in ("http://evidence-bucket/x", "s3:///x", "s3://b/x?versionId=1", "s3://b/a/../c"):
        with pytest.raises(StorageError):
            S3ObjectStore.from_url(bad, region=REGION)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


def answer_503(s3: S3, operation: str, times: int, code: str, *, lost: bool) -> list[int]:
    """Answer the first `times` sends of operation with a 503 and count every attempt.

    lost=False: the request never leaves the client (throttling; server only).
    lost=True: S3 stores it and only its answer is lost (in process moto handles the
    request anyway; over HTTP we forward it ourselves)."""
    assert lost or s3.kind == "server"
    attempts: list[int] = []
    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()

    def answer(request: Any, **kwargs: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > times:
            return None
        if lost and s3.kind == "server":
            with contextlib.closing(URLLib3Session()) as http:
                assert http.send(request).status_code == 200
        return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Raw(body))

    s3.client.meta.events.register_first(f"before-send.s3.{operation}", answer)
    return attempts


def test_put_retries_after_slow_down(s3_server: S3) -> None:
    attempts = answer_503(s3_server, "PutObject", times=1, code="SlowDown", lost=False)
    data = os.urandom(1000)
    s3_server.store.put("clips/c6", io.BytesIO(data))
    assert len(attempts) == 2
    assert s3_server.store.read_range("clips/c6", 0, 2000) == data


def test_parts_are_resent_beyond_botocore_default_retry_counts(s3_server: S3) -> None:
    """Six 503s in a row: the legacy default (4 retries) and standard (2) would give up."""
    attempts = answer_503(s3_server, "UploadPart", times=6, code="ServiceUnavailable", lost=False)
    data = os.urandom(BIG)
    s3_server.store.put("clips/c7", io.BytesIO(data))
    assert len(attempts) == 6 + 3
    assert s3_server.store.read_range("clips/c7", 0, BIG) == data


@pytest.mark.parametrize(
    ("length", "operation"),
    [(1000, "PutObject"), (BIG, "CompleteMultipartUpload")],
    ids=["single", "multipart"],
)
def test_a_retry_after_a_lost_answer_recognises_its_own_write(
    s3: S3, length: int, operation: str
) -> None:
    attempts = answer_503(s3, operation, times=1, code="InternalError", lost=True)
    data, until = os.urandom(length), now() + timedelta(days=1)
    stored = s3.store.put("originals/o10", io.BytesIO(data), retain_until=until)
    assert len(attempts) == 2
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert s3.store.read_range("originals/o10", 0, length) == data
    assert s3.store.retained_until("originals/o10") >= until
    assert s3.pending_uploads() == []


# --- local folder specifics ------------------------------------------------------------


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_local_failing_source_leaves_no_temp_file(local: LocalObjectStore, tmp_path: Path) -> None:
    root = tmp_path / "objects"
    during: list[list[str]] = []
    src = FailingSource(os.urandom(3 * MiB), MiB, on_fail=lambda: during.append(files_under(root)))
    with pytest.raises(RuntimeError):
        local.put("clips/c8", src)
    assert any(".tmp-" in name for name in during[0])  # a temp file existed mid-write
    assert files_under(root) == []


def test_local_files_are_private_even_with_a_permissive_umask(
    local: LocalObjectStore, tmp_path: Path
) -> None:
    old = os.umask(0)
    try:
        local.put("a/b/c", io.BytesIO(b"x"), retain_until=now() + timedelta(hours=1))
    finally:
        os.umask(old)
    root = tmp_path / "objects"
    for path in (root / "a/b/c.obj", root / "a/b/c.retain"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for path in (root / "a", root / "a/b"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_local_put_file_links_a_staged_upload_into_place(
    local: LocalObjectStore, tmp_path: Path
) -> None:
    data = os.urandom(2 * MiB)
    staged = tmp_path / "staging" / "upload-1"
    staged.parent.mkdir()
    staged.write_bytes(data)
    staged.chmod(0o644)
    inode = staged.stat().st_ino
    stored = local.put_file("originals/o5", staged, size=len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert not staged.exists()
    target = tmp_path / "objects" / "originals" / "o5.obj"
    assert target.stat().st_ino == inode  # moved, not rewritten
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert local.read_range("originals/o5", 0, len(data)) == data


def test_local_put_file_refuses_an_existing_key_and_keeps_the_staged_file(
    local: LocalObjectStore, tmp_path: Path
) -> None:
    local.put("originals/o6", io.BytesIO(b"first"))
    staged = tmp_path / "upload-2"
    staged.write_bytes(b"second")
    with pytest.raises(StorageError, match="exists"):
        local.put_file("originals/o6", staged)
    assert staged.read_bytes() == b"second"
    assert local.read_range("originals/o6", 0, 100) == b"first"


def test_local_put_file_copies_a_staged_file_with_other_links(
    local: LocalObjectStore, tmp_path: Path
) -> None:
    staged, alias = tmp_path / "upload-3", tmp_path / "alias"
    staged.write_bytes(b"clip")
    os.link(staged, alias)
    local.put_file("originals/o7", staged)
    target = tmp_path / "objects" / "originals" / "o7.obj"
    assert target.stat().st_ino != alias.stat().st_ino  # writes via alias cannot reach it
    assert not staged.exists() and alias.read_bytes() == b"clip"


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def test_local_adopt_file_links_the_verified_inode_without_reading_it(
    local: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(MiB + 3)
    staged = tmp_path / "upload-a"
    staged.write_bytes(data)
    inode = _identity(staged)
    monkeypatch.setattr(LocalObjectStore, "_hash_fd", staticmethod(_no_read))
    sha = hashlib.sha256(data).hexdigest()
    stored = local.adopt_file("originals/a1", staged, size=len(data), sha256=sha, inode=inode)
    assert (stored.size, stored.sha256) == (len(data), sha)
    target = tmp_path / "objects" / "originals" / "a1.obj"
    assert _identity(target) == inode and not staged.exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert local.read_range("originals/a1", 0, len(data)) == data


def _no_read(_fd: int) -> tuple[str, int]:
    raise AssertionError("adopt_file read the file again")


@pytest.mark.parametrize("change", ["other inode", "other size", "second link"])
def test_local_adopt_file_refuses_anything_but_the_file_that_was_verified(
    local: LocalObjectStore, tmp_path: Path, change: str
) -> None:
    staged = tmp_path / "upload-b"
    staged.write_bytes(b"verified bytes")
    inode, size = _identity(staged), len(b"verified bytes")
    if change == "other inode":  # the path now names another file with the same size
        staged.rename(tmp_path / "moved-away")  # still alive, so its inode is not reused
        staged.write_bytes(b"swapped bytes!")
    elif change == "other size":
        size += 1
    else:
        os.link(staged, tmp_path / "alias")  # writable through another name
    sha = hashlib.sha256(b"verified bytes").hexdigest()
    with pytest.raises(NotAdoptable):
        local.adopt_file("originals/b1", staged, size=size, sha256=sha, inode=inode)
    assert staged.exists() and not local.exists("originals/b1")


def test_local_symlinks_in_the_store_are_never_followed(
    local: LocalObjectStore, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not evidence")
    root = tmp_path / "objects"
    (root / "k.obj").symlink_to(secret)
    for call in (local.size, local.iter_bytes, local.delete, local.exists):
        with pytest.raises(StorageError, match="regular file|cannot open"):
            call("k")
    with pytest.raises(StorageError):
        local.read_range("k", 0, 100)
    with pytest.raises(StorageError, match="exists"):
        local.put("k", io.BytesIO(b"x"))
    os.mkfifo(root / "fifo.obj")  # opening a FIFO for reading would block forever
    with pytest.raises(StorageError, match="regular file"):
        local.read_range("fifo", 0, 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "d").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="unexpected entry"):
        local.put("d/x", io.BytesIO(b"x"))
    assert list(outside.iterdir()) == [] and secret.read_bytes() == b"not evidence"


def test_local_retention_ends_with_the_clock(tmp_path: Path) -> None:
    clock = [datetime(2026, 11, 24, 9, 0, tzinfo=UTC)]
    local = LocalObjectStore(tmp_path / "objects", clock=lambda: clock[0])
    local.put("originals/o8", io.BytesIO(b"x"), retain_until=clock[0] + timedelta(hours=1))
    with pytest.raises(StorageError, match="retained until"):
        local.delete("originals/o8")
    clock[0] += timedelta(hours=2)
    local.delete("originals/o8")
    assert not local.exists("originals/o8")


def test_local_corrupt_retention_record_fails_closed(
    local: LocalObjectStore, tmp_path: Path
) -> None:
    local.put("originals/o9", io.BytesIO(b"x"), retain_until=now() + timedelta(hours=1))
    (tmp_path / "objects" / "originals" / "o9.retain").write_text("{not json")
    with pytest.raises(StorageError, match="corrupt"):
        local.delete("originals/o9")
    assert local.exists("originals/o9")


def test_s3_adopt_file_puts_the_verified_file_once_with_its_sha256_as_checksum(
    s3: S3, tmp_path: Path
) -> None:
    data = os.urandom(s3.store.adopt_limit - 5)
    staged = tmp_path / "upload-s3a"
    staged.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    stored = s3.store.adopt_file(
        "originals/s3a", staged, size=len(data), sha256=sha, inode=_identity(staged)
    )
    assert (stored.size, stored.sha256) == (len(data), sha)
    assert s3.store.read_range("originals/s3a", 0, len(data) + 1) == data
    head = s3.client.head_object(
        Bucket=s3.bucket, Key=s3.name("originals/s3a"), ChecksumMode="ENABLED"
    )
    assert base64.b64decode(head["ChecksumSHA256"]) == bytes.fromhex(sha)
    assert s3.pending_uploads() == [] and staged.exists()  # S3 took a copy
    with pytest.raises(StorageError, match="exists"):
        s3.store.adopt_file(
            "originals/s3a", staged, size=len(data), sha256=sha, inode=_identity(staged)
        )


def test_s3_adopt_file_sends_the_verified_sha256_not_one_of_what_it_reads(
    s3_server: S3, tmp_path: Path
) -> None:
    """The file changed after it was verified: the PutObject still carries the verified
    SHA-256 as its checksum, so S3 refuses the body (BadDigest; moto does not check
    bodies against checksums, so this looks at what was sent)."""
    sent: list[Any] = []
    s3_server.client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **kwargs: sent.append(request)
    )
    staged = tmp_path / "upload-s3b"
    staged.write_bytes(b"changed after verification")
    verified = hashlib.sha256(b"the bytes that were verified").digest()
    size = staged.stat().st_size
    s3_server.store.adopt_file(
        "originals/s3b", staged, size=size, sha256=verified.hex(), inode=_identity(staged)
    )
    assert len(sent) == 1
    headers = {k.lower(): v for k, v in sent[0].headers.items()}
    claimed = headers["x-amz-checksum-sha256"]
    assert base64.b64decode(claimed.decode() if isinstance(claimed, bytes) else claimed) == verified


@pytest.mark.parametrize("change", ["too large", "other inode", "other size"])
def test_s3_adopt_file_refuses_what_it_cannot_take_in_one_put(
    s3: S3, tmp_path: Path, change: str
) -> None:
    staged = tmp_path / "upload-s3c"
    staged.write_bytes(b"verified bytes")
    inode, size = _identity(staged), len(b"verified bytes")
    if change == "too large":
        size = s3.store.adopt_limit + 1
        staged.write_bytes(bytes(size))
    elif change == "other inode":
        staged.rename(tmp_path / "moved-away")
        staged.write_bytes(b"swapped bytes!")
    else:
        size += 1
    with pytest.raises(NotAdoptable):
        s3.store.adopt_file("originals/s3c", staged, size=size, sha256="00" * 32, inode=inode)
    assert not s3.store.exists("originals/s3c")
