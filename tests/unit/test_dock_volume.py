"""Safe enumeration of hostile camera volumes: links, FIFOs, devices, sparse files, races."""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dock import volume as volume_module
from dock.names import FileKind
from dock.report import Alert, Decision, Outcome, SkipReason
from dock.volume import (
    Candidate,
    SourceChanged,
    VolumeScan,
    open_for_read,
    open_root,
    read_small,
    scan_volume,
    still_same,
)
from tests.conftest import need_service
from tests.unit.camera_volumes import (
    PROFILE,
    REC_DIR,
    CameraVolume,
    clean_volume,
    limits,
    mp4_bytes,
)

REC1 = f"{REC_DIR}/BWC00001.MP4".encode()
# Inode times tick with the kernel's coarse clock (a jiffy, up to 10 ms): a same-size write
# within one tick of the scan keeps every stat field. Tests wait one tick before such writes.
COARSE_CLOCK = 0.02


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(st_dev, st_ino) of every fd the code under test opens with os.open."""
    real_open = os.open
    seen: list[tuple[int, int]] = []

    def recording_open(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        st = os.fstat(fd)
        seen.append((st.st_dev, st.st_ino))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    return seen


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A sentinel recording outside the volume that nothing may ever open."""
    (tmp_path / "outside").mkdir()
    sentinel = tmp_path / "outside" / "BWC00009.MP4"
    sentinel.write_bytes(mp4_bytes(b"not from this camera"))
    return sentinel


def identity(path: Path | str | bytes) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def scan(vol: CameraVolume, profile=PROFILE) -> VolumeScan:  # type: ignore[no-untyped-def]
    fd = open_root(vol.root)
    try:
        return scan_volume(fd, profile, now=vol.now)
    finally:
        os.close(fd)


def reason_of(result: VolumeScan, path: bytes) -> SkipReason | None:
    (entry,) = [e for e in result.skipped if e.path_raw == path]
    assert entry.outcome is Outcome.SKIPPED
    return entry.reason


def candidate(result: VolumeScan, path: bytes) -> Candidate:
    (found,) = [c for c in result.candidates if c.path_raw == path]
    return found


def open_volume(vol: CameraVolume) -> int:
    return open_root(vol.root)


# --- the clean case ----------------------------------------------------------------


