"""tus 1.0 resumable uploads under /api/v1/uploads/ (DESIGN.md §5, docs/ingest.md).

Extensions: creation, checksum (sha256), termination, expiration. Docks authenticate with
`Authorization: Bearer <dock credential>`; an upload of another dock answers 404. Bodies
stream to the staging file through one reused buffer, never whole into memory; each committed
PATCH is read back and verified on a thread while the next one arrives
(app/live_verify.py), so the last PATCH has only the tail left to check."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import cast

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from app import ingest
from app.api.dock_auth import TUS_VERSION, dock_error, dock_required, tus_headers
from app.db import must_get
from app.declaration import UploadRefused, declare, parse_metadata
from app.ledger import LedgerService
from app.live_verify import LiveVerifier, PartSink
from app.receipts import receipt
from app.request_body import body_reader
from app.staging import Staging, UploadBusy
from app.vault import INGEST_ALGORITHM, Vault
from app.web.context import db, now
from evidence import vault as vault_core
from evidence.adapters.sql.org import Dock
from evidence.adapters.sql.vault import Upload
from evidence.errors import StorageError

logger = logging.getLogger(__name__)
uploads_api = Blueprint("uploads_api", __name__, url_prefix="/api/v1")
EXTENSIONS = "creation,checksum,termination,expiration"


def _vault() -> Vault:
    return cast(Vault, current_app.extensions["bwc.vault"])


def _staging() -> Staging:
    return cast(Staging, current_app.extensions["bwc.staging"])


def _live() -> LiveVerifier:
    return cast(LiveVerifier, current_app.extensions["bwc.live_verify"])


def _own_upload(upload_id: str) -> Upload | None:
    dock: Dock = g.dock
    if len(upload_id) != 32:
        return None
    upload = db().get(Upload, upload_id)
    if upload is None or upload.dock_id != dock.id:
        return None  # another dock's upload does not exist for this one
    return upload


def _offset_headers(response: Response, upload: Upload, offset: int) -> Response:
    response.headers["Upload-Offset"] = str(offset)
    response.headers["Upload-Length"] = str(upload.length)
    response.headers["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
    return tus_headers(response)


@uploads_api.route("/uploads/", methods=["OPTIONS"])
@uploads_api.route("/uploads/<upload_id>", methods=["OPTIONS"])
def options(upload_id: str | None = None) -> ResponseReturnValue:
    response = Response(status=204)
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = EXTENSIONS
    response.headers["Tus-Max-Size"] = str(current_app.extensions["bwc.settings"].max_upload_bytes)
    response.headers["Tus-Checksum-Algorithm"] = "sha256"
    return tus_headers(response)


@uploads_api.before_request
def _require_tus_version() -> ResponseReturnValue | None:
    if request.method == "OPTIONS" or not request.path.startswith("/api/v1/uploads/"):
        return None
    if request.path.endswith("/receipt"):
        return None
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        response = dock_error(412, "tus_version", "Tus-Resumable: 1.0.0 is required")
        response.headers["Tus-Version"] = TUS_VERSION
        return response
    return None


@uploads_api.get("/ingest/key")
@dock_required
def ingest_key() -> ResponseReturnValue:
    """The public key docks wrap each file's data key to."""
    version, public = _vault().ingest_public_key(db())
    return jsonify(version=version, public_key=public, algorithm=INGEST_ALGORITHM)


@uploads_api.post("/uploads/")
@dock_required
def create() -> ResponseReturnValue:
    dock: Dock = g.dock
    settings = current_app.extensions["bwc.settings"]
    if request.headers.get("Upload-Defer-Length"):
        return dock_error(400, "defer_length", "deferred lengths are not supported")
    raw_length = request.headers.get("Upload-Length", "")
    if not raw_length.isdigit() or len(raw_length) > 19:
        return dock_error(400, "bad_length", "Upload-Length must be a non-negative whole number")
    length = int(raw_length)
    if length > settings.max_upload_bytes:
        return dock_error(413, "too_large", "the upload is larger than this service accepts")
    if request.content_length:
        return dock_error(400, "creation_with_upload", "send the bytes with PATCH after creating")
    try:
        meta = parse_metadata(request.headers.get("Upload-Metadata", ""))
        declaration = declare(meta, length, settings)
        upload = ingest.create_upload(
            db(),
            _staging(),
            dock=dock,
            district_id=dock.district_id,
            declaration=declaration,
            length=length,
            settings=settings,
            now=now(),
        )
        db().commit()
    except UploadRefused as refused:
        db().rollback()
        return dock_error(refused.status, refused.reason, str(refused))
    response = Response(status=201)
    response.headers["Location"] = f"/api/v1/uploads/{upload.id}"
    return _offset_headers(response, upload, upload.upload_offset)


