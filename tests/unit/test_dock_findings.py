"""What a camera volume's entries mean: impossible names, debris, sidecars, MP4 boxes, decision."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dock import findings as inspect_module
from dock import mp4 as mp4_module
from dock.findings import Findings, check_mp4, check_sidecar_against, decide_session
from dock.names import find_twins, foreign_os_artifact, fs_impossible, plain_name
from dock.report import Alert, Decision, Entry, Flag, Outcome, SkipReason
from dock.sidecar import SidecarUnparseable, check_reference, parse_sidecar
from dock.volume import VolumeScan
from tests.unit.camera_volumes import (
    REC_DIR,
    CameraVolume,
    box,
    clean_volume,
    limits,
    mp4_bytes,
    rfc3339,
)

REC1 = f"{REC_DIR}/BWC00001.MP4"
SIDECAR_ARGS = {"schema": "bwc-sidecar/1", "limit": 65536}
SIDE1 = f"{REC_DIR}/BWC00001.JSON"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    real_open = os.open
    seen: list[tuple[int, int]] = []

    def recording_open(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        st = os.fstat(fd)
        seen.append((st.st_dev, st.st_ino))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    return seen


def volume(tmp_path: Path) -> CameraVolume:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    return vol


# --- names (rule 6) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        b"\xff\xfe.MP4",
        b"BWC\x0100001.MP4",
        b"line\nbreak.MP4",
        b"..\\..\\etc\\passwd",
        b"a:b.MP4",
        b'quote".MP4',
        b"star*.MP4",
        b"BWC00001.MP4.",
        b"BWC00001.MP4 ",
        b"CON",
        b"nul.mp4",
        b"COM1.JSON",
        b"lpt9",
        "é".encode() * 256,  # 256 UTF-16 units
        "\U0001f3a5".encode() * 128,  # 128 characters, but 256 UTF-16 units
        b"\xed\xa0\x80.MP4",  # a UTF-8-encoded surrogate is not UTF-8
    ],
)
def test_names_fat_cannot_hold_are_impossible(name: bytes) -> None:
    assert fs_impossible(name)


@pytest.mark.parametrize(
    "name", [b"BWC00001.MP4", b"DCIM", b"100BWC", "é".encode() * 255, b"CONSOLE.MP4", b"COM10"]
)
def test_ordinary_names_are_possible(name: bytes) -> None:
    assert not fs_impossible(name)


@pytest.mark.parametrize(
    "name",
    [
        b".DS_Store",
        b"._BWC00001.MP4",
        b".Spotlight-V100",
        b".Trashes",
        b".fseventsd",
        b"Thumbs.db",
        b"desktop.ini",
        b"$RECYCLE.BIN",
        b"System Volume Information",
        b".Trash-1000",
        b"lost+found",
        b"~$notes.docx",
        b".BWC00001.MP4.swp",
        b"THUMBS.DB",
    ],
)
def test_desktop_debris_is_recognised(name: bytes) -> None:
    assert foreign_os_artifact(name)


@pytest.mark.parametrize("name", [b"BWC00001.MP4", b"DEVICE.JSON", b"EVENTS.LOG", b"DCIM"])
def test_camera_names_are_not_debris(name: bytes) -> None:
    assert not foreign_os_artifact(name)


def test_twins_are_found_per_directory_under_case_and_normalisation() -> None:
    nfc = unicodedata.normalize("NFC", "caf\u00e9.MP4").encode()
    nfd = unicodedata.normalize("NFD", "caf\u00e9.MP4").encode()
    assert nfc != nfd
    paths = [b"A/BWC00001.MP4", b"A/bwc00001.mp4", b"B/BWC00001.MP4", b"A/" + nfc, b"A/" + nfd]
    assert find_twins(paths) == {b"A/BWC00001.MP4", b"A/bwc00001.mp4", b"A/" + nfc, b"A/" + nfd}


@pytest.mark.parametrize(
    "value", ["../../etc/passwd", "/etc/passwd", "..", "a/b", "a\\b", "C:x", "a\x00b", "a\nb", ""]
)
def test_path_like_values_are_not_plain_names(value: str) -> None:
    assert not plain_name(value)


def test_a_clean_volume_has_no_flags_and_is_accepted(tmp_path: Path) -> None:
    result = clean_volume(tmp_path / "vol").inspect()
    assert all(not flags for flags in result.findings.flags.values())
    assert result.findings.volume_flags == set()
    assert (result.decision, result.alerts) == (Decision.ACCEPT, set())
    assert set(result.findings.sidecars) == {REC1.encode(), f"{REC_DIR}/BWC00002.MP4".encode()}


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe.MP4", b"BWC\x0100001.MP4", b"..\\..\\etc\\passwd", b"CON.MP4", b"BWC1.MP4."]
)
def test_an_impossible_name_flags_the_file_and_blocks_deletion(tmp_path: Path, raw: bytes) -> None:
    vol = volume(tmp_path)
    vol.write(REC_DIR.encode() + b"/" + raw, mp4_bytes())
    vol.write_log()
    result = vol.inspect()
    assert Flag.FS_IMPOSSIBLE_NAME in result.flags(REC_DIR.encode() + b"/" + raw)
    assert result.flags(REC1) == set()
    assert result.decision is Decision.ACCEPT_NO_DELETE
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


def test_case_twins_are_both_flagged(tmp_path: Path) -> None:
    vol = volume(tmp_path)
    vol.write(f"{REC_DIR}/bwc00001.mp4", mp4_bytes())
    vol.write_log()
    result = vol.inspect()
    assert Flag.FS_IMPOSSIBLE_NAME in result.flags(REC1)
    assert Flag.FS_IMPOSSIBLE_NAME in result.flags(f"{REC_DIR}/bwc00001.mp4")
    assert result.decision is Decision.ACCEPT_NO_DELETE


def test_unicode_twins_are_both_flagged(tmp_path: Path) -> None:
    vol = volume(tmp_path)
    nfc = unicodedata.normalize("NFC", "r\u00e9sum\u00e9.TXT")
    nfd = unicodedata.normalize("NFD", nfc)
    vol.write(nfc, b"a")
    vol.write(nfd, b"b")
    vol.write_log()
    result = vol.inspect()
    assert Flag.FS_IMPOSSIBLE_NAME in result.flags(nfc) & result.flags(nfd)
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


def test_an_empty_twin_directory_still_blocks_deletion(tmp_path: Path) -> None:
    vol = volume(tmp_path)
    os.mkdir(vol.path("dcim"))
    vol.write_log()
    result = vol.inspect()
    assert result.findings.volume_flags == {Flag.FS_IMPOSSIBLE_NAME}
    assert Flag.FS_IMPOSSIBLE_NAME in result.flags(REC1)  # DCIM itself is a twin
    assert result.decision is Decision.ACCEPT_NO_DELETE


def test_desktop_debris_flags_files_and_their_directories(tmp_path: Path) -> None:
    vol = volume(tmp_path)
    vol.write(".DS_Store", b"\x00\x00\x00\x01Bud1")
    vol.write(f"{REC_DIR}/._BWC00001.MP4", b"\x00\x05\x16\x07")
    os.makedirs(os.fsdecode(vol.path(".Trashes/501")))
    vol.write(".Trashes/501/BWC00002.MP4", mp4_bytes())
    os.mkdir(vol.path("System Volume Information"))
    vol.write_log()
    result = vol.inspect()
    for path in (".DS_Store", f"{REC_DIR}/._BWC00001.MP4", ".Trashes/501/BWC00002.MP4"):
        assert Flag.FOREIGN_OS_ARTIFACT in result.flags(path)
        assert Flag.UNRECOGNIZED_FILE not in result.flags(path)
    assert Flag.FOREIGN_OS_ARTIFACT in result.findings.volume_flags
    assert result.decision is Decision.ACCEPT_NO_DELETE
    assert Alert.VOLUME_INTEGRITY_SUSPECT in result.alerts


@pytest.mark.parametrize(
    ("path", "flag"),
    [
        ("BWC00001.MP4", Flag.UNEXPECTED_LOCATION),
        ("DCIM/clip.mov", Flag.UNEXPECTED_LOCATION),
        (f"{REC_DIR}/IMG_0001.MP4", Flag.NONSTANDARD_FILENAME),
        (f"{REC_DIR}/BWC0001.MP4", Flag.NONSTANDARD_FILENAME),
        (f"{REC_DIR}/BWC00001.MP4\n", Flag.FS_IMPOSSIBLE_NAME),
        ("NOTES.TXT", Flag.UNRECOGNIZED_FILE),
        ("LOGS/EVENTS.OLD", Flag.UNRECOGNIZED_FILE),
    ],
)
def test_files_out_of_the_layout_are_flagged_and_block_deletion(
    tmp_path: Path, path: str, flag: Flag
) -> None:
    vol = volume(tmp_path)
    vol.write(path, mp4_bytes())
    vol.write_log()
    result = vol.inspect()
    assert flag in result.flags(path)
    assert result.decision is Decision.ACCEPT_NO_DELETE
    assert result.alerts & {Alert.UNEXPECTED_CONTENT, Alert.VOLUME_INTEGRITY_SUSPECT}


def test_empty_files_are_flagged_but_a_real_camera_can_write_them(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    rec = vol.recording(1, data=b"")
    vol.write_log()
    result = vol.inspect()
    assert result.flags(rec) == {Flag.EMPTY_FILE, Flag.MALFORMED_CONTAINER}
    assert result.decision is Decision.ACCEPT


# --- MP4 container sanity -------------------------------------------------------------


def _check(data: bytes) -> set[Flag]:
    return check_mp4(io.BytesIO(data), len(data))


def test_a_well_formed_mp4_passes_from_a_reader_and_from_an_fd(tmp_path: Path) -> None:
    data = mp4_bytes()
    assert _check(data) == set()
    path = tmp_path / "ok.mp4"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert check_mp4(fd, len(data)) == set()
    finally:
        os.close(fd)


def test_largesize_and_to_end_boxes_are_understood() -> None:
    head = mp4_bytes()[: -len(box(b"mdat", b"\x00\x00\x00\x10frame-data-here!"))]
    payload = b"p" * 40
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload)) + payload
    assert _check(head + large) == set()
    to_end = struct.pack(">I4s", 0, b"mdat") + payload
    assert _check(head + to_end) == set()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a" + bytes(100),
        b"\x00" * 64,
        mp4_bytes()[:-5],  # mdat claims more bytes than the file has
        mp4_bytes() + b"\x00\x00\x00",  # trailing bytes shorter than a header
        box(b"ftyp", b"isom" + bytes(4)) + box(b"mdat", b"x"),  # no moov
        box(b"ftyp", b"isom" + bytes(4)) + box(b"moov"),  # no mdat
        box(b"moov") + mp4_bytes(),  # ftyp not first
        box(b"ftyp", b"isom") + box(b"moov") + box(b"mdat"),  # ftyp too short
        mp4_bytes() + struct.pack(">I4s", 4, b"free"),  # a box shorter than its header
        mp4_bytes() + struct.pack(">I4s", 8, b"\x00\xff\x01\x02"),  # garbage type
        mp4_bytes() + struct.pack(">I4sQ", 1, b"free", 8),  # largesize under 16
        mp4_bytes() + struct.pack(">I4sQ", 1, b"free", 1 << 62),  # 4 EiB
        mp4_bytes() + struct.pack(">I4s", 24, b"uuid") + bytes(8),  # uuid without its id
    ],
)
def test_malformed_containers_are_flagged(data: bytes) -> None:
    assert _check(data) == {Flag.MALFORMED_CONTAINER}


def test_too_many_top_level_boxes_are_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    data = mp4_bytes() + box(b"free") * 20
    assert _check(data) == set()
    monkeypatch.setattr(mp4_module, "MAX_TOP_LEVEL_BOXES", 10)
    assert _check(data) == {Flag.MALFORMED_CONTAINER}


def test_the_check_trusts_the_scanned_size_not_the_file(tmp_path: Path) -> None:
    data = mp4_bytes()
    assert check_mp4(io.BytesIO(data + b"x" * 100), len(data)) == set()
    assert check_mp4(io.BytesIO(data[:20]), len(data)) == {Flag.MALFORMED_CONTAINER}


@pytest.mark.parametrize("data", [b"not an mp4 at all", mp4_bytes()[:-5]])
def test_a_malformed_recording_is_flagged_on_the_volume(tmp_path: Path, data: bytes) -> None:
    vol = CameraVolume(tmp_path / "vol")
    rec = vol.recording(1, data=data)
    vol.write_log()
    result = vol.inspect()
    assert result.flags(rec) == {Flag.MALFORMED_CONTAINER}
    assert result.decision is Decision.ACCEPT  # a flat battery leaves such files too


# --- sidecars -------------------------------------------------------------------------


def test_an_oversized_sidecar_is_unparseable_and_never_opened(
    tmp_path: Path, opened: list[tuple[int, int]]
) -> None:
    vol = volume(tmp_path)
    big = vol.write(SIDE1, b'{"schema": "bwc-sidecar/1", "pad": "' + b"x" * 70_000 + b'"}')
    vol.write_log()
    result = vol.inspect()
    assert Flag.SIDECAR_UNPARSEABLE in result.flags(SIDE1) & result.flags(REC1)
    assert (os.stat(big).st_dev, os.stat(big).st_ino) not in opened
    assert result.decision is Decision.ACCEPT


@pytest.mark.parametrize(
    "payload",
    [
        b'{"schema": "bwc-sidecar/1", "schema": "bwc-sidecar/1"}',
        b"[" * 20_000 + b"]" * 20_000,
        b"\xff\xfe{\x00}\x00",
        b'{"schema": "bwc-sidecar/1", "size": NaN}',
        b"",
        b'"just a string"',
    ],
)
def test_hostile_sidecar_bytes_are_unparseable(tmp_path: Path, payload: bytes) -> None:
    vol = volume(tmp_path)
    vol.write(SIDE1, payload)
    vol.write_log()
    result = vol.inspect()
    assert Flag.SIDECAR_UNPARSEABLE in result.flags(REC1)
    assert REC1.encode() not in result.findings.sidecars


def test_duplicate_keys_cannot_smuggle_a_second_hash() -> None:
    vol_fields = {"schema": "bwc-sidecar/1", "file": "BWC00001.MP4", "sha256": "0" * 64}
    text = json.dumps(vol_fields)[:-1] + ', "sha256": "' + "1" * 64 + '"}'
    with pytest.raises(SidecarUnparseable):
        parse_sidecar(text.encode(), schema="bwc-sidecar/1", limit=65536)


def test_a_sidecar_of_another_camera_is_a_custody_anomaly(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1, camera_serial="BWC-9999")
    vol.write_log()
    result = vol.inspect()
    assert Flag.SIDECAR_SERIAL_MISMATCH in result.flags(REC1)
    assert Alert.CUSTODY_ANOMALY in result.alerts
    assert result.decision is Decision.ACCEPT_NO_DELETE


@pytest.mark.parametrize(
    "file", ["../../etc/passwd", "/etc/passwd", "..\\..\\BWC00001.MP4", "BWC00002.MP4", "x\x00"]
)
def test_sidecar_path_references_are_rejected_and_never_opened(
    tmp_path: Path, file: str, opened: list[tuple[int, int]]
) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1, file=file)
    vol.write_log()
    result = vol.inspect()
    assert Flag.SIDECAR_PATH_REFERENCE_REJECTED in result.flags(REC1)
    assert Flag.SIDECAR_PATH_REFERENCE_REJECTED in result.flags(SIDE1)
    passwd = os.stat("/etc/passwd")
    assert (passwd.st_dev, passwd.st_ino) not in opened
    assert Alert.POSSIBLE_TAMPER in result.alerts
    assert result.decision is Decision.ACCEPT_NO_DELETE


@pytest.mark.parametrize("digest", ["a" * 63, "a" * 65, "a" * 64 + "\n", "g" * 64, 7])
def test_a_sidecar_hash_must_be_64_hex_digits(digest: object) -> None:
    fields = {"schema": "bwc-sidecar/1", "file": "BWC00001.MP4", "camera_serial": "BWC-0002"}
    fields |= {"start_utc": "2026-11-24T08:00:00Z", "end_utc": "2026-11-24T08:01:00Z"}
    fields |= {"duration_ms": 60_000, "size": 10}
    good = parse_sidecar(json.dumps(fields | {"sha256": "A" * 64}).encode(), **SIDECAR_ARGS)
    assert good.sha256 == "a" * 64
    with pytest.raises(SidecarUnparseable):
        parse_sidecar(json.dumps(fields | {"sha256": digest}).encode(), **SIDECAR_ARGS)


@pytest.mark.parametrize("file", ["../BWC00001.MP4", "/BWC00001.MP4", "a\\BWC00001.MP4"])
def test_a_path_reference_is_rejected_even_when_it_equals_the_name_given(file: str) -> None:
    fields = {"schema": "bwc-sidecar/1", "file": file, "camera_serial": "BWC-0002"}
    fields |= {"start_utc": "2026-11-24T08:00:00Z", "end_utc": "2026-11-24T08:01:00Z"}
    fields |= {"duration_ms": 60_000, "size": 10, "sha256": "a" * 64}
    sidecar = parse_sidecar(json.dumps(fields).encode(), **SIDECAR_ARGS)
    flags = check_reference(
        sidecar, recording=file.encode(), sidecar_name=b"BWC00001.JSON", pattern=re.compile(".*")
    )
    assert flags == {Flag.SIDECAR_PATH_REFERENCE_REJECTED}


def test_a_recording_without_sidecar_is_flagged_but_accepted(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1, sidecar=False)
    vol.write_log()
    result = vol.inspect()
    assert result.flags(REC1) == {Flag.MISSING_SIDECAR}
    assert result.decision is Decision.ACCEPT


def test_a_sidecar_whose_recording_was_removed_is_an_orphan(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1, logged=False)
    os.unlink(vol.path(REC1))
    vol.write_log()
    result = vol.inspect()
    assert Flag.ORPHAN_SIDECAR in result.flags(SIDE1)
    assert Alert.MISSING_RECORDING in result.alerts
    assert result.decision is Decision.ACCEPT_NO_DELETE


def test_a_sidecar_size_that_disagrees_with_the_file_is_possible_tamper(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1, size=12345)
    vol.write_log()
    result = vol.inspect()
    assert Flag.SIDECAR_SIZE_MISMATCH in result.flags(REC1)
    assert Alert.POSSIBLE_TAMPER in result.alerts


def test_the_hash_check_after_copying_flags_a_mismatch_and_blocks_deletion(
    tmp_path: Path,
) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    vol.write_log()
    result = vol.inspect()
    sidecar = result.findings.sidecars[REC1.encode()]
    size = result.candidate(REC1).size
    assert check_sidecar_against(sidecar, sidecar.sha256.upper(), size) == set()
    later = check_sidecar_against(sidecar, "f" * 64, size)
    assert later == {Flag.SIDECAR_HASH_MISMATCH}
    assert check_sidecar_against(sidecar, None, size + 1) == {Flag.SIDECAR_SIZE_MISMATCH}
    decision, alerts = decide_session(result.scan, result.findings, later_flags=later)
    assert decision is Decision.ACCEPT_NO_DELETE and Alert.POSSIBLE_TAMPER in alerts


@pytest.mark.parametrize(
    "changes",
    [
        {"end_utc": "2000-01-01T00:00:00Z"},  # before start
        {"duration_ms": 9_000},  # end - start is 60 s
        {"start_utc": "1980-01-01T00:00:00Z", "end_utc": "1980-01-01T00:01:00Z"},
    ],
)
def test_self_contradicting_sidecar_times_are_inconsistent(tmp_path: Path, changes: dict) -> None:  # type: ignore[type-arg]
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1, **changes)
    vol.write_log()
    result = vol.inspect()
    assert Flag.TIME_INCONSISTENT in result.flags(REC1)
    assert result.decision is Decision.ACCEPT


def test_a_duration_within_two_seconds_is_consistent(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1, duration_ms=61_900)
    vol.write_log()
    assert vol.inspect().flags(REC1) == set()


def test_a_recording_ending_after_docking_is_clock_skew(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    future = vol.now + timedelta(hours=2)
    vol.recording(1, start_utc=rfc3339(future), end_utc=rfc3339(future + timedelta(minutes=1)))
    vol.write_log()
    result = vol.inspect()
    assert Flag.CLOCK_SKEW in result.flags(REC1)
    assert Alert.CLOCK_SKEW in result.alerts
    assert result.decision is Decision.ACCEPT  # clocks drift; rule 8 records, never blocks


def test_a_camera_clock_far_ahead_is_measured_and_alerted(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    vol.event("DOCKED", at=vol.now + timedelta(minutes=10))
    vol.write_log(docked=False)
    result = vol.inspect()
    assert result.findings.clock_offset is not None
    assert abs(result.findings.clock_offset - timedelta(minutes=10)) < timedelta(seconds=1)
    assert result.findings.clock_skewed and Alert.CLOCK_SKEW in result.alerts
    assert Flag.CLOCK_SKEW in result.flags(REC1)
    assert result.decision is Decision.ACCEPT


# --- event log against the volume -------------------------------------------------------


def test_a_recording_named_in_the_log_but_missing_on_disk_blocks_deletion(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    vol.event("RECORD_START", file="BWC00002.MP4", trigger="discretionary")
    vol.write_log()
    result = vol.inspect()
    assert result.findings.missing_recordings == ["BWC00002.MP4"]
    assert Alert.MISSING_RECORDING in result.alerts
    assert result.decision is Decision.ACCEPT_NO_DELETE


def test_recordings_wiped_at_an_earlier_docking_are_not_missing(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.event("RECORD_START", file="BWC00001.MP4", trigger="manual")
    vol.event("DOCKED")  # the previous docking offloaded and wiped BWC00001
    vol.recording(2)
    vol.write_log()
    result = vol.inspect()
    assert result.findings.missing_recordings == []
    assert result.decision is Decision.ACCEPT


def test_a_forged_log_line_is_possible_tamper(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    forged = {"seq": 2, "t": rfc3339(vol.now), "event": "RECORD_START", "file": "BWC00001.MP4"}
    forged["trigger"] = "discretionary"
    vol.write_log(extra=json.dumps(forged).encode() + b"\n")
    result = vol.inspect()
    assert Flag.EVENT_LOG_UNPARSEABLE_LINES in result.flags("LOGS/EVENTS.LOG")
    assert result.findings.event_log is not None
    assert result.findings.event_log.events[1].trigger == "manual"
    assert Alert.POSSIBLE_TAMPER in result.alerts
    assert result.decision is Decision.ACCEPT_NO_DELETE


def test_garbage_log_lines_are_flagged_but_do_not_block(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    vol.write_log(extra=b"\x00\xff\xfe garbage \x89PNG\r\n{not json\n")
    result = vol.inspect()
    assert result.flags("LOGS/EVENTS.LOG") == {Flag.EVENT_LOG_UNPARSEABLE_LINES}
    assert result.decision is Decision.ACCEPT


def test_an_event_log_over_its_limit_is_read_only_to_the_limit(tmp_path: Path) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    vol.write_log()
    size = os.stat(vol.path("LOGS/EVENTS.LOG")).st_size
    result = vol.inspect(limits(max_event_log_bytes=size - 10))
    log = result.findings.event_log
    assert log is not None and log.counts.truncated
    assert [e.event.value for e in log.events][-1] != "DOCKED"
    assert Flag.EVENT_LOG_UNPARSEABLE_LINES in result.flags("LOGS/EVENTS.LOG")


def test_files_that_change_while_inspected_are_unstable_and_unused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = CameraVolume(tmp_path / "vol")
    vol.recording(1)
    vol.write_log()
    real_chunks = inspect_module.read_chunks

    def camera_writes_meanwhile(fd: int, limit: int) -> Iterator[bytes]:
        with open(vol.path("LOGS/EVENTS.LOG"), "ab") as out:
            out.write(line_of(99))
        yield from real_chunks(fd, limit)

    monkeypatch.setattr(inspect_module, "read_chunks", camera_writes_meanwhile)
    result = vol.inspect()
    assert result.findings.unstable == {b"LOGS/EVENTS.LOG"}
    assert result.findings.event_log is None


def line_of(seq: int) -> bytes:
    return json.dumps({"seq": seq, "t": "2026-11-24T08:00:00Z", "event": "WAKE"}).encode() + b"\n"


def test_decide_session_counts_skips_and_flags_from_empty_findings() -> None:
    assert decide_session(VolumeScan(), Findings()) == (Decision.ACCEPT, set())
    unread = VolumeScan(skipped=[Entry(b"DCIM", Outcome.NOT_READ)])
    assert decide_session(unread, Findings()) == (
        Decision.ACCEPT_NO_DELETE,
        {Alert.VOLUME_INTEGRITY_SUSPECT},
    )
    for reason, alert in [
        (SkipReason.SYMLINK, Alert.VOLUME_INTEGRITY_SUSPECT),
        (SkipReason.EXCEEDS_SIZE_LIMIT, Alert.FILE_TOO_LARGE),
        (SkipReason.FILE_UNSTABLE, None),
    ]:
        scan = VolumeScan(skipped=[Entry(b"x", Outcome.SKIPPED, reason=reason)])
        decision, alerts = decide_session(scan, Findings())
        assert alerts == ({alert} if alert else set())
        assert decision is (Decision.ACCEPT_NO_DELETE if alert else Decision.ACCEPT)
    decision, alerts = decide_session(
        VolumeScan(), Findings(), later_alerts={Alert.SOURCE_CHANGED_AFTER_COPY}
    )
    assert decision is Decision.ACCEPT_NO_DELETE and alerts == {Alert.SOURCE_CHANGED_AFTER_COPY}
