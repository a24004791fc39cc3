"""Decrypting, ranged reads of evidence: the API's content endpoint and the UI's stream.

Every read is authorised by the policy (another school's or wearer's item is 404), needs
a stated purpose and appends a custody event: a stream once per signed-in session, item
and purpose (a player makes many range requests); a download for every request that
starts at byte 0. Bytes are decrypted on the fly from ranged object reads, only the
segments covering the range, and only authenticated segments are ever sent."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, g, request, session
from flask.typing import ResponseReturnValue

from app.custody import record_event
from app.proxies import proxy_of
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


@dataclass(frozen=True)
class _Source:
    """What is served: the original, or its playback proxy (streams only)."""

    sha256: str
    size: int
    media_type: str
    key: str
    object_id: str
    stored_size: int
    wrapped_key: str
    key_version: str
    context_id: str
    derivative_id: str | None = None


def _original(item: EvidenceItem) -> _Source:
    return _Source(
        item.sha256,
        item.size,
        item.media_type,
        item.object_key,
        item.object_id or "",
        item.stored_size or 0,
        item.wrapped_key or "",
        item.key_version or "",
        item.id,
    )


def _proxy_or_404(item: EvidenceItem) -> _Source:
    proxy = proxy_of(db(), item.id)
    if proxy is None:
        abort(404)
    return _Source(
        proxy.sha256,
        proxy.size,
        proxy.media_type,
        proxy.object_key,
        proxy.object_id or "",
        proxy.stored_size or 0,
        proxy.wrapped_key or "",
        proxy.key_version or "",
        proxy.id,
        derivative_id=proxy.id,
    )


def _record_access(
    item: EvidenceItem, source: _Source, kind: EventType, purpose: str, note: str
) -> None:
    user = g.user
    rendition = {"rendition": "proxy", "derivative": source.derivative_id}
    record_event(
        db(),
        kind,
        now(),
        item.district_id,
        user.pseudonym,
        subject=f"evidence:{item.id}",
        evidence_id=item.id,
        sha256=source.sha256,
        purpose=purpose,
        note=note,
        user_id=user.id,
        **(rendition if source.derivative_id else {}),
    )
    db().commit()


def _etag(source: _Source) -> str:
    return f'"{source.sha256}"'


def _not_modified(item: EvidenceItem, source: _Source) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return inm.strip() == "*" or _etag(source) in [t.strip() for t in inm.split(",")]
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            return parsedate_to_datetime(ims) >= item.ingested_at.replace(microsecond=0)
        except (TypeError, ValueError):
            return False
    return False


def _precondition_failed(source: _Source) -> bool:
    im = request.headers.get("If-Match")
    if im is None:
        return False
    tags = [t.strip() for t in im.split(",")]
    return not ("*" in tags or _etag(source) in tags)


def _range_applies(item: EvidenceItem, source: _Source) -> bool:
    """If-Range: honour the range only when the validator still matches."""
    if_range = request.headers.get("If-Range")
    if if_range is None:
        return True
    if if_range.startswith('"') or if_range.startswith("W/"):
        return if_range.strip() == _etag(source)
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
    wants_proxy = request.args.get("rendition") == "proxy"
    if wants_proxy and download:
        abort(404)  # downloads are always the original
    source = _proxy_or_404(item) if wants_proxy else _original(item)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": _etag(source),
        "Last-Modified": format_datetime(item.ingested_at, usegmt=True),
        "Content-Disposition": _disposition(item, download),
        "Cache-Control": "private, no-store",
    }
    if _precondition_failed(source):
        return Response(status=412, headers=headers)
    if _not_modified(item, source):
        return Response(status=304, headers=headers)
    try:
        wanted = (
            parse_range(request.headers.get("Range"), source.size)
            if _range_applies(item, source)
            else None
        )
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{source.size}"
        return Response(status=416, headers=headers)
    chosen = wanted or ByteRange(0, source.size, source.size)

    kind = EventType.EVIDENCE_DOWNLOADED if download else EventType.EVIDENCE_STREAMED
    seen_key = f"{item.id}:{purpose}:{source.derivative_id or 'original'}"
    seen = set(session.get("streamed", []))
    if download and chosen.start == 0:
        _record_access(item, source, kind, purpose, note)
    elif not download and seen_key not in seen:
        _record_access(item, source, kind, purpose, note)
        session["streamed"] = sorted(seen | {seen_key})[-200:]

    vault: Vault = current_app.extensions["bwc.vault"]
    try:
        dek = vault.keys.unwrap(
            decode_wrapped(source.key_version, source.wrapped_key),
            item_context(source.context_id, source.object_id),
        )
        obj = vault_core.EncryptedObject(
            source.key, bytes.fromhex(source.object_id), source.stored_size
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

    response = Response(
        body(), mimetype=source.media_type, headers=headers, direct_passthrough=True
    )
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
    """The player's source: inline, ranged, purpose recorded once per session and
    rendition; `rendition=proxy` plays the item's playback proxy instead."""
    return _serve(evidence_id, download=False)


@content_api.get("/evidence/<evidence_id>/download")
@login_required
def download(evidence_id: str) -> ResponseReturnValue:
    return _serve(evidence_id, download=True)
