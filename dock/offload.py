"""One docking session: identity, scan, spool, upload, verify, wipe, report.

The order is the safety argument (DESIGN.md §6): nothing is read before the USB
identity passes, nothing but DEVICE.JSON before the on-volume identity agrees, every
readable file is copied once (hashed and encrypted) into the spool, every spooled file
is uploaded until the service returns a receipt the dock can verify offline, and only
then, if the session's decision is still `accept`, is a recording and its sidecar
re-hashed and wiped. Each step is journalled before the next starts, so a crash or an
unplugged camera resumes at the step it reached."""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dock import names
from dock.client import ServiceClient, ServiceError
from dock.enrolment import Enrolment
from dock.eventlog import corrected
from dock.findings import Findings, check_sidecar_against, decide_session, inspect_volume
from dock.identity import check_device_json, check_usb
from dock.journal import FileRow, Journal
from dock.names import FileKind
from dock.profiles import Profile
from dock.receipts import ReceiptInvalid, verify_receipt
from dock.report import Alert, Decision, Entry, Flag, Outcome, SessionReport, SkipReason
from dock.spool import Spool, SpoolFull
from dock.usb import UsbDevice
from dock.volume import Candidate, SourceChanged, VolumeError, open_root, read_small, scan_volume
from dock.wipe import WipeRefused, wipe
from evidence.crypto import keywrap

