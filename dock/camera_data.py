"""Strict parsers for camera-supplied JSON and RFC 3339 times: bounded, unambiguous."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_PLAUSIBLE = datetime(2100, 1, 1, tzinfo=UTC)

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)


class CameraDataError(ValueError):
    """Camera-supplied bytes that are not the strict JSON or time we accept."""


def loads_strict(data: bytes, limit: int) -> Any:
    """Parse UTF-8 JSON of at most limit bytes, refusing anything two parsers might read
    differently: duplicate keys, NaN/Infinity, numbers that overflow to infinity, a BOM,
    other encodings (json.loads on bytes would guess UTF-16/32).

    Deep nesting ends in RecursionError inside json; it is caught and refused here, and
    the byte limit keeps the attempt cheap."""
    if len(data) > limit:
        raise CameraDataError(f"more than {limit} bytes")
    try:
        text = data.decode("utf-8")
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CameraDataError(f"not strict JSON: {type(exc).__name__}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # With two "sha256" members, parsers disagree on which wins; the one a clerk reads
    # must not differ from the one the dock checked.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError("non-JSON constant")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def parse_rfc3339(value: object) -> datetime:
    """An RFC 3339 date-time (with offset) as an aware UTC datetime.

    Stricter than datetime.fromisoformat: a naive time, a week date or a leap second is
    refused rather than guessed at. Digits past microseconds are dropped."""
    if not isinstance(value, str) or len(value) > 40:
        raise CameraDataError("not an RFC 3339 string")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise CameraDataError("not an RFC 3339 date-time")
    year, month, day, hour, minute, second, fraction, zulu, sign, oh, om = match.groups()
    try:
        if zulu:
            tz = UTC
        else:
            delta = timedelta(hours=int(oh), minutes=int(om))
            tz = timezone(-delta if sign == "-" else delta)
        micro = int((fraction or "0").ljust(6, "0")[:6])
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise CameraDataError("RFC 3339 date-time out of range") from None


def plausible(moment: datetime) -> bool:
    """False for dates no recording of this system can carry (a reset or forged clock)."""
    return EARLIEST_PLAUSIBLE <= moment < LATEST_PLAUSIBLE


def bounded_str(value: object, limit: int) -> str | None:
    """value when it is a printable string of at most limit characters, else None."""
    if isinstance(value, str) and len(value) <= limit and value.isprintable():
        return value
    return None


def strict_int(value: object) -> int | None:
    """value when it is a JSON integer (not a bool, which Python counts as an int)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
