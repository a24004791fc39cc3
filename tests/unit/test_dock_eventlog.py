"""The camera's event log: bounded lines, garbage tolerated, no line rewriting another."""

from __future__ import annotations

import json
import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dock.camera_data import CameraDataError, loads_strict, parse_rfc3339
from dock.eventlog import (
    EventLog,
    EventType,
    Trigger,
    clock_offset,
    corrected,
    parse_event_log,
)
from dock.report import Flag
from dock.volume import read_chunks
from tests.unit.camera_volumes import PROFILE, limits

LIMITS = PROFILE.limits
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def line(seq: int, event: str, minutes: int = 0, **fields: Any) -> bytes:
    moment = (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps({"seq": seq, "t": moment, "event": event, **fields}).encode() + b"\n"


SHIFT = b"".join(
    [
        line(1, "POWER_ON"),
        line(2, "RECORD_START", 1, file="BWC00001.MP4", trigger="manual"),
        line(3, "NOTICE", 2, file="BWC00001.MP4", notice="persons_present_informed"),
        line(4, "MUTE", 3, file="BWC00001.MP4", reason="confidential_conversation"),
        line(5, "UNMUTE", 4, file="BWC00001.MP4", reason="conversation_ended"),
        line(6, "RECORD_STOP", 5, file="BWC00001.MP4", reason="incident_ended"),
        line(7, "SLEEP", 6),
        line(8, "WAKE", 7),
        line(9, "DOCKED", 9),
    ]
)


def parse(data: bytes, *, chunk: int = 1 << 16, complete: bool = True, **changes: Any) -> EventLog:
    lim = limits(**changes).limits if changes else LIMITS
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return parse_event_log(chunks, lim, PROFILE.recording_name, complete=complete)


def test_a_shift_is_parsed_into_typed_events() -> None:
    log = parse(SHIFT)
    assert [e.seq for e in log.events] == list(range(1, 10))
    start = log.events[1]
    assert start.event is EventType.RECORD_START and start.trigger is Trigger.MANUAL
    assert start.file == "BWC00001.MP4" and start.camera_time == T0 + timedelta(minutes=1)
    assert log.events[5].reason == "incident_ended"
    assert log.events[2].raw["notice"] == "persons_present_informed"
    assert log.recordings_named() == ["BWC00001.MP4"]
    assert log.last_docked_time() == T0 + timedelta(minutes=9)
    assert log.flags == set() and log.counts.lines == 9


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=200))
def test_chunk_boundaries_never_change_the_result(chunk: int) -> None:
    expected = parse(SHIFT)
    got = parse(SHIFT, chunk=chunk)
    assert got.events == expected.events and got.counts == expected.counts