logger = logging.getLogger(__name__)
MEDIA_TYPES = {
    FileKind.RECORDING: "video/mp4",
    FileKind.SIDECAR: "application/json",
    FileKind.DEVICE_METADATA: "application/json",
    FileKind.EVENT_LOG: "text/plain",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass
class Progress:
    """What the bay shows: updated by the session, read by the display and heartbeat."""

    serial: str | None
    state: str = "identifying"
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    last_error: str | None = None
    uploaded: dict[int, int] = field(default_factory=dict)


@dataclass
class Context:
    """What a session needs from the agent (wired once in the agent)."""

    enrolment: Enrolment
    client: ServiceClient
    journal: Journal
    spool: Spool
    profiles: dict[str, Profile]
    report_dir: Path
    upload_concurrency: int = 2
    registered: Callable[[str], bool] | None = None
    now: Callable[[], datetime] = utc_now
    # Called at named points of a session ("reading", "spooled", "uploading", "verified",
    # "wiping", "unlinked"); the crash tests kill the agent there. A no-op otherwise.
    fault: Callable[[str], None] = lambda point: None
    # Mounts an identified camera's volume read-only when nothing has (real hardware).
    mount_volume: Callable[[UsbDevice], Path | None] | None = None


def _identity(candidate: Candidate, findings: Findings) -> str:
    """A stable identity of the camera file for the service's de-duplication."""
    name = candidate.path_raw.decode("ascii", errors="replace")
    printable = name.isascii() and name.isprintable() and len(name) <= 120
    label = name if printable else "b64:" + _b64(candidate.path_raw)[:120]
    sidecar = findings.sidecars.get(candidate.path_raw)
    when = _rfc3339(sidecar.start) if sidecar else str(candidate.mtime_ns)
    return f"{label}@{when}".replace(" ", "_")[:200]


class Session:
    def __init__(self, ctx: Context, device: UsbDevice, progress: Progress) -> None:
        self.ctx = ctx
        self.device = device
        self.progress = progress
        serial = device.serial or "unknown"
        self.id = ctx.journal.unfinished_session(serial) or (
            ctx.now().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:12]
        )
        ctx.journal.open_session(self.id, device.serial)
        self.report = SessionReport(
            session_id=self.id,
            started_at=_rfc3339(ctx.now()),
            device=device.to_json(),
            decision=Decision.REFUSE,
        )
        self.entries: dict[bytes, Entry] = {}
        self.later_flags: set[Flag] = set()
        self.later_alerts: set[Alert] = set()

    # --- the steps --------------------------------------------------------------------

    def run(self) -> SessionReport:
        try:
            self._run()
        except SpoolFull as exc:
            self._fail(f"spool full: {exc}; the camera was left untouched")
        except ServiceError as exc:
            self._fail(f"service: {exc}; the camera was left untouched")
        except (VolumeError, OSError) as exc:
            self._fail(f"volume: {exc}; the camera was left untouched")
        return self._finish()

    def _fail(self, message: str) -> None:
        logger.error("session %s: %s", self.id, message)
        self.report.errors.append(message)
        self.progress.last_error = message
        self.progress.state = "error"

    def _run(self) -> None:
        ctx, device = self.ctx, self.device
        registered = ctx.registered or _registered_from(ctx.client)
        usb = check_usb(device, ctx.profiles, registered)
        if usb.profile is not None:
            self.report.device["profile"] = usb.profile.id
        if not usb.passed or usb.profile is None:
            self._refuse(usb.reasons)
            return
        profile = usb.profile
        volume = device.volume
        if volume is None and ctx.mount_volume is not None:
            volume = ctx.mount_volume(device)  # only now: the USB identity has passed
        if volume is None:
            raise VolumeError("the camera's volume is not mounted and could not be mounted")
        root_fd = open_root(volume)
        try:
            self.progress.state = "scanning"
            scan = scan_volume(root_fd, profile, now=ctx.now())
            by_path = {c.path_raw: c for c in scan.candidates}
            meta = by_path.get(profile.device_metadata.encode())
            meta_bytes = None
            if meta is not None:
                try:
                    meta_bytes = read_small(root_fd, meta, profile.limits.max_metadata_bytes)
                except VolumeError:
                    meta_bytes = None
            verdict = check_device_json(usb, meta_bytes, profile.limits)
            if verdict.decision is Decision.REFUSE:
                self._refuse(verdict.reasons)
                return
            findings = inspect_volume(
                root_fd, scan, profile, usb_serial=device.serial or "", dock_now=ctx.now()
            )
            if findings.clock_offset is not None:
                self.report.clock_offset_ms = int(findings.clock_offset / timedelta(milliseconds=1))
            for entry in scan.skipped:
                self.entries[entry.path_raw] = entry
            self._reconcile({c.path_raw for c in scan.candidates})
            self._forgive_own_wipes(findings)
            decision, alerts = decide_session(scan, findings)
            self.report.decision, self.report.alerts = decision, set(alerts)
            self._offload(root_fd, scan.candidates, findings, profile)
            decision, alerts = decide_session(
                scan, findings, later_flags=self.later_flags, later_alerts=self.later_alerts
            )
            self.report.decision, self.report.alerts = decision, set(alerts)
            self._post_activations(findings)
            if decision is Decision.ACCEPT:
                self._wipe(root_fd, scan.candidates, profile)
        finally:
            os.close(root_fd)

    def _reconcile(self, present: set[bytes]) -> None:
        """Files an interrupted run of this session already took off the camera.

        A row left `wiping` whose file is gone was unlinked just before the crash: it
        is wiped (the receipt was verified and the re-hash matched before the unlink)."""
        for row in self.ctx.journal.files(self.id):
            path = base64.b64decode(row.path_b64)
            if path in present or row.state not in ("wiping", "wiped"):
                continue
            if row.state == "wiping":
                self.ctx.journal.advance(row.id, "wiped", wiped=1)
                try:
                    self.ctx.client.post_wipe(row.evidence_id or "", row.sha256 or "", self.id)
                except ServiceError as exc:
                    self.report.errors.append(f"wipe not reported yet: {exc}")
            self.entries[path] = Entry(
                path,
                Outcome.INGESTED,
                size=row.size,
                sha256=row.sha256,
                evidence_id=row.evidence_id,
                leaf_index=row.leaf_index,
                wiped=True,
            )

    def _forgive_own_wipes(self, findings: Findings) -> None:
        """A recording this session wiped before a crash is neither missing nor does it
        orphan its sidecar: the gap is the dock's own, journalled, doing."""
        wiped = {p for p, e in self.entries.items() if e.wiped}
        names_gone = {names.split_path(p)[1].decode("ascii", "replace") for p in wiped}
        findings.missing_recordings = [
            n for n in findings.missing_recordings if n not in names_gone
        ]
        stems = {
            (names.split_path(p)[0], names.stem(names.split_path(p)[1]).upper()) for p in wiped
        }
        for path, flags in findings.flags.items():
            folder, name = names.split_path(path)
            if (folder, names.stem(name).upper()) in stems:
                flags.discard(Flag.ORPHAN_SIDECAR)

    def _refuse(self, reasons: list) -> None:  # type: ignore[type-arg]
        self.report.decision = Decision.REFUSE
        self.report.refusal_reasons = list(reasons)
        self.report.alerts = {Alert.DEVICE_REFUSED}
        self.progress.state = "refused"

    def _offload(
        self, root_fd: int, candidates: list[Candidate], findings: Findings, profile: Profile
    ) -> None:
        ctx = self.ctx
        public = keywrap.decode_public_key(ctx.enrolment.ingest_public_key)
        self.progress.state = "offloading"
        self.progress.files_total = len(candidates)
        self.progress.bytes_total = sum(c.size for c in candidates)
        uploads: list[tuple[Candidate, FileRow, Future[None]]] = []
        with ThreadPoolExecutor(ctx.upload_concurrency, thread_name_prefix="upload") as pool:
            for c in candidates:
                entry = self.entries.setdefault(
                    c.path_raw, Entry(c.path_raw, Outcome.NOT_READ, size=c.size)
                )
                entry.flags |= findings.flags_for(c.path_raw)
                if c.path_raw in findings.unstable:
                    entry.outcome, entry.reason = Outcome.SKIPPED, SkipReason.FILE_UNSTABLE
                    continue
                row = ctx.journal.discover(self.id, _b64(c.path_raw), c.size, c.mtime_ns, c.st_ino)
                if row.state == "discovered":
                    try:
                        row = self._spool(root_fd, c, row, findings, profile, public)
                    except SourceChanged:
                        entry.outcome, entry.reason = Outcome.SKIPPED, SkipReason.FILE_UNSTABLE
                        self.later_alerts.add(Alert.SOURCE_CHANGED_AFTER_COPY)
                        continue
                self._sidecar_check(c, row, findings, entry)
                if row.state in ("spooled", "uploading"):
                    uploads.append((c, row, pool.submit(self._upload, row)))
                else:
                    self._settled(entry, row)
            for c, _row, future in uploads:
                entry = self.entries[c.path_raw]
                try:
                    future.result()
                except (ServiceError, ReceiptInvalid) as exc:
                    entry.outcome = Outcome.NOT_READ
                    self.report.errors.append(f"{entry.path}: {exc}")
                    self.progress.last_error = str(exc)
                    if isinstance(exc, ServiceError) and exc.retryable:
                        raise
                fresh = ctx.journal.file(self.id, _b64(c.path_raw))
                if fresh is not None:
                    self._settled(entry, fresh)

    def _spool(
        self,
        root_fd: int,
        c: Candidate,
        row: FileRow,
        findings: Findings,
        profile: Profile,
        public: bytes,
    ) -> FileRow:
        extra: dict[str, str] = {}
        sidecar = findings.sidecars.get(c.path_raw)
        offset = findings.clock_offset or timedelta(0)
        if sidecar is not None:
            extra["camera_recorded_start"] = _rfc3339(sidecar.start)
            extra["recorded_start"] = _rfc3339(corrected(sidecar.start, offset))
            extra["recorded_end"] = _rfc3339(corrected(sidecar.end, offset))
            if sidecar.officer_badge:
                extra["wearer_badge"] = sidecar.officer_badge
        if findings.clock_offset is not None:
            extra["clock_offset_ms"] = str(int(offset / timedelta(milliseconds=1)))
        flags = sorted(f.value for f in findings.flags_for(c.path_raw))
        if flags:
            extra["flags"] = ",".join(flags)
        spooled = self.ctx.spool.seal(
            root_fd,
            c,
            fault=self.ctx.fault,
            ingest_public_key=public,
            ingest_key_version=self.ctx.enrolment.ingest_key_version,
            camera_serial=self.device.serial or "",
            file_identity=_identity(c, findings),
            media_type=MEDIA_TYPES.get(c.kind, "application/octet-stream"),
            extra=extra,
        )
        meta = {k: _b64(v) for k, v in spooled.metadata.items()}
        meta["_length"] = str(spooled.ciphertext_size)
        self.ctx.journal.advance(
            row.id, "spooled", sha256=spooled.sha256, spool_name=spooled.name, meta=meta
        )
        self.ctx.fault("spooled")
        self.progress.files_done += 1
        self.progress.bytes_done += c.size
        fresh = self.ctx.journal.file(self.id, row.path_b64)
        if fresh is None:  # pragma: no cover - written above
            raise RuntimeError("journal lost a row")
        return fresh

    def _sidecar_check(self, c: Candidate, row: FileRow, findings: Findings, entry: Entry) -> None:
        sidecar = findings.sidecars.get(c.path_raw)
        if sidecar is not None and row.sha256:
            flags = check_sidecar_against(sidecar, row.sha256, c.size)
            entry.flags |= flags
            self.later_flags |= flags

    def _upload(self, row: FileRow) -> None:
        """Upload one spooled file (resuming a recorded upload) and verify its receipt."""
        ctx = self.ctx
        meta = {k: base64.b64decode(v) for k, v in (row.meta or {}).items() if k != "_length"}
        length = int((row.meta or {})["_length"])
        url = row.upload_url
        if url is not None and ctx.client.offset(url) is None:
            closed = ctx.client.receipt(url)
            if closed.get("status") != "verified" and closed.get("reason") in (
                "expired",
                "terminated",
            ):
                url = None  # the service let it go: start a new upload of the same bytes
        if url is None:
            url = ctx.client.create_upload(length, meta)
            ctx.journal.advance(row.id, "uploading", upload_url=url)
        spool_path = ctx.spool.path(row.spool_name or "")
        if spool_path.exists():
            try:
                ctx.client.upload(
                    url, spool_path, length, progress=lambda _: ctx.fault("uploading")
                )
            except ServiceError as exc:
                if exc.status not in (410, 422):  # closed or refused: the receipt says why
                    raise
        receipt = ctx.client.receipt(url)
        if receipt.get("status") == "rejected":
            ctx.journal.advance(row.id, "rejected", error=str(receipt.get("reason")))
            ctx.spool.remove(row.spool_name or "")
            raise ReceiptInvalid(f"the service rejected the upload: {receipt.get('reason')}")
        copy = verify_receipt(receipt, ctx.enrolment.log_verifier_key, row.sha256 or "")
        ctx.journal.advance(
            row.id,
            "verified",
            evidence_id=copy.evidence_id,
            leaf_index=copy.leaf_index,
            error="duplicate" if copy.duplicate else None,
        )
        ctx.spool.remove(row.spool_name or "")
        ctx.fault("verified")

    def _settled(self, entry: Entry, row: FileRow) -> None:
        entry.sha256 = row.sha256
        entry.evidence_id = row.evidence_id
        entry.leaf_index = row.leaf_index
        entry.wiped = row.wiped
        if row.state in ("verified", "wiping", "wiped", "kept", "done"):
            entry.outcome = Outcome.DUPLICATE if row.error == "duplicate" else Outcome.INGESTED

    def _post_activations(self, findings: Findings) -> None:
        log = findings.event_log
        if log is None or not self.device.serial:
            return
        links = {
            names.split_path(e.path_raw)[1].decode("ascii", "replace"): e.evidence_id
            for e in self.entries.values()
            if e.evidence_id
        }
        events = [
            {
                "seq": e.seq,
                "t": _rfc3339(e.camera_time),
                "event": e.event.value,
                "file": e.file,
                "trigger": e.trigger.value if e.trigger else None,
                "reason": e.reason,
            }
            for e in log.events
            if e.event.value != "UNKNOWN"
        ]
        offset = self.report.clock_offset_ms or 0
        try:
            self.ctx.client.post_activations(
                {
                    "camera_serial": self.device.serial,
                    "session_id": self.id,
                    "clock_offset_ms": offset,
                    "events": events,
                    "evidence": links,
                }
            )
        except ServiceError as exc:
            self.report.errors.append(f"activation events not posted: {exc}")

    def _wipe(self, root_fd: int, candidates: list[Candidate], profile: Profile) -> None:
        """Wipe verified recordings, then the sidecars of recordings that left the camera
        (now or in an interrupted run): a sidecar is never wiped before its recording."""
        self.progress.state = "wiping"

        def pair(path: bytes) -> tuple[bytes, bytes]:
            folder, name = names.split_path(path)
            return folder, names.stem(name).upper()

        gone = {
            pair(path)
            for path, entry in self.entries.items()
            if entry.wiped and names.classify(profile, path) is FileKind.RECORDING
        }
        for c in candidates:
            if c.kind is FileKind.RECORDING and self._wipe_one(root_fd, c):
                gone.add(pair(c.path_raw))
        for c in candidates:
            if c.kind is FileKind.SIDECAR and pair(c.path_raw) in gone:
                self._wipe_one(root_fd, c)

    def _wipe_one(self, root_fd: int, c: Candidate) -> bool:
        journal = self.ctx.journal
        row = journal.file(self.id, _b64(c.path_raw))
        entry = self.entries.get(c.path_raw)
        if row is None or entry is None or row.state not in ("verified", "wiping"):
            return bool(row and row.state in ("wiped", "done") and row.wiped)
        journal.advance(row.id, "wiping")
        self.ctx.fault("wiping")
        try:
            wipe(root_fd, c, row.sha256 or "")
        except WipeRefused as exc:
            journal.advance(row.id, "kept", error=str(exc))
            self.report.errors.append(f"{entry.path}: kept on the camera: {exc}")
            return False
        self.ctx.fault("unlinked")
        journal.advance(row.id, "wiped", wiped=1)
        entry.wiped = True
        try:
            self.ctx.client.post_wipe(row.evidence_id or "", row.sha256 or "", self.id)
        except ServiceError as exc:
            self.report.errors.append(f"{entry.path}: wipe not reported yet: {exc}")
        return True

    def _finish(self) -> SessionReport:
        self.report.entries = sorted(self.entries.values(), key=lambda e: e.path_raw)
        self.report.finished_at = _rfc3339(self.ctx.now())
        body = self.report.to_json()
        try:
            self.ctx.client.post_session(body)
        except ServiceError as exc:
            self.report.errors.append(f"report not delivered: {exc}")
        self.report.write(self.ctx.report_dir)
        complete = not self.report.errors or self.report.decision is Decision.REFUSE
        self.ctx.journal.set_session(
            self.id,
            state="finished" if complete else "open",
            decision=self.report.decision.value,
            finished_at=self.report.finished_at,
            last_error=self.report.errors[-1] if self.report.errors else None,
        )
        if self.progress.state not in ("error", "refused"):
            self.progress.state = "done"
        return self.report


def _registered_from(client: ServiceClient) -> Callable[[str], bool]:
    serials = {c["serial"] for c in client.cameras()}
    return lambda serial: serial in serials
