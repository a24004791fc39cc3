"""Decrypting, ranged reads of evidence: the API's content endpoint and the UI's stream.

Every read is authorised by the policy (another school's or wearer's item is 404), needs
a stated purpose and appends a custody event: a stream once per signed-in session, item
and purpose (a player makes many range requests); a download for every request that
starts at byte 0. Bytes are decrypted on the fly from ranged object reads, only the
segments covering the range, and only authenticated segments are ever sent."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, g, request, session
from flask.typing import ResponseReturnValue

from app.custody import record_event
from app.ranges import ByteRange, Unsatisfiable, parse_range
from app.vault import Vault, decode_wrapped, item_context
from app.web.context import current_principal, db, login_required, now, require
from audit.events import EventType
from evidence import vault as vault_core
from evidence.adapters.sql.items import EvidenceItem
from evidence.errors import IntegrityError, StorageError
from evidence.policy import Action, Kind, Resource

logger = logging.getLogger(__name__)
content_api = Blueprint("content_api", __name__)

#: Why someone may look at footage of pupils; one must be chosen for every access.
PURPOSES = {
    "incident_review": "Reviewing an incident",
    "investigation": "Investigation",
    "complaint": "Handling a complaint",
    "disclosure": "Preparing a disclosure",
    "legal": "Legal proceedings",
    "wearer_review": "Wearer reviewing own recording",
    "audit": "Quality or compliance audit",
}
MAX_PURPOSE_NOTE = 500


def _item_or_404(evidence_id: str, action: Action) -> EvidenceItem:
    item = db().get(EvidenceItem, evidence_id) if len(evidence_id) == 36 else None
    if item is None or item.status != "verified" or item.object_id is None:
        abort(404)
    require(
        action,
        Resource(Kind.EVIDENCE, item.district_id, item.school_id, item.wearer_id),
    )
    return item


def _purpose() -> tuple[str, str]:
    purpose = request.args.get("purpose", "")
    if purpose not in PURPOSES:
        abort(
            400,
            description="state why you are accessing this footage: purpose must be one of "
            + ", ".join(sorted(PURPOSES)),
        )
    note = request.args.get("note", "").strip()
    if len(note) > MAX_PURPOSE_NOTE:
        abort(400, description=f"the purpose note is limited to {MAX_PURPOSE_NOTE} characters")
    return purpose, note


def _record_access(item: EvidenceItem, kind: EventType, purpose: str, note: str) -> None:
    user = g.user
    record_event(
        db(),
        kind,
        now(),
        item.district_id,
        user.pseudonym,
        subject=f"evidence:{item.id}",
        evidence_id=item.id,
        sha256=item.sha256,
        purpose=purpose,
        note=note,
        user_id=user.id,
    )
    db().commit()


def _etag(item: EvidenceItem) -> str:
    return f'"{item.sha256}"'


def _not_modified(item: EvidenceItem) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return inm.strip() == "*" or _etag(item) in [t.strip() for t in inm.split(",")]
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            return parsedate_to_datetime(ims) >= item.ingested_at.replace(microsecond=0)
        except (TypeError, ValueError):
            return False
    return False


def _precondition_failed(item: EvidenceItem) -> bool:
    im = request.headers.get("If-Match")
    if im is None:
        return False
    tags = [t.strip() for t in im.split(",")]
    return not ("*" in tags or _etag(item) in tags)


def _range_applies(item: EvidenceItem) -> bool:
    """If-Range: honour the range only when the validator still matches."""
    if_range = request.headers.get("If-Range")
    if if_range is None:
        return True
    if if_range.startswith('"') or if_range.startswith("W/"):
        return if_range.strip() == _etag(item)
    try:
        return parsedate_to_datetime(if_range) >= item.ingested_at.replace(microsecond=0)
    except (TypeError, ValueError):
        return False


def _disposition(item: EvidenceItem, download: bool) -> str:
    safe = "".join(c for c in item.file_name if c.isascii() and (c.isalnum() or c in "._-"))
    kind = "attachment" if download else "inline"
    return f"{kind}; filename=\"{safe or 'evidence'}\"; filename*=UTF-8''{quote(item.file_name)}"


def _serve(evidence_id: str, *, download: bool) -> ResponseReturnValue:
    item = _item_or_404(evidence_id, Action.DOWNLOAD_EVIDENCE if download else Action.VIEW_EVIDENCE)
    purpose, note = _purpose()
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": _etag(item),
        "Last-Modified": format_datetime(item.ingested_at, usegmt=True),
        "Content-Disposition": _disposition(item, download),
        "Cache-Control": "private, no-store",
    }
    if _precondition_failed(item):
        return Response(status=412, headers=headers)
    if _not_modified(item):
        return Response(status=304, headers=headers)
    try:
        wanted = (
            parse_range(request.headers.get("Range"), item.size) if _range_applies(item) else None
        )
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{item.size}"
        return Response(status=416, headers=headers)
    chosen = wanted or ByteRange(0, item.size, item.size)

    kind = EventType.EVIDENCE_DOWNLOADED if download else EventType.EVIDENCE_STREAMED
    seen_key = f"{item.id}:{purpose}"
    seen = set(session.get("streamed", []))
    if download and chosen.start == 0:
        _record_access(item, kind, purpose, note)
    elif not download and seen_key not in seen:
        _record_access(item, kind, purpose, note)
        session["streamed"] = sorted(seen | {seen_key})[-200:]

    vault: Vault = current_app.extensions["bwc.vault"]
    try:
        dek = vault.keys.unwrap(
            decode_wrapped(item.key_version or "", item.wrapped_key or ""),
            item_context(item.id, item.object_id or ""),
        )
        obj = vault_core.EncryptedObject(
            item.object_key, bytes.fromhex(item.object_id or ""), item.stored_size or 0
        )
        pieces = vault_core.read_plaintext(vault.store, obj, dek, chosen.start, chosen.end)
        first = next(pieces, b"")
    except IntegrityError:
        logger.error("evidence %s failed authentication on read", item.id)
        abort(500, description="this item failed its integrity check; nothing was served")
    except StorageError:
        logger.exception("evidence %s could not be read from storage", item.id)
        abort(503, description="the object store is unavailable; try again shortly")

    def body() -> Iterator[bytes]:
        yield first
        try:
            yield from pieces
        except IntegrityError:
            # Only authenticated bytes went out; the client sees a short body.
            logger.error("evidence %s failed authentication mid-stream", item.id)

    response = Response(body(), mimetype=item.media_type, headers=headers, direct_passthrough=True)
    response.headers["Content-Length"] = str(chosen.length)
    if wanted is not None:
        response.status_code = 206
        response.headers["Content-Range"] = chosen.content_range()
    return response


@content_api.get("/api/v1/evidence/<evidence_id>/content")
@login_required
def api_content(evidence_id: str) -> ResponseReturnValue:
    """The original's bytes; `download=1` for a download (needs the download permission)."""
    current_principal()
    return _serve(evidence_id, download=request.args.get("download") == "1")


@content_api.get("/evidence/<evidence_id>/stream")
@login_required
def stream(evidence_id: str) -> ResponseReturnValue:
    """The player's source: inline, ranged, purpose recorded once per session."""
    return _serve(evidence_id, download=False)


@content_api.get("/evidence/<evidence_id>/download")
@login_required
def download(evidence_id: str) -> ResponseReturnValue:
    return _serve(evidence_id, download=True)