def test_a_ten_megabyte_line_is_counted_once_and_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "EVENTS.LOG"
    with path.open("wb") as out:
        out.write(SHIFT[: SHIFT.index(b"\n") + 1])
        out.write(b'{"seq": 2, "event": "NOTICE", "pad": "' + b"A" * 10_000_000 + b'"}\n')
        out.write(SHIFT[SHIFT.index(b"\n") + 1 :])
    fd = os.open(path, os.O_RDONLY)
    tracemalloc.start()
    try:
        log = parse_event_log(
            read_chunks(fd, LIMITS.max_event_log_bytes),
            LIMITS,
            PROFILE.recording_name,
            complete=True,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        os.close(fd)
    assert peak < 1 << 20
    assert log.counts.oversized == 1 and log.counts.lines == 10
    assert [e.seq for e in log.events] == list(range(1, 10))
    assert log.flags == {Flag.EVENT_LOG_UNPARSEABLE_LINES}


def test_a_line_of_exactly_the_limit_is_read_and_one_byte_more_is_not() -> None:
    base = line(1, "NOTICE", note="")[:-1]
    exact = base.replace(b'"note": ""', b'"note": "' + b"n" * (4096 - len(base)) + b'"')
    assert len(exact) == 4096
    assert [e.seq for e in parse(exact + b"\n").events] == [1]
    over = exact.replace(b'"n', b'"nn', 1)
    log = parse(over + b"\n")
    assert log.events == [] and log.counts.oversized == 1


def test_binary_garbage_and_non_utf8_lines_are_counted_not_fatal() -> None:
    garbage = b'\x00\x01\x02\xff\xfe\n\x89PNG\r\n\x1a\n{"seq": \xff}\n[1, 2]\n{\n\n   \n'
    log = parse(SHIFT[:100] + b"\n" + garbage + SHIFT)
    assert [e.seq for e in log.events] == list(range(1, 10))
    assert log.counts.bad == 7  # the cut line, five garbage lines and a lone "{"
    assert log.flags == {Flag.EVENT_LOG_UNPARSEABLE_LINES}


def test_a_forged_line_reusing_a_seq_never_rewrites_the_earlier_event() -> None:
    forged = line(2, "RECORD_START", 1, file="BWC00001.MP4", trigger="discretionary")
    log = parse(SHIFT + forged + line(9, "DOCKED", 30) + line(1, "POWER_ON"))
    assert log.events[1].trigger is Trigger.MANUAL
    assert [e.seq for e in log.events] == list(range(1, 10))
    assert log.last_docked_time() == T0 + timedelta(minutes=9)
    assert log.counts.replayed == 3 and log.counts.forged == 3


def test_a_later_seq_is_accepted_after_rejected_replays() -> None:
    log = parse(SHIFT + line(3, "SLEEP", 20) + line(10, "WAKE", 21))
    assert [e.seq for e in log.events][-1] == 10 and log.counts.replayed == 1


@pytest.mark.parametrize(
    "file", ["../../etc/passwd", "/etc/passwd", "BWC00001.MP4\n", "DCIM/100BWC/BWC00001.MP4", 7]
)
def test_file_fields_that_are_not_plain_recording_names_are_rejected(file: object) -> None:
    log = parse(line(1, "RECORD_START", file=file, trigger="manual") + line(2, "DOCKED"))
    assert [e.event for e in log.events] == [EventType.DOCKED]
    assert log.counts.bad_file_references == 1 and log.counts.forged == 1
    assert log.recordings_named() == []


@pytest.mark.parametrize(
    "bad",
    [
        line(1, "RECORD_START", file="BWC00001.MP4"),  # no trigger
        line(1, "RECORD_START", file="BWC00001.MP4", trigger="whim"),
        line(1, "RECORD_START", file="BWC00001.MP4", trigger=["manual"]),
        line(1, "RECORD_START", trigger="manual"),  # no file
        line(1, "RECORD_STOP", reason={"nested": "object"}),
        b'{"seq": true, "t": "2026-11-24T08:00:00Z", "event": "WAKE"}\n',
        b'{"seq": 1.0, "t": "2026-11-24T08:00:00Z", "event": "WAKE"}\n',
        b'{"seq": -1, "t": "2026-11-24T08:00:00Z", "event": "WAKE"}\n',
        b'{"seq": 1, "t": "2026-11-24T08:00:00", "event": "WAKE"}\n',  # naive
        b'{"seq": 1, "t": "1970-01-01T00:00:00Z", "event": "WAKE"}\n',  # reset clock
        b'{"seq": 1, "t": "2026-11-24T08:00:00Z", "event": "WAKE", "seq": 99}\n',
        b'{"seq": 1, "t": "2026-11-24T08:00:00Z", "event": 5}\n',
        b'{"seq": 1, "t": "2026-11-24T08:00:00Z", "event": "WAKE", "x": NaN}\n',
    ],
)
def test_malformed_lines_are_bad_and_leave_the_seq_free(bad: bytes) -> None:
    log = parse(bad + line(1, "WAKE"))
    assert [(e.seq, e.event) for e in log.events] == [(1, EventType.WAKE)]
    assert log.counts.bad == 1


def test_unknown_events_are_kept_as_unknown_and_flagged() -> None:
    log = parse(line(1, "SELF_DESTRUCT") + line(2, "WAKE"))
    assert [(e.event, e.name) for e in log.events] == [
        (EventType.UNKNOWN, "SELF_DESTRUCT"),
        (EventType.WAKE, "WAKE"),
    ]
    assert log.counts.unknown_events == 1 and log.flags == {Flag.EVENT_LOG_UNPARSEABLE_LINES}


def test_an_incomplete_read_does_not_parse_the_cut_last_line() -> None:
    log = parse(SHIFT[:-10], complete=False)
    assert [e.seq for e in log.events] == list(range(1, 9))
    assert log.counts.truncated and Flag.EVENT_LOG_UNPARSEABLE_LINES in log.flags
    whole = parse(SHIFT.rstrip(b"\n"))  # a complete log may lack its final newline
    assert whole.events[-1].event is EventType.DOCKED


def test_recordings_expected_on_disk_start_after_the_previous_docking() -> None:
    log = parse(
        SHIFT
        + line(10, "RECORD_START", 60, file="BWC00002.MP4", trigger="automatic")
        + line(11, "RECORD_STOP", 61, file="BWC00002.MP4", reason="wearer_stopped")
        + line(12, "DOCKED", 70)
    )
    assert log.recordings_named() == ["BWC00001.MP4", "BWC00002.MP4"]
    assert log.recordings_expected_on_disk() == ["BWC00002.MP4"]
    assert parse(SHIFT).recordings_expected_on_disk() == ["BWC00001.MP4"]


def test_clock_offset_and_correction_round_trip() -> None:
    dock_now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    offset = clock_offset(dock_now + timedelta(seconds=125.25), dock_now)
    assert offset == timedelta(seconds=125.25)
    assert corrected(dock_now + timedelta(minutes=5, seconds=125.25), offset) == dock_now + (
        timedelta(minutes=5)
    )


@pytest.mark.parametrize(
    "data", [b"1e999", b"-Infinity", b"NaN", b'{"a": 1, "a": 1}', b"\xef\xbb\xbf{}", b'"\xff"']
)
def test_strict_json_refuses_ambiguous_or_non_finite_input(data: bytes) -> None:
    with pytest.raises(CameraDataError):
        loads_strict(data, 100)


def test_strict_json_refuses_more_than_its_limit() -> None:
    assert loads_strict(b"[1, 2]", 6) == [1, 2]
    with pytest.raises(CameraDataError):
        loads_strict(b"[1, 2] ", 6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T08:00:00Z", T0),
        ("2026-11-24t08:00:00.123456789z", T0 + timedelta(microseconds=123456)),
        ("2026-11-24T09:30:00+01:30", T0),
        ("2026-11-24T06:00:00-02:00", T0),
    ],
)
def test_rfc3339_times_parse_to_utc(text: str, expected: datetime) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24 08:00:00Z",
        "2026-11-24T08:00:00",
        "2026-W48-2T08:00:00Z",
        "2026-11-24T08:00:60Z",
        "2026-02-30T08:00:00Z",
        "2026-11-24T08:00:00+24:00",
        "2026-11-24T08:00:00Z\n",
        "２０２６-11-24T08:00:00Z",
        12345,
    ],
)
def test_rfc3339_refuses_what_it_would_have_to_guess(text: object) -> None:
    with pytest.raises(CameraDataError):
        parse_rfc3339(text)