def test_clean_volume_lists_every_file_with_its_kind_and_identity(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    result = scan(vol)
    kinds = {c.path_raw: c.kind for c in result.candidates}
    assert kinds == {
        b"DEVICE.JSON": FileKind.DEVICE_METADATA,
        b"LOGS/EVENTS.LOG": FileKind.EVENT_LOG,
        REC1: FileKind.RECORDING,
        f"{REC_DIR}/BWC00001.JSON".encode(): FileKind.SIDECAR,
        f"{REC_DIR}/BWC00002.MP4".encode(): FileKind.RECORDING,
        f"{REC_DIR}/BWC00002.JSON".encode(): FileKind.SIDECAR,
    }
    assert result.skipped == [] and result.alerts == set() and not result.truncated
    assert result.directories == [b"DCIM", b"DCIM/100BWC", b"LOGS"]
    rec = candidate(result, REC1)
    assert (rec.st_dev, rec.st_ino) == identity(vol.path(REC1))
    assert rec.size == len(mp4_bytes(bytes([1]) * 32))
    assert vol.inspect().decision is Decision.ACCEPT


def test_open_for_read_returns_the_scanned_bytes(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    fd = open_volume(vol)
    try:
        rec = candidate(scan_volume(fd, PROFILE, now=vol.now), REC1)
        data_fd = open_for_read(fd, rec)
        try:
            assert os.read(data_fd, 1 << 20) == Path(os.fsdecode(vol.path(REC1))).read_bytes()
            assert still_same(data_fd, rec)
        finally:
            os.close(data_fd)
    finally:
        os.close(fd)


# --- rule 2 and 4: links --------------------------------------------------------------


def test_symlinks_out_of_the_volume_are_skipped_and_never_opened(
    tmp_path: Path, outside: Path, opened: list[tuple[int, int]]
) -> None:
    vol = clean_volume(tmp_path / "vol")
    os.symlink(outside, vol.path(f"{REC_DIR}/BWC00003.MP4"))
    os.symlink("/etc/passwd", vol.path(f"{REC_DIR}/BWC00004.MP4"))
    os.symlink("../../../outside/BWC00009.MP4", vol.path(f"{REC_DIR}/BWC00005.JSON"))
    os.symlink(outside.parent, vol.path("DCIM/101BWC"))  # a linked directory
    result = vol.inspect()
    links = [f"{REC_DIR}/BWC0000{n}.{e}" for n, e in ((3, "MP4"), (4, "MP4"), (5, "JSON"))]
    for link in [*links, "DCIM/101BWC"]:
        assert reason_of(result.scan, link.encode()) is SkipReason.SYMLINK
    assert not any(p.startswith(b"DCIM/101BWC/") for p in result.scan.all_paths())
    forbidden = {identity(outside), identity("/etc/passwd")}
    assert forbidden.isdisjoint((c.st_dev, c.st_ino) for c in result.scan.candidates)
    assert opened and forbidden.isdisjoint(opened)
    assert result.decision is Decision.ACCEPT_NO_DELETE
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


def test_a_linked_recording_directory_is_not_walked(tmp_path: Path, outside: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    os.rename(vol.path("DCIM"), vol.path("DCIM.real"))
    os.symlink(outside.parent, vol.path("DCIM"))
    vol.write_log()
    result = scan(vol)
    assert reason_of(result, b"DCIM") is SkipReason.SYMLINK
    assert all(not p.startswith(b"DCIM/") for p in result.all_paths())


def test_hard_links_inside_and_out_of_the_volume_are_skipped(
    tmp_path: Path, outside: Path, opened: list[tuple[int, int]]
) -> None:
    vol = clean_volume(tmp_path / "vol")
    os.link(vol.path(REC1), vol.path(f"{REC_DIR}/BWC00007.MP4"))
    os.link(outside, vol.path(f"{REC_DIR}/BWC00008.MP4"))
    result = vol.inspect()
    for name in (REC1, f"{REC_DIR}/BWC00007.MP4".encode(), f"{REC_DIR}/BWC00008.MP4".encode()):
        assert reason_of(result.scan, name) is SkipReason.MULTIPLE_LINKS
    assert identity(outside) not in opened
    assert result.decision is Decision.ACCEPT_NO_DELETE
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


# --- rule 4 and 9: special files never block -----------------------------------------


@pytest.mark.timeout(10)
def test_fifos_are_skipped_without_ever_being_opened(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    os.mkfifo(vol.path(f"{REC_DIR}/BWC00003.MP4"))
    os.mkfifo(vol.path("LOGS/EVENTS.LOG.1"))
    result = vol.inspect()  # opening either FIFO for reading would block forever
    assert reason_of(result.scan, f"{REC_DIR}/BWC00003.MP4".encode()) is SkipReason.NOT_REGULAR_FILE
    assert reason_of(result.scan, b"LOGS/EVENTS.LOG.1") is SkipReason.NOT_REGULAR_FILE
    assert result.decision is Decision.ACCEPT_NO_DELETE


@pytest.mark.timeout(10)
def test_a_file_swapped_for_a_fifo_after_the_scan_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    vol = clean_volume(tmp_path / "vol")
    fd = open_volume(vol)
    try:
        rec = candidate(scan_volume(fd, PROFILE, now=vol.now), REC1)
        os.unlink(vol.path(REC1))
        os.mkfifo(vol.path(REC1))
        with pytest.raises(SourceChanged):
            open_for_read(fd, rec)
    finally:
        os.close(fd)


def test_a_unix_socket_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol = clean_volume(tmp_path / "vol")
    monkeypatch.chdir(os.fsdecode(vol.path(REC_DIR)))  # AF_UNIX paths are short
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind("BWC00003.MP4")
        result = vol.inspect()
    assert reason_of(result.scan, f"{REC_DIR}/BWC00003.MP4".encode()) is SkipReason.NOT_REGULAR_FILE
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


def _char_device(path: bytes) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: endless bytes
    except PermissionError as exc:
        need_service("mknod", f"creating a character device is not permitted here: {exc}")


@pytest.mark.timeout(10)
def test_device_nodes_are_skipped_and_a_swap_to_one_is_never_read(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    _char_device(vol.path(f"{REC_DIR}/BWC00003.MP4"))
    fd = open_volume(vol)
    try:
        result = scan_volume(fd, PROFILE, now=vol.now)
        assert reason_of(result, f"{REC_DIR}/BWC00003.MP4".encode()) is SkipReason.NOT_REGULAR_FILE
        rec = candidate(result, REC1)
        os.unlink(vol.path(REC1))
        _char_device(vol.path(REC1))
        with pytest.raises(SourceChanged):
            open_for_read(fd, rec)
    finally:
        os.close(fd)


# --- rule 4 and 9: size, depth, count, name length ------------------------------------


def test_a_sparse_five_gib_file_is_judged_on_its_size_and_never_opened(
    tmp_path: Path, opened: list[tuple[int, int]]
) -> None:
    vol = clean_volume(tmp_path / "vol")
    huge = vol.write(f"{REC_DIR}/BWC00003.MP4", b"")
    os.truncate(huge, 5 << 30)
    stamp = (vol.now - timedelta(hours=1)).timestamp()
    os.utime(huge, (stamp, stamp))
    result = vol.inspect()
    (entry,) = [e for e in result.scan.skipped if e.path_raw.endswith(b"BWC00003.MP4")]
    assert entry.reason is SkipReason.EXCEEDS_SIZE_LIMIT and entry.size == 5 << 30
    assert identity(os.fsdecode(huge)) not in opened
    assert Alert.FILE_TOO_LARGE in result.scan.alerts
    assert result.decision is Decision.ACCEPT_NO_DELETE


def test_a_file_of_exactly_the_size_limit_is_a_candidate(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    path = vol.write(f"{REC_DIR}/BWC00003.MP4", b"x" * 100)
    os.utime(path, ((vol.now - timedelta(hours=1)).timestamp(),) * 2)
    result = scan(vol, limits(max_file_size=100))
    assert candidate(result, f"{REC_DIR}/BWC00003.MP4".encode()).size == 100
    assert reason_of(result, REC1) is SkipReason.EXCEEDS_SIZE_LIMIT  # the MP4 is over 100


def test_entries_deeper_than_the_limit_are_listed_once_and_not_walked(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    deep = "X/" + "/".join(str(n) for n in range(1, 8))  # a directory at depth 8
    os.makedirs(os.fsdecode(vol.path(deep + "/9/10/11")))
    vol.write(deep + "/9/too-deep.MP4", b"x")
    vol.write("X/1/2/3/4/5/6/at-limit.MP4", b"x")  # depth 8: still read
    os.makedirs(os.fsdecode(vol.path("X/1/2/3/4/5/6/empty")))
    result = vol.inspect()
    assert reason_of(result.scan, deep.encode()) is SkipReason.TOO_DEEP
    assert b"X/1/2/3/4/5/6/at-limit.MP4" in {c.path_raw for c in result.scan.candidates}
    assert all(not p.startswith(deep.encode() + b"/") for p in result.scan.all_paths())
    assert b"X/1/2/3/4/5/6/empty" not in {e.path_raw for e in result.scan.skipped}
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts
    assert result.decision is Decision.ACCEPT_NO_DELETE


def test_a_directory_chain_of_depth_300_costs_only_the_depth_limit(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    fd = os.open(vol.root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(300):  # build with dir fds: the full path would exceed PATH_MAX
        os.mkdir("d", dir_fd=fd)
        next_fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    os.close(fd)
    result = scan(vol)
    (deep,) = [e for e in result.skipped if e.reason is SkipReason.TOO_DEEP]
    assert deep.path_raw == b"/".join([b"d"] * PROFILE.limits.max_depth)


def test_the_entry_budget_stops_the_walk_and_raises_suspicion(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    for n in range(10, 60):
        vol.write(f"{REC_DIR}/BWC000{n}.MP4", b"")
    result = scan(vol, limits(max_entries=12))
    assert result.truncated
    assert len(result.all_paths()) <= 12
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


def test_an_over_long_name_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol = clean_volume(tmp_path / "vol")
    vol.write(b"L" * 40, b"x")
    monkeypatch.setattr(volume_module, "MAX_NAME_BYTES", 32)
    result = scan(vol)
    (entry,) = [e for e in result.skipped if e.path_raw == b"L" * 40]
    assert entry.outcome is Outcome.NOT_READ
    assert b"L" * 40 not in {c.path_raw for c in result.candidates}
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


def test_a_directory_that_fails_to_list_is_reported_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = clean_volume(tmp_path / "vol")
    real_scandir = os.scandir

    def broken_camera(fd):  # type: ignore[no-untyped-def]
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/LOGS"):
            raise OSError(errno.EIO, "Input/output error")
        return real_scandir(fd)

    monkeypatch.setattr(os, "scandir", broken_camera)
    result = vol.inspect()
    (entry,) = [e for e in result.scan.skipped if e.path_raw == b"LOGS"]
    assert entry.outcome is Outcome.NOT_READ
    assert result.decision is Decision.ACCEPT_NO_DELETE
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


# --- raw names ------------------------------------------------------------------------


def test_non_utf8_names_keep_their_raw_bytes_and_can_be_opened(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    raw = REC_DIR.encode() + b"/\xff\xfe.MP4"
    vol.write(raw, mp4_bytes())
    fd = open_volume(vol)
    try:
        result = scan_volume(fd, PROFILE, now=vol.now)
        odd = candidate(result, raw)
        assert odd.kind is FileKind.OTHER
        data_fd = open_for_read(fd, odd)
        os.close(data_fd)
    finally:
        os.close(fd)


# --- rule 2: files that change --------------------------------------------------------


def test_stability_window_skips_files_still_being_written(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    vol.write(f"{REC_DIR}/BWC00003.MP4", mp4_bytes(), mtime=vol.now - timedelta(seconds=1))
    result = scan(vol)
    assert reason_of(result, f"{REC_DIR}/BWC00003.MP4".encode()) is SkipReason.FILE_UNSTABLE
    later = vol.now + timedelta(seconds=3)
    fd = open_volume(vol)
    try:
        assert f"{REC_DIR}/BWC00003.MP4".encode() in {
            c.path_raw for c in scan_volume(fd, PROFILE, now=later).candidates
        }
    finally:
        os.close(fd)


def test_a_recent_ctime_counts_even_when_mtime_was_set_back(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")  # every mtime an hour ago, every ctime just now
    fd = open_volume(vol)
    try:
        result = scan_volume(fd, PROFILE, now=vol.now - timedelta(seconds=30))
    finally:
        os.close(fd)
    assert result.candidates == []
    assert {e.reason for e in result.skipped} == {SkipReason.FILE_UNSTABLE}


@pytest.mark.parametrize(
    "change", ["append", "replace", "rewrite_and_reset_mtime", "link_dir", "link_file"]
)
def test_a_file_changed_between_scan_and_open_raises_source_changed(
    tmp_path: Path, outside: Path, change: str, opened: list[tuple[int, int]]
) -> None:
    vol = clean_volume(tmp_path / "vol")
    fd = open_volume(vol)
    try:
        rec = candidate(scan_volume(fd, PROFILE, now=vol.now), REC1)
        path = vol.path(REC1)
        if change == "append":
            with open(path, "ab") as out:
                out.write(b"x")
        elif change == "replace":
            vol.write(REC1 + b".new", b"y" * rec.size)
            os.replace(vol.path(REC1 + b".new"), path)
        elif change == "rewrite_and_reset_mtime":
            time.sleep(COARSE_CLOCK)
            with open(path, "r+b") as out:
                out.write(b"Z")
            os.utime(path, ns=(rec.mtime_ns, rec.mtime_ns))
        elif change == "link_file":
            os.unlink(path)
            os.symlink(outside, path)
        else:  # the recording directory becomes a link to a look-alike outside
            os.rename(vol.path("DCIM"), vol.path("DCIM.old"))
            (outside.parent / "100BWC").mkdir()
            os.link(outside, outside.parent / "100BWC" / "BWC00001.MP4")
            os.symlink(outside.parent, vol.path("DCIM"))
        with pytest.raises(SourceChanged):
            open_for_read(fd, rec)
        # the link was never followed
        assert {identity(outside), identity(outside.parent)}.isdisjoint(opened)
    finally:
        os.close(fd)


def test_a_file_changed_while_open_is_no_longer_the_same(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    fd = open_volume(vol)
    try:
        rec = candidate(scan_volume(fd, PROFILE, now=vol.now), REC1)
        data_fd = open_for_read(fd, rec)
        try:
            assert still_same(data_fd, rec)
            with open(vol.path(REC1), "ab") as out:
                out.write(b"late frame")
            assert not still_same(data_fd, rec)
        finally:
            os.close(data_fd)
    finally:
        os.close(fd)


def test_read_small_refuses_files_over_the_limit_and_files_that_grew(tmp_path: Path) -> None:
    vol = clean_volume(tmp_path / "vol")
    fd = open_volume(vol)
    try:
        device = candidate(scan_volume(fd, PROFILE, now=vol.now), b"DEVICE.JSON")
        assert read_small(fd, device, 4096).startswith(b'{"schema"')
        with pytest.raises(volume_module.VolumeError):
            read_small(fd, device, device.size - 1)
        with open(vol.path(b"DEVICE.JSON"), "ab") as out:
            out.write(b" ")
        with pytest.raises(SourceChanged):
            read_small(fd, device, 4096)
    finally:
        os.close(fd)


def test_read_small_notices_a_write_during_the_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = clean_volume(tmp_path / "vol")
    real_chunks = volume_module.read_chunks

    def camera_writes_meanwhile(fd: int, limit: int) -> Iterator[bytes]:
        time.sleep(COARSE_CLOCK)
        with open(vol.path(b"DEVICE.JSON"), "r+b") as out:
            out.write(b"[")  # same size, new content
        yield from real_chunks(fd, limit)

    root = open_volume(vol)
    try:
        device = candidate(scan_volume(root, PROFILE, now=vol.now), b"DEVICE.JSON")
        monkeypatch.setattr(volume_module, "read_chunks", camera_writes_meanwhile)
        with pytest.raises(SourceChanged):
            read_small(root, device, 4096)
    finally:
        os.close(root)
