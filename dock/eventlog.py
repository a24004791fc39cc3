"""The camera's activation event log (LOGS/EVENTS.LOG): bounded, tolerant, replay-proof."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from dock.camera_data import (
    CameraDataError,
    bounded_str,
    loads_strict,
    parse_rfc3339,
    plausible,
    strict_int,
)
from dock.names import matches, plain_name
from dock.profiles import Limits
from dock.report import Flag

# The log is JSON lines written by the camera, and hostile until checked: a line may be
# megabytes long, binary, or forged to rewrite history. Each line is judged alone; a bad
# line is counted, never fatal, and never able to replace an event already accepted.
MAX_TEXT = 256  # characters of a reason or trigger worth keeping
MAX_EVENT_NAME = 64


class EventType(StrEnum):
    POWER_ON = "POWER_ON"
    RECORD_START = "RECORD_START"
    RECORD_STOP = "RECORD_STOP"
    MUTE = "MUTE"
    UNMUTE = "UNMUTE"
    SLEEP = "SLEEP"
    WAKE = "WAKE"
    NOTICE = "NOTICE"
    DOCKED = "DOCKED"
    UNKNOWN = "UNKNOWN"  # a well-formed line with an event name this profile lacks


class Trigger(StrEnum):
    MANUAL = "manual"
    AUTOMATIC = "automatic"
    DISCRETIONARY = "discretionary"


_KNOWN = frozenset(e.value for e in EventType) - {EventType.UNKNOWN.value}
_TRIGGERS = frozenset(t.value for t in Trigger)


@dataclass(frozen=True)
class ActivationEvent:
    """One accepted log line. camera_time is the camera's clock: data, not truth."""

    seq: int
    event: EventType
    camera_time: datetime
    name: str  # the event name as written (differs from event only for UNKNOWN)
    file: str | None = None
    trigger: Trigger | None = None
    reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)  # the line's object, ≤ a line


@dataclass
class EventLogCounts:
    lines: int = 0  # non-blank lines seen, good or bad
    bad: int = 0  # not UTF-8, not one strict JSON object, or wrong fields
    oversized: int = 0  # longer than max_event_line_bytes; skipped unread
    replayed: int = 0  # seq not above the last accepted one
    bad_file_references: int = 0  # "file" that is not a plain recording name
    unknown_events: int = 0
    truncated: bool = False  # the log was longer than max_event_log_bytes

    @property
    def unparseable(self) -> int:
        return self.bad + self.oversized + self.replayed + self.bad_file_references

    @property
    def forged(self) -> int:
        """Lines no honest camera writes: rewinds of seq and path-like file names."""
        return self.replayed + self.bad_file_references


@dataclass
class EventLog:
    events: list[ActivationEvent] = field(default_factory=list)
    counts: EventLogCounts = field(default_factory=EventLogCounts)

    @property
    def flags(self) -> set[Flag]:
        c = self.counts
        unreadable = c.unparseable or c.unknown_events or c.truncated
        return {Flag.EVENT_LOG_UNPARSEABLE_LINES} if unreadable else set()

    def recordings_named(self) -> list[str]:
        """Recording names the log mentions, first mention first, each once."""
        return list(dict.fromkeys(e.file for e in self.events if e.file is not None))

    def last_docked_time(self) -> datetime | None:
        """Camera time of the last DOCKED event (the camera's "now" at this docking)."""
        docked = [e.camera_time for e in self.events if e.event is EventType.DOCKED]
        return docked[-1] if docked else None

    def recordings_expected_on_disk(self) -> list[str]:
        """Recordings named since the previous docking, which no dock can have wiped yet.

        Trailing DOCKED events (this docking) are set aside; recordings started before
        the DOCKED that remains last may have been offloaded and wiped then (rule 7)."""
        events = list(self.events)
        while events and events[-1].event is EventType.DOCKED:
            events.pop()
        docked = [i for i, e in enumerate(events) if e.event is EventType.DOCKED]
        since = events[docked[-1] + 1 :] if docked else events
        return list(dict.fromkeys(e.file for e in since if e.file is not None))


