"""The declaration of an upload: the tus `Upload-Metadata` a dock sends, checked for form.

Nothing here is trusted yet: the declared SHA-256 and size are proved or refuted only
when the stored bytes are read back (app/ingest.py). Camera-supplied names are kept as
raw bytes and a printable display form; neither ever becomes a path or key."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.devices import SERIAL
from app.settings import Settings
from evidence import vault as vault_core
from evidence.crypto import segments

MAX_METADATA = 16 * 1024
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_IDENTITY = re.compile(r"^[\x21-\x7e]{1,200}$")
_MEDIA_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]{1,80}$")
_FLAG = re.compile(r"^[a-z_]{1,40}$")
_VERSION = re.compile(r"^i[0-9]{1,6}$")
REQUIRED = (
    "camera_serial",
    "file_identity",
    "filename",
    "plaintext_sha256",
    "plaintext_size",
    "segment_size",
    "object_id",
    "wrapped_key",
    "ingest_key",
)


class UploadRefused(Exception):
    """The request cannot become (or continue) an upload; `status` is the HTTP answer,
    `reason` a stable machine word and the message says what to do."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Declaration:
    """What the uploader says about the file, validated for form (not yet for truth)."""

    camera_serial: str
    file_identity: str
    file_name_b64: str
    file_name: str
    plaintext_sha256: str
    plaintext_size: int
    segment_size: int
    object_id: bytes
    wrapped_key: bytes
    ingest_key_version: str
    media_type: str = "application/octet-stream"
    recorded_start: datetime | None = None
    recorded_end: datetime | None = None
    camera_recorded_start: str | None = None
    wearer_badge: str | None = None
    clock_offset_ms: int | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ciphertext_size(self) -> int:
        return segments.ciphertext_size(self.plaintext_size, self.segment_size)


def parse_metadata(header: str) -> dict[str, bytes]:
    """tus `Upload-Metadata`: comma-separated `key base64value` pairs (value optional)."""
    if len(header) > MAX_METADATA:
        raise UploadRefused(400, "metadata_too_large", "Upload-Metadata is too large")
    pairs: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, value = item.partition(" ")
        if not _KEY.match(key) or key in pairs:
            raise UploadRefused(400, "bad_metadata", f"bad or repeated metadata key {key[:40]!r}")
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise UploadRefused(400, "bad_metadata", f"metadata {key} is not base64") from None
    return pairs


def _text(meta: dict[str, bytes], key: str) -> str:
    try:
        return meta[key].decode("utf-8")
    except UnicodeDecodeError:
        raise UploadRefused(400, "bad_metadata", f"metadata {key} is not UTF-8") from None


def _integer(meta: dict[str, bytes], key: str, *, minimum: int = 0) -> int:
    raw = _text(meta, key)
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or int(raw) < minimum:
        raise UploadRefused(400, "bad_metadata", f"metadata {key} must be a whole number")
    return int(raw)


def _time(meta: dict[str, bytes], key: str) -> datetime | None:
    if key not in meta:
        return None
    raw = _text(meta, key)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise UploadRefused(
            400, "bad_metadata", f"metadata {key} is not an RFC 3339 time"
        ) from None
    if moment.tzinfo is None:
        raise UploadRefused(400, "bad_metadata", f"metadata {key} needs a UTC offset")
    return moment


def display_name(raw: bytes) -> str:
    """A printable form of a camera-supplied name; the raw bytes are kept separately."""
    text = raw.decode("utf-8", errors="replace")
    shown = "".join(c if unicodedata.category(c)[0] != "C" else "\ufffd" for c in text)
    return shown[:255] or "(unnamed)"


