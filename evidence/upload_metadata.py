"""What travels with an upload: the dock-side sealing of a file and its tus metadata.

Pure and dependency-light so the dock agent, `bwc evidence import` and tests seal files
the same way: one read pass hashes and encrypts (evidence/crypto/segments), and the data
key is wrapped to the service's ingest public key, bound to the object and camera
(docs/ingest.md lists every key)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import BinaryIO

from evidence.crypto import keywrap, segments


def dock_context(object_id: bytes, camera_serial: str) -> bytes:
    """What a dock's wrap of a data key is bound to: this object, from this camera."""
    return b"bwc-ingest/1\x00" + object_id + camera_serial.encode("ascii")


def encode_tus_metadata(meta: Mapping[str, bytes]) -> str:
    """tus `Upload-Metadata`: `key base64(value)` pairs joined by commas."""
    return ",".join(
        f"{key} {base64.b64encode(value).decode('ascii')}" for key, value in meta.items()
    )


def seal_for_ingest(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    ingest_public_key: bytes,
    ingest_key_version: str,
    camera_serial: str,
    file_identity: str,
    file_name: bytes,
    media_type: str = "application/octet-stream",
    segment_size: int = segments.DEFAULT_SEGMENT_SIZE,
    extra: Mapping[str, str] | None = None,
) -> tuple[segments.EncryptResult, dict[str, bytes]]:
    """Encrypt src into dst under a fresh data key; return the result and the metadata.

    The data key exists in clear only in this process's memory and leaves it wrapped."""
    dek = segments.new_data_key()
    object_id = segments.new_object_id()
    result = segments.encrypt_stream(src, dst, dek, object_id=object_id, segment_size=segment_size)
    wrapped = keywrap.wrap_for_ingest(
        dek, ingest_public_key, dock_context(object_id, camera_serial)
    )
    meta = {
        "camera_serial": camera_serial.encode("ascii"),
        "file_identity": file_identity.encode("ascii"),
        "filename": file_name,
        "plaintext_sha256": result.plaintext_sha256.encode("ascii"),
        "plaintext_size": str(result.plaintext_size).encode("ascii"),
        "segment_size": str(segment_size).encode("ascii"),
        "object_id": object_id.hex().encode("ascii"),
        "wrapped_key": wrapped,
        "ingest_key": ingest_key_version.encode("ascii"),
        "media_type": media_type.encode("ascii"),
    }
    for key, value in (extra or {}).items():
        meta[key] = value.encode("utf-8")
    return result, meta
