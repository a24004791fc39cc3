"""What a scanned camera volume means (DESIGN.md §6 rules 3, 5, 6): flags and the decision."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dock import names
from dock.eventlog import EventLog, clock_offset, parse_event_log
from dock.mp4 import check_mp4
from dock.names import FileKind
from dock.profiles import Profile
from dock.report import Alert, Decision, Flag, Outcome, SkipReason
from dock.sidecar import (
    Sidecar,
    SidecarUnparseable,
    check_reference,
    check_serial,
    check_sidecar_against,
    check_times,
    parse_sidecar,
)
from dock.volume import (
    Candidate,
    VolumeError,
    VolumeScan,
    open_for_read,
    read_chunks,
    read_small,
    still_same,
)

__all__ = ["Findings", "check_mp4", "check_sidecar_against", "decide_session", "inspect_volume"]

# Reads only what the scan found safe (sidecars, the event log, recordings' box headers),
# each through open_for_read and within the profile's byte limits. Names inside camera
# metadata are compared, never opened.
#
# Session decision (rule 6). Every alert except clock_skew makes the session
# accept_no_delete: offload what is safe, wipe nothing. Alerts come from:
#
#     flag / finding                      alert                     why a camera cannot
#     ----------------------------------  ------------------------  ------------------------
#     fs_impossible_name, twins           volume_integrity_suspect  FAT cannot hold the name
#     foreign_os_artifact                 volume_integrity_suspect  a desktop mounted it
#     device_metadata_unparseable         volume_integrity_suspect  firmware writes it whole
#     skipped symlink / multiple_links /  volume_integrity_suspect  FAT has no links, FIFOs,
#       not_regular_file / too_deep,                                devices; profile depth
#       not_read entries, truncated scan
#     skipped exceeds_size_limit          file_too_large            FAT32 caps a file at 4 GiB
#     unexpected_location                 unexpected_content        camera writes its dirs only
#     nonstandard_filename                unexpected_content        camera names by pattern
#     unrecognized_file                   unexpected_content        not in the profile layout
#     sidecar_hash_mismatch               possible_tamper           bytes differ from claim
#     sidecar_size_mismatch               possible_tamper           size differs from claim
#     sidecar_path_reference_rejected     possible_tamper           points elsewhere
#     event log seq rewind / path "file"  possible_tamper           a forged line
#     sidecar_serial_mismatch             custody_anomaly           footage of another camera
#     orphan_sidecar                      missing_recording         rule 7 wipes both together
#     recording in the log, not on disk   missing_recording         removed outside the dock
#     clock_skew, offset over tolerance   clock_skew (no block)     clocks drift; rule 8
#
# Flags with no alert (a real camera produces them after a flat battery or a glitch):
# empty_file, malformed_container, missing_sidecar, sidecar_unparseable, time_inconsistent,
# event_log_unparseable_lines (garbage lines; forged ones alert as above).
FLAG_ALERTS: dict[Flag, Alert] = {
    Flag.FS_IMPOSSIBLE_NAME: Alert.VOLUME_INTEGRITY_SUSPECT,
    Flag.FOREIGN_OS_ARTIFACT: Alert.VOLUME_INTEGRITY_SUSPECT,
    Flag.DEVICE_METADATA_UNPARSEABLE: Alert.VOLUME_INTEGRITY_SUSPECT,
    Flag.UNEXPECTED_LOCATION: Alert.UNEXPECTED_CONTENT,
    Flag.NONSTANDARD_FILENAME: Alert.UNEXPECTED_CONTENT,
    Flag.UNRECOGNIZED_FILE: Alert.UNEXPECTED_CONTENT,
    Flag.SIDECAR_HASH_MISMATCH: Alert.POSSIBLE_TAMPER,
    Flag.SIDECAR_SIZE_MISMATCH: Alert.POSSIBLE_TAMPER,
    Flag.SIDECAR_PATH_REFERENCE_REJECTED: Alert.POSSIBLE_TAMPER,
    Flag.SIDECAR_SERIAL_MISMATCH: Alert.CUSTODY_ANOMALY,
    Flag.ORPHAN_SIDECAR: Alert.MISSING_RECORDING,
    Flag.CLOCK_SKEW: Alert.CLOCK_SKEW,
}
SKIP_ALERTS: dict[SkipReason, Alert] = {
    SkipReason.SYMLINK: Alert.VOLUME_INTEGRITY_SUSPECT,
    SkipReason.MULTIPLE_LINKS: Alert.VOLUME_INTEGRITY_SUSPECT,
    SkipReason.NOT_REGULAR_FILE: Alert.VOLUME_INTEGRITY_SUSPECT,
    SkipReason.TOO_DEEP: Alert.VOLUME_INTEGRITY_SUSPECT,
    SkipReason.EXCEEDS_SIZE_LIMIT: Alert.FILE_TOO_LARGE,
}
NON_BLOCKING_ALERTS = frozenset({Alert.CLOCK_SKEW})


@dataclass
class Findings:
    """Flags by raw path (candidates and skipped entries) and what the metadata says."""

    flags: dict[bytes, set[Flag]] = field(default_factory=lambda: defaultdict(set))
    volume_flags: set[Flag] = field(default_factory=set)  # on directories, no entry of their own
    sidecars: dict[bytes, Sidecar] = field(default_factory=dict)  # by recording path
    event_log: EventLog | None = None
    clock_offset: timedelta | None = None  # camera minus dock, from the DOCKED event
    clock_skewed: bool = False
    missing_recordings: list[str] = field(default_factory=list)
    unstable: set[bytes] = field(default_factory=set)  # changed while inspected: file_unstable

    def flags_for(self, path_raw: bytes) -> set[Flag]:
        return set(self.flags.get(path_raw, ()))


def inspect_volume(
    root_fd: int, scan: VolumeScan, profile: Profile, *, usb_serial: str, dock_now: datetime
) -> Findings:
    """Flag every listed entry by name and place, read the event log and sidecars, and
    check recordings' containers.

    usb_serial is the identity already checked (rule 1); dock_now is the dock's clock at
    this docking. A candidate that changes while read lands in `unstable`, and its
    content findings are dropped."""
    found = Findings()
    _flag_names(scan, profile, found)
    by_path = {c.path_raw: c for c in scan.candidates}
    log_candidate = by_path.get(profile.event_log.encode())
    if log_candidate is not None:
        _read_log(root_fd, log_candidate, profile, found)
    camera_docked = found.event_log.last_docked_time() if found.event_log else None
    if camera_docked is not None:
        found.clock_offset = clock_offset(camera_docked, dock_now)
        tolerance = timedelta(seconds=profile.limits.clock_skew_tolerance_seconds)
        found.clock_skewed = abs(found.clock_offset) > tolerance
    _pair_sidecars(root_fd, scan, profile, found, usb_serial, dock_now, camera_docked)
    for c in scan.candidates:
        if c.kind is FileKind.RECORDING and c.path_raw not in found.unstable:
            found.flags[c.path_raw] |= _container_flags(root_fd, c, found)
    if found.event_log is not None:
        listed = {
            names.split_path(p)[1] for p in scan.all_paths() if names.in_recording_dir(profile, p)
        }
        found.missing_recordings = [
            n for n in found.event_log.recordings_expected_on_disk() if n.encode() not in listed
        ]
    return found


def _flag_names(scan: VolumeScan, profile: Profile, found: Findings) -> None:
    twins = names.find_twins(scan.all_paths())
    bad_dirs = {
        d for d in scan.directories if names.fs_impossible(names.split_path(d)[1]) or d in twins
    }
    debris_dirs = {d for d in scan.directories if names.foreign_os_artifact(names.split_path(d)[1])}
    if bad_dirs:
        found.volume_flags.add(Flag.FS_IMPOSSIBLE_NAME)
    if debris_dirs:
        found.volume_flags.add(Flag.FOREIGN_OS_ARTIFACT)
    # Directories listed as too deep or unreadable already alert; a layout flag adds nothing.
    unlisted_dirs = {
        e.path_raw
        for e in scan.skipped
        if e.reason is SkipReason.TOO_DEEP or e.outcome is Outcome.NOT_READ
    }
    entries = [(c.path_raw, c.size, c.kind) for c in scan.candidates] + [
        (e.path_raw, None, names.classify(profile, e.path_raw)) for e in scan.skipped
    ]
    for path, size, kind in entries:
        flags = found.flags[path]
        ancestors = names.prefixes(path)
        name = names.split_path(path)[1]
        if path in twins or names.fs_impossible(name) or bad_dirs.intersection(ancestors):
            flags.add(Flag.FS_IMPOSSIBLE_NAME)
        if size == 0:
            flags.add(Flag.EMPTY_FILE)
        if names.foreign_os_artifact(name) or debris_dirs.intersection(ancestors):
            flags.add(Flag.FOREIGN_OS_ARTIFACT)
        elif kind is FileKind.OTHER and path not in unlisted_dirs:
            flags.add(_layout_flag(profile, path, name))


def _layout_flag(profile: Profile, path: bytes, name: bytes) -> Flag:
    if names.in_recording_dir(profile, path):
        return Flag.NONSTANDARD_FILENAME
    if names.recording_like(profile, name):
        return Flag.UNEXPECTED_LOCATION
    return Flag.UNRECOGNIZED_FILE


def _read_log(root_fd: int, c: Candidate, profile: Profile, found: Findings) -> None:
    limit = profile.limits.max_event_log_bytes
    log, same = None, False
    try:
        fd = open_for_read(root_fd, c)
    except (VolumeError, OSError):
        found.unstable.add(c.path_raw)
        return
    try:
        chunks = read_chunks(fd, min(c.size, limit))
        complete = c.size <= limit
        log = parse_event_log(chunks, profile.limits, profile.recording_name, complete=complete)
        same = still_same(fd, c)
    except OSError:
        same = False  # an I/O error mid-log: nothing from it is trusted
    finally:
        os.close(fd)
    if log is None or not same:
        found.unstable.add(c.path_raw)
        return
    found.event_log = log
    found.flags[c.path_raw] |= log.flags


def _pair_sidecars(
    root_fd: int,
    scan: VolumeScan,
    profile: Profile,
    found: Findings,
    usb_serial: str,
    dock_now: datetime,
    camera_docked: datetime | None,
) -> None:
    # Pair by directory and stem; a recording listed but skipped still counts as present.
    listed = [c.path_raw for c in scan.candidates] + [e.path_raw for e in scan.skipped]
    recordings = {}
    for path in listed:
        if names.in_recording_dir(profile, path) and names.matches(
            profile.recording_name, names.split_path(path)[1]
        ):
            parent, name = names.split_path(path)
            recordings[(parent, names.stem(name))] = path
    sidecars = {}
    for c in scan.candidates:
        if c.kind is FileKind.SIDECAR:
            parent, name = names.split_path(c.path_raw)
            sidecars[(parent, names.stem(name))] = c
    tolerance = timedelta(seconds=profile.limits.clock_skew_tolerance_seconds)
    candidates = {c.path_raw: c for c in scan.candidates}
    for key, c in sidecars.items():
        recording = recordings.get(key)
        flags = _sidecar_flags(root_fd, c, recording, profile, found, usb_serial)
        if recording is None:
            flags.add(Flag.ORPHAN_SIDECAR)
        found.flags[c.path_raw] |= flags
        sidecar = found.sidecars.get(recording) if recording else None
        if recording is not None:
            found.flags[recording] |= flags
            if sidecar is not None:
                found.flags[recording] |= check_times(
                    sidecar,
                    dock_now=dock_now,
                    camera_docked_at=camera_docked,
                    tolerance=tolerance,
                    clock_skewed=found.clock_skewed,
                )
                rec = candidates.get(recording)
                if rec is not None:
                    found.flags[recording] |= check_sidecar_against(sidecar, None, rec.size)
    for key, path in recordings.items():
        if key not in sidecars and path in candidates:
            found.flags[path].add(Flag.MISSING_SIDECAR)


def _sidecar_flags(
    root_fd: int,
    c: Candidate,
    recording: bytes | None,
    profile: Profile,
    found: Findings,
    usb_serial: str,
) -> set[Flag]:
    limit = profile.limits.max_metadata_bytes
    if c.size > limit:
        return {Flag.SIDECAR_UNPARSEABLE}  # never read past the limit
    try:
        data = read_small(root_fd, c, limit)
    except (VolumeError, OSError):
        found.unstable.add(c.path_raw)
        return set()
    try:
        sidecar = parse_sidecar(data, schema=profile.sidecar_schema, limit=limit)
    except SidecarUnparseable:
        return {Flag.SIDECAR_UNPARSEABLE}
    rec_name = names.split_path(recording)[1] if recording else None
    flags = check_reference(
        sidecar,
        recording=rec_name,
        sidecar_name=names.split_path(c.path_raw)[1],
        pattern=profile.recording_name,
    )
    flags |= check_serial(sidecar, usb_serial)
    if recording is not None:
        found.sidecars[recording] = sidecar
    return flags


def _container_flags(root_fd: int, c: Candidate, found: Findings) -> set[Flag]:
    try:
        fd = open_for_read(root_fd, c)
    except (VolumeError, OSError):
        found.unstable.add(c.path_raw)
        return set()
    try:
        flags = check_mp4(fd, c.size)
        if not still_same(fd, c):
            found.unstable.add(c.path_raw)
            return set()
        return flags
    finally:
        os.close(fd)


def decide_session(
    scan: VolumeScan,
    findings: Findings,
    *,
    later_flags: Iterable[Flag] = (),
    later_alerts: Iterable[Alert] = (),
) -> tuple[Decision, set[Alert]]:
    """The session decision and its alerts, per the table in this module's docstring.

    later_flags and later_alerts carry what the offload learns after inspection (a
    sidecar hash mismatch once hashed, source_changed_after_copy); call again with them
    before any wipe. Never returns refuse: that is identity's call (rule 1)."""
    alerts = set(scan.alerts) | set(later_alerts)
    flags = set(findings.volume_flags) | set(later_flags)
    for entry_flags in findings.flags.values():
        flags |= entry_flags
    alerts |= {FLAG_ALERTS[f] for f in flags if f in FLAG_ALERTS}
    for entry in scan.skipped:
        if entry.outcome is Outcome.NOT_READ:
            alerts.add(Alert.VOLUME_INTEGRITY_SUSPECT)
        elif entry.reason in SKIP_ALERTS:
            alerts.add(SKIP_ALERTS[entry.reason])
    if scan.truncated:
        alerts.add(Alert.VOLUME_INTEGRITY_SUSPECT)
    if findings.missing_recordings:
        alerts.add(Alert.MISSING_RECORDING)
    if findings.event_log is not None and findings.event_log.counts.forged:
        alerts.add(Alert.POSSIBLE_TAMPER)
    if findings.clock_skewed:
        alerts.add(Alert.CLOCK_SKEW)
    blocking = alerts - NON_BLOCKING_ALERTS
    return (Decision.ACCEPT_NO_DELETE if blocking else Decision.ACCEPT), alerts