@uploads_api.route("/uploads/<upload_id>", methods=["HEAD"])
@dock_required
def head(upload_id: str) -> ResponseReturnValue:
    upload = _own_upload(upload_id)
    if upload is None:
        return tus_headers(Response(status=404))
    if upload.status in ("rejected", "expired"):
        return tus_headers(Response(status=410))
    offset = upload.length
    if upload.status == "receiving":
        try:
            with _staging().locked(upload.id, wait_seconds=2) as staged:
                offset = staged.offset
        except UploadBusy:
            return tus_headers(Response(status=423))
        except FileNotFoundError:
            return tus_headers(Response(status=410))
    return _offset_headers(Response(status=200), upload, offset)


def _body() -> Callable[[memoryview], int]:
    """`readinto` for the request body, stopping at Content-Length, straight from the
    server's socket where it can be (app/request_body.py). Without a Content-Length
    (chunked transfer), werkzeug's stream decodes the body."""
    left = request.content_length
    stream = request.stream if left is None else request.environ["wsgi.input"]
    return body_reader(request.environ, left, stream)


def _checksum() -> bytes | None:
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return None
    algorithm, _, value = header.partition(" ")
    if algorithm != "sha256":
        raise UploadRefused(400, "checksum_algorithm", "only sha256 checksums are supported")
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise UploadRefused(400, "bad_checksum", "Upload-Checksum is not base64") from None
    if len(digest) != 32:
        raise UploadRefused(400, "bad_checksum", "Upload-Checksum is not a SHA-256 digest")
    return digest


@uploads_api.patch("/uploads/<upload_id>")
@dock_required
def patch(upload_id: str) -> ResponseReturnValue:
    upload = _own_upload(upload_id)
    if upload is None:
        return dock_error(404, "not_found", "no such upload")
    if upload.status in ("rejected", "expired"):
        return dock_error(410, upload.reason or upload.status, "this upload is closed")
    if request.headers.get("Content-Type") != "application/offset+octet-stream":
        return dock_error(
            415, "content_type", "Content-Type must be application/offset+octet-stream"
        )
    raw_offset = request.headers.get("Upload-Offset", "")
    if not raw_offset.isdigit() or len(raw_offset) > 19:
        return dock_error(400, "bad_offset", "Upload-Offset must be a non-negative whole number")
    try:
        expected = _checksum()
    except UploadRefused as refused:
        return dock_error(refused.status, refused.reason, str(refused))
    if upload.status != "receiving":
        # Verified already (a file the service held before, or a retry after the final
        # PATCH): the body is not needed; the full offset tells the client it is done.
        return _offset_headers(Response(status=204), upload, upload.length)
    upload_id, length, claimed = upload.id, upload.length, int(raw_offset)
    if request.content_length is not None and request.content_length > length - claimed:
        return dock_error(413, "too_long", "more bytes than Upload-Length")
    db().rollback()  # hold no transaction (nor touch the row) while bytes arrive
    try:
        with _staging().locked(upload_id) as staged:
            start = staged.offset
            if claimed != start:
                return dock_error(409, "offset_mismatch", f"the upload's offset is {start}")
            hasher = hashlib.sha256() if expected is not None else None
            try:
                _written, cut = staged.append(_body(), length - start, [hasher] if hasher else [])
            except ValueError:
                staged.truncate(start)
                return dock_error(413, "too_long", "more bytes than Upload-Length")
            if hasher is not None and (cut or hasher.digest() != expected):
                staged.truncate(start)  # the whole PATCH is discarded (tus checksum)
                if not cut:
                    return dock_error(
                        460, "checksum_mismatch", "the chunk's SHA-256 does not match"
                    )
            offset = staged.offset
            _record_offset(upload_id, offset)
            if offset > start:
                _verify_as_it_arrives(upload_id, staged.path, offset, length)
            if cut:
                return tus_headers(Response(status=400))
            if offset == length:
                return _finish(upload_id, offset)
    except UploadBusy:
        return dock_error(423, "busy", "another request is writing this upload; retry shortly")
    fresh = must_get(db(), Upload, upload_id)
    return _offset_headers(Response(status=204), fresh, offset)


