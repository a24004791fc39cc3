"""The simulated wearer's shift: when each clip was recorded and what the event log says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TRIGGERS = ("manual", "automatic", "discretionary")
_START_REASONS = {"automatic": "holster_sensor", "discretionary": "wearer_judgement"}
_STOP_REASONS = ("incident_ended", "wearer_stopped", "privacy_request")
_POWER_ON_LEAD_MS = 120_000  # camera switched on two minutes before the first recording
_SLEEP_AFTER_MS = 15_000
_WAKE_BEFORE_MS = 5_000
_DOCK_AFTER_MS = 90_000
_GAP_MS = (240_000, 540_000)  # between one recording's stop and the next one's start


@dataclass(frozen=True)
class PlannedClip:
    """One recording; times are milliseconds from the first RECORD_START."""

    name: str
    trigger: str
    start_ms: int
    duration_ms: int
    mute_ms: tuple[int, int] | None  # from this clip's start; the microphone was off


@dataclass(frozen=True)
class Plan:
    clips: tuple[PlannedClip, ...]
    events: tuple[tuple[int, dict[str, Any]], ...]  # (ms from first RECORD_START, fields)

    @property
    def docked_ms(self) -> int:
        return self.events[-1][0]


def clip_name(number: int) -> str:
    return f"BWC{number:05d}.MP4"


def plan_shift(*, clips: int, duration_ms: int, seed: int) -> Plan:
    """Lay out a shift: POWER_ON, then per clip RECORD_START (triggers cycling manual,
    automatic, discretionary), NOTICE, one MUTE/UNMUTE span, RECORD_STOP, a SLEEP/WAKE
    pair between clips, and DOCKED last. Event times never decrease."""
    rng = np.random.default_rng([seed, 0x5EED])
    muted = 1 if clips > 1 else 0
    planned: list[PlannedClip] = []
    events: list[tuple[int, dict[str, Any]]] = [(-_POWER_ON_LEAD_MS, {"event": "POWER_ON"})]
    at = 0
    for index in range(clips):
        if index:
            gap = int(rng.integers(*_GAP_MS))
            events.append((at + _SLEEP_AFTER_MS, {"event": "SLEEP"}))
            events.append((at + gap - _WAKE_BEFORE_MS, {"event": "WAKE"}))
            at += gap
        name = clip_name(index + 1)
        trigger = TRIGGERS[index % len(TRIGGERS)]
        mute = (duration_ms * 2 // 5, duration_ms * 7 // 10) if index == muted else None
        planned.append(PlannedClip(name, trigger, at, duration_ms, mute))
        start: dict[str, Any] = {"event": "RECORD_START", "file": name, "trigger": trigger}
        if trigger in _START_REASONS:
            start["reason"] = _START_REASONS[trigger]
        events.append((at, start))
        notice = {"event": "NOTICE", "file": name, "notice": "persons_present_informed"}
        events.append((at + duration_ms * 3 // 20, notice))
        if mute is not None:
            reason = "confidential_conversation"
            events.append((at + mute[0], {"event": "MUTE", "file": name, "reason": reason}))
            reason = "conversation_ended"
            events.append((at + mute[1], {"event": "UNMUTE", "file": name, "reason": reason}))
        at += duration_ms
        stop = _STOP_REASONS[index % len(_STOP_REASONS)]
        events.append((at, {"event": "RECORD_STOP", "file": name, "reason": stop}))
    events.append((at + _DOCK_AFTER_MS, {"event": "DOCKED"}))
    return Plan(tuple(planned), tuple(events))