def parse_event_log(
    chunks: Iterable[bytes], limits: Limits, recording_name: re.Pattern[str], *, complete: bool
) -> EventLog:
    """Parse the log from chunks of bytes, cutting lines at b"\\n".

    Memory stays within one line of max_event_line_bytes plus one chunk: a longer line is
    counted once as oversized and its bytes are dropped as they arrive. With
    complete=False (the caller stopped at max_event_log_bytes) the last unterminated line
    is a fragment and is not parsed."""
    log = EventLog()
    parser = _LineParser(log, limits, recording_name)
    line = bytearray()
    skipping = False
    for chunk in chunks:
        start = 0
        while start <= len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not skipping and len(line) + len(piece) > limits.max_event_line_bytes:
                log.counts.lines += 1
                log.counts.oversized += 1
                line.clear()
                skipping = True
            elif not skipping:
                line += piece
            if end < 0:
                break
            if not skipping:
                parser.line(bytes(line))
            line.clear()
            skipping = False
            start = end + 1
    if not complete:
        log.counts.truncated = True
    elif line and not skipping:
        parser.line(bytes(line))
    return log


class _LineParser:
    def __init__(self, log: EventLog, limits: Limits, recording_name: re.Pattern[str]) -> None:
        self.log = log
        self.limits = limits
        self.recording_name = recording_name
        self.last_seq: int | None = None

    def line(self, data: bytes) -> None:
        if not data.strip():
            return
        counts = self.log.counts
        counts.lines += 1
        try:
            obj = loads_strict(data, self.limits.max_event_line_bytes)
        except CameraDataError:
            counts.bad += 1
            return
        event = self.event(obj) if isinstance(obj, dict) else None
        if event is None:
            counts.bad += 1
            return
        if isinstance(event, str):
            counts.bad_file_references += 1
            return
        if self.last_seq is not None and event.seq <= self.last_seq:
            # A replay, duplicate or attempt to rewrite an earlier event: the earlier
            # line stands, this one is only counted.
            counts.replayed += 1
            return
        self.last_seq = event.seq
        if event.event is EventType.UNKNOWN:
            counts.unknown_events += 1
        self.log.events.append(event)

    def event(self, obj: dict[str, Any]) -> ActivationEvent | str | None:
        """The event, "bad file" for a rejected file reference, or None when malformed."""
        seq, name = strict_int(obj.get("seq")), bounded_str(obj.get("event"), MAX_EVENT_NAME)
        if seq is None or seq < 0 or name is None:
            return None
        try:
            when = parse_rfc3339(obj.get("t"))
        except CameraDataError:
            return None
        if not plausible(when):
            return None
        file = obj.get("file")
        if file is not None and not (
            isinstance(file, str) and plain_name(file) and matches(self.recording_name, file)
        ):
            return "bad file"
        kind = EventType(name) if name in _KNOWN else EventType.UNKNOWN
        trigger = None
        if kind is EventType.RECORD_START:
            raw_trigger = obj.get("trigger")
            if file is None or not isinstance(raw_trigger, str) or raw_trigger not in _TRIGGERS:
                return None
            trigger = Trigger(raw_trigger)
        reason = obj.get("reason")
        if reason is not None and bounded_str(reason, MAX_TEXT) is None:
            return None
        return ActivationEvent(
            seq, kind, when, name, file, trigger, reason, MappingProxyType(dict(obj))
        )


def clock_offset(camera_now: datetime, dock_now: datetime) -> timedelta:
    """How far the camera clock runs ahead of the dock's (negative when behind)."""
    return camera_now - dock_now


def corrected(camera_time: datetime, offset: timedelta) -> datetime:
    """A camera time moved onto the dock's clock, given clock_offset()'s result."""
    return camera_time - offset
