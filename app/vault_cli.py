"""`bwc cameras|docks|evidence|keys`: the vault's command line (DESIGN.md §7).

`evidence import` takes media from other sources through the same verified path a dock
uses: encrypted here with a fresh data key wrapped to the ingest key, staged, stored,
read back, authenticated and hashed before the item exists."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import ingest
from app.accounts import admin as accounts
from app.db import Database, schema_is_current
from app.declaration import UploadRefused, declare
from app.devices import create_dock, register_camera
from app.jobs import Dispatcher, build_dispatcher
from app.rotation import rotate_keys
from app.settings import Settings
from app.staging import Staging
from app.vault import Vault
from evidence.adapters.sql.items import EvidenceItem
from evidence.crypto import keywrap
from evidence.errors import NotFound
from evidence.upload_metadata import seal_for_ingest

CLI_ACTOR = accounts.CLI_ACTOR


class VaultCliError(Exception):
    """A failure the CLI reports in one line."""


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    try:
        if not schema_is_current(database.engine):
            raise VaultCliError("the database is not initialised: run `bwc init` first")
        yield database
    finally:
        database.dispose()


def cmd_cameras_add(settings: Settings, args: argparse.Namespace) -> None:
    with _database(settings) as database, database.transaction() as session:
        district = accounts.only_district(session)
        school = accounts.find_school(session, district.id, args.school)
        if school is None:
            raise VaultCliError(f"no school with code {args.school}")
        camera = register_camera(
            session,
            district,
            school,
            args.serial,
            profile=args.profile,
            actor=CLI_ACTOR,
            now=_now(),
            wearer_badge=args.wearer,
        )
        print(f"registered camera {camera.serial} ({camera.profile}) at {school.code}")


def cmd_docks_add(settings: Settings, args: argparse.Namespace) -> None:
    with _database(settings) as database, database.transaction() as session:
        district = accounts.only_district(session)
        school = accounts.find_school(session, district.id, args.school)
        if school is None:
            raise VaultCliError(f"no school with code {args.school}")
        dock, token = create_dock(session, district, school, args.name, actor=CLI_ACTOR, now=_now())
    print(f"added dock {dock.name} at {school.code}; one-time enrolment token (24 h):")
    print(token)


def cmd_docks_revoke(settings: Settings, args: argparse.Namespace) -> None:
    from app.devices import revoke_dock
    from evidence.adapters.sql.org import Dock

    with _database(settings) as database, database.transaction() as session:
        district = accounts.only_district(session)
        dock = session.scalars(
            select(Dock).where(Dock.district_id == district.id, Dock.name == args.name)
        ).first()
        if dock is None:
            raise VaultCliError(f"no dock named {args.name}")
        revoke_dock(session, dock, actor=CLI_ACTOR, now=_now())
    print(f"revoked dock {args.name}: its credential is refused from now on")


def _parse_time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise VaultCliError(f"--recorded-at {raw!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise VaultCliError("--recorded-at needs a UTC offset, e.g. 2026-11-30T09:15:00Z")
    return moment


def cmd_evidence_import(settings: Settings, args: argparse.Namespace) -> None:
    source = Path(args.file)
    if not source.is_file():
        raise VaultCliError(f"{source} is not a readable file")
    recorded = _parse_time(args.recorded_at)
    vault = Vault(settings)
    staging = Staging(settings.upload_path)
    with _database(settings) as database:
        with database.sessions() as session:
            version, public_text = vault.ingest_public_key(session)
        public = keywrap.decode_public_key(public_text)
        staging.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = staging.root / f".import-{uuid.uuid4().hex}"
        extra = {"wearer_badge": args.wearer} if args.wearer else {}
        if recorded:
            extra["recorded_start"] = recorded.isoformat()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with source.open("rb") as src, os.fdopen(fd, "wb") as dst:
                result, meta = seal_for_ingest(
                    src,
                    dst,
                    ingest_public_key=public,
                    ingest_key_version=version,
                    camera_serial=args.camera,
                    file_identity="import",
                    file_name=os.fsencode(source.name),
                    media_type=_guess_media_type(source),
                    extra=extra,
                )
                dst.flush()
                os.fsync(dst.fileno())
            try:
                declaration = declare(meta, result.ciphertext_size, settings)
                with database.transaction() as session:
                    district = accounts.only_district(session)
                    upload = ingest.create_upload(
                        session,
                        staging,
                        dock=None,
                        district_id=district.id,
                        declaration=declaration,
                        length=result.ciphertext_size,
                        settings=settings,
                        now=_now(),
                        actor=CLI_ACTOR,
                    )
                    upload_id, existing = upload.id, upload.evidence_id
            except UploadRefused as refused:
                raise VaultCliError(str(refused)) from None
            if existing:
                print(f"already held as evidence {existing} (sha256 {result.plaintext_sha256})")
                return
            os.replace(temp, staging.path(upload_id))
            with staging.locked(upload_id):
                outcome = ingest.finalise(
                    database, vault, staging, upload_id, now=_now(), jobs=_dispatcher(settings)
                )
        finally:
            temp.unlink(missing_ok=True)
    if outcome.status != "verified":
        raise VaultCliError(f"import rejected: {outcome.reason}")
    print(
        f"imported {source.name} as evidence {outcome.evidence_id} "
        f"({result.plaintext_size} bytes, sha256 {result.plaintext_sha256}); verified"
    )


def _dispatcher(settings: Settings) -> Dispatcher:
    """Jobs queued here run on RQ workers, or on a running service's in-process worker."""
    return build_dispatcher(settings, None)