def _record_offset(upload_id: str, offset: int) -> None:
    upload = db().get(Upload, upload_id, populate_existing=True)
    if upload is not None:
        settings = current_app.extensions["bwc.settings"]
        upload.upload_offset = offset
        upload.expires_at = now() + timedelta(hours=settings.upload_expiry_hours)
        db().commit()


def _verify_as_it_arrives(upload_id: str, path: Path, offset: int, length: int) -> None:
    """Let this process read the committed bytes back now, on a thread of its own, when
    the store can adopt the staged file as it is, or take its parts as they are read
    (S3 multipart), so the last PATCH need not store and read back the whole file
    (app/live_verify.py)."""
    store = _vault().store
    begin = getattr(store, "begin_streamed", None)
    if not hasattr(store, "adopt_file") and begin is None:
        return

    def key() -> tuple[bytes, bytes] | None:
        upload = db().get(Upload, upload_id)
        found = ingest.upload_key(db(), _vault(), upload) if upload is not None else None
        db().rollback()
        return found

    def sink() -> PartSink | None:
        # A store that can take a small verified file in one request (S3's PutObject
        # with the verified SHA-256 as its checksum) gets it whole at the end instead.
        if begin is None or length <= getattr(store, "adopt_limit", -1):
            return None
        try:
            streamed: PartSink = begin(vault_core.original_key(str(uuid.UUID(upload_id))))
        except StorageError as exc:
            logger.warning("upload %s: not streaming to the store: %s", upload_id, exc)
            return None
        return streamed

    _live().committed(upload_id, path, offset, length, key, sink)


def _finish(upload_id: str, offset: int) -> ResponseReturnValue:
    """Verify the completed upload while still holding its lock."""
    try:
        outcome = ingest.finalise(
            current_app.extensions["bwc.db"],
            _vault(),
            _staging(),
            upload_id,
            now=now(),
            live=_live(),
            jobs=current_app.extensions.get("bwc.jobs"),
        )
    except StorageError:
        return dock_error(503, "storage_unavailable", "could not store the upload; retry later")
    upload = must_get(db(), Upload, upload_id, fresh=True)
    if outcome.status == "rejected":
        return dock_error(422, outcome.reason or "rejected", "the upload failed verification")
    return _offset_headers(Response(status=204), upload, offset)


@uploads_api.delete("/uploads/<upload_id>")
@dock_required
def terminate(upload_id: str) -> ResponseReturnValue:
    upload = _own_upload(upload_id)
    if upload is None:
        return tus_headers(Response(status=404))
    if upload.status != "receiving":
        return dock_error(409, "closed", "only an upload in progress can be terminated")
    try:
        with _staging().locked(upload.id):
            upload.status, upload.reason, upload.dock_wrapped_key = "rejected", "terminated", None
            upload.completed_at = now()
            db().commit()
            _live().discard(upload.id)
            _staging().remove(upload.id)
    except UploadBusy:
        return dock_error(423, "busy", "another request is writing this upload; retry shortly")
    return tus_headers(Response(status=204))


@uploads_api.get("/uploads/<upload_id>/receipt")
@dock_required
def get_receipt(upload_id: str) -> ResponseReturnValue:
    upload = _own_upload(upload_id)
    if upload is None:
        return dock_error(404, "not_found", "no such upload")
    if upload.status == "receiving" and upload.upload_offset == upload.length:
        # Complete but never verified (the service stopped mid-verification): finish now.
        try:
            with _staging().locked(upload.id):
                db().rollback()
                _finish(upload.id, upload.length)
        except UploadBusy:
            pass
        upload = must_get(db(), Upload, upload_id, fresh=True)
    ledger: LedgerService = current_app.extensions["bwc.ledger"]
    return jsonify(receipt(db(), ledger, upload))