def declare(meta: dict[str, bytes], upload_length: int, settings: Settings) -> Declaration:
    """Validate the declaration's form; every problem is an UploadRefused saying which."""
    missing = [key for key in REQUIRED if key not in meta]
    if missing:
        raise UploadRefused(400, "missing_metadata", "metadata missing: " + ", ".join(missing))
    sha = _text(meta, "plaintext_sha256").lower()
    if not vault_core.is_sha256(sha):
        raise UploadRefused(400, "bad_metadata", "plaintext_sha256 must be 64 hex digits")
    identity = _text(meta, "file_identity")
    if not _IDENTITY.match(identity):
        raise UploadRefused(400, "bad_metadata", "file_identity: 1-200 printable ASCII characters")
    serial = _text(meta, "camera_serial")
    if not SERIAL.fullmatch(serial):
        raise UploadRefused(400, "bad_metadata", "camera_serial is malformed")
    name = meta["filename"]
    if not 0 < len(name) <= 1024:
        raise UploadRefused(400, "bad_metadata", "filename must be 1-1024 bytes")
    try:
        object_id = bytes.fromhex(_text(meta, "object_id"))
    except ValueError:
        object_id = b""
    if len(object_id) != 16:
        raise UploadRefused(400, "bad_metadata", "object_id must be 32 hex digits")
    version = _text(meta, "ingest_key")
    if not _VERSION.match(version):
        raise UploadRefused(400, "bad_metadata", "ingest_key is not a key version")
    wrapped = meta["wrapped_key"]
    if not 16 <= len(wrapped) <= 512:
        raise UploadRefused(400, "bad_metadata", "wrapped_key has an impossible length")
    segment_size = _integer(meta, "segment_size", minimum=1)
    if not 4096 <= segment_size <= 64 * 1024 * 1024:
        raise UploadRefused(400, "bad_metadata", "segment_size must be 4 KiB to 64 MiB")
    size = _integer(meta, "plaintext_size")
    media_type = _text(meta, "media_type").lower() if "media_type" in meta else ""
    if media_type and not _MEDIA_TYPE.match(media_type):
        raise UploadRefused(400, "bad_metadata", "media_type is not a media type")
    flags = tuple(
        f for f in (_text(meta, "flags").split(",") if "flags" in meta else []) if f.strip()
    )
    if len(flags) > 32 or not all(_FLAG.match(f) for f in flags):
        raise UploadRefused(400, "bad_metadata", "flags: up to 32 lower-case words")
    badge = _text(meta, "wearer_badge") if "wearer_badge" in meta else None
    if badge is not None and not SERIAL.fullmatch(badge):
        raise UploadRefused(400, "bad_metadata", "wearer_badge is malformed")
    camera_start = (
        _text(meta, "camera_recorded_start")[:64] if "camera_recorded_start" in meta else None
    )
    declaration = Declaration(
        camera_serial=serial,
        file_identity=identity,
        file_name_b64=base64.b64encode(name).decode("ascii"),
        file_name=display_name(name),
        plaintext_sha256=sha,
        plaintext_size=size,
        segment_size=segment_size,
        object_id=object_id,
        wrapped_key=wrapped,
        ingest_key_version=version,
        media_type=media_type or "application/octet-stream",
        recorded_start=_time(meta, "recorded_start"),
        recorded_end=_time(meta, "recorded_end"),
        camera_recorded_start=camera_start,
        wearer_badge=badge,
        clock_offset_ms=_integer(meta, "clock_offset_ms", minimum=-(2**62))
        if "clock_offset_ms" in meta
        else None,
        flags=flags,
    )
    if upload_length > settings.max_upload_bytes:
        raise UploadRefused(413, "too_large", "the upload is larger than this service accepts")
    if upload_length != declaration.ciphertext_size:
        raise UploadRefused(
            400,
            "length_mismatch",
            "Upload-Length does not match plaintext_size and segment_size for this format",
        )
    return declaration


def as_json(declaration: Declaration) -> dict[str, Any]:
    return {
        "camera_serial": declaration.camera_serial,
        "file_name": declaration.file_name,
        "file_name_b64": declaration.file_name_b64,
        "media_type": declaration.media_type,
        "recorded_start": declaration.recorded_start.isoformat()
        if declaration.recorded_start
        else None,
        "recorded_end": declaration.recorded_end.isoformat() if declaration.recorded_end else None,
        "camera_recorded_start": declaration.camera_recorded_start,
        "wearer_badge": declaration.wearer_badge,
        "clock_offset_ms": declaration.clock_offset_ms,
        "flags": list(declaration.flags),
    }