def _guess_media_type(path: Path) -> str:
    import mimetypes

    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _item(session: Session, evidence_id: str) -> EvidenceItem:
    item = session.get(EvidenceItem, evidence_id)
    if item is None or item.object_id is None:
        raise NotFound(f"no stored evidence item {evidence_id}")
    return item


def cmd_evidence_export(settings: Settings, args: argparse.Namespace) -> None:
    from app.fixity import export_item

    out = Path(args.out)
    with _database(settings) as database:
        sha, size = export_item(
            database, Vault(settings), args.id, out, actor=CLI_ACTOR, now=_now()
        )
    print(f"exported evidence {args.id} to {out} ({size} bytes, sha256 {sha} verified)")


def cmd_evidence_verify(settings: Settings, args: argparse.Namespace) -> None:
    from app.fixity import check_fixity

    if not args.all and not args.id:
        raise VaultCliError("name an evidence id or give --all")
    vault = Vault(settings)
    failed = damaged = 0
    checked = 0
    with _database(settings) as database:
        with database.sessions() as session:
            if args.all:
                ids = list(
                    session.scalars(
                        select(EvidenceItem.id)
                        .where(EvidenceItem.object_id.is_not(None))
                        .order_by(EvidenceItem.ingested_at, EvidenceItem.id)
                    )
                )
            else:
                ids = [_item(session, args.id).id]
        for evidence_id in ids:
            result = check_fixity(database, vault, evidence_id, actor=CLI_ACTOR, now=_now())
            checked += 1
            if result.ok:
                print(f"{evidence_id}: ok (sha256 {result.sha256})")
            else:
                failed += 1
                print(f"{evidence_id}: TAMPERED: {result.problem}", file=sys.stdout)
            for copy in result.derivatives:
                if copy.ok:
                    print(f"{evidence_id}: {copy.kind} copy {copy.derivative_id}: ok")
                else:
                    damaged += 1
                    print(
                        f"{evidence_id}: {copy.kind} copy {copy.derivative_id}: DAMAGED: "
                        f"{copy.problem}; set aside (the item page can make a new one)"
                    )
    if failed:
        raise VaultCliError(f"{failed} of {checked} item(s) failed fixity and are marked tampered")
    if damaged:
        copies = "1 derivative copy" if damaged == 1 else f"{damaged} derivative copies"
        raise VaultCliError(
            f"{copies} failed fixity and were set aside; the {checked} original(s) are sound"
        )
    print(f"fixity ok for {checked} item(s)")


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> None:
    with _database(settings) as database:
        report = rotate_keys(database, Vault(settings), actor=CLI_ACTOR, now=_now())
    print(report)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cameras = sub.add_parser("cameras", help="register cameras").add_subparsers(
        dest="cameras_command", required=True, metavar="ACTION"
    )
    cam_add = cameras.add_parser("add", help="register a camera to a school")
    cam_add.add_argument("serial")
    cam_add.add_argument("--profile", required=True, help="device profile, e.g. bwc-msc/1")
    cam_add.add_argument("--school", required=True, help="school code")
    cam_add.add_argument("--wearer", help="badge of the wearer it is assigned to (else pooled)")
    cam_add.set_defaults(func=cmd_cameras_add)

    docks = sub.add_parser("docks", help="docking stations").add_subparsers(
        dest="docks_command", required=True, metavar="ACTION"
    )
    dock_add = docks.add_parser("add", help="add a dock; prints its one-time enrolment token")
    dock_add.add_argument("name")
    dock_add.add_argument("--school", required=True, help="school code")
    dock_add.set_defaults(func=cmd_docks_add)
    dock_revoke = docks.add_parser("revoke", help="stop a dock's uploads at once")
    dock_revoke.add_argument("name")
    dock_revoke.set_defaults(func=cmd_docks_revoke)

    ev = sub.add_parser("evidence", help="evidence items").add_subparsers(
        dest="evidence_command", required=True, metavar="ACTION"
    )
    imp = ev.add_parser("import", help="ingest a media file through the verified path")
    imp.add_argument("file")
    imp.add_argument("--camera", required=True, help="serial of the registered camera")
    imp.add_argument("--wearer", help="badge of the wearer")
    imp.add_argument("--recorded-at", help="RFC 3339 start time of the recording")
    imp.set_defaults(func=cmd_evidence_import)
    exp = ev.add_parser("export", help="decrypt an item to a file, verifying its SHA-256")
    exp.add_argument("id")
    exp.add_argument("--out", required=True, help="file to create (never overwritten)")
    exp.set_defaults(func=cmd_evidence_export)
    ver = ev.add_parser("verify", help="fixity check: re-read, authenticate, re-hash")
    ver.add_argument("id", nargs="?")
    ver.add_argument("--all", action="store_true", help="check every stored item")
    ver.set_defaults(func=cmd_evidence_verify)

    keys = sub.add_parser("keys", help="key-encryption keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    keys.add_parser(
        "rotate", help="re-wrap every data key under a new key version (resumable)"
    ).set_defaults(func=cmd_keys_rotate)
