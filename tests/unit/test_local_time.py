"""Times shown and read in the district's zone; stored times stay UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.evidence_search import parse_filters
from app.local_time import day_start, from_wall_clock, shown, shown_day, to_wall_clock
from app.settings import ConfigError, Settings


def test_a_utc_time_is_shown_on_the_district_clock_with_its_abbreviation() -> None:
    winter = datetime(2026, 1, 15, 14, 5, tzinfo=UTC)
    summer = datetime(2026, 7, 15, 14, 5, tzinfo=UTC)
    assert shown(winter, "America/Chicago") == "2026-01-15 08:05 CST"
    assert shown(summer, "America/Chicago") == "2026-07-15 09:05 CDT"
    assert shown(winter, "UTC", "%H:%M:%S") == "14:05:00 UTC"
    assert shown(None, "America/Chicago") == ""
    assert shown(datetime(2026, 1, 15, 14, 5), "America/Chicago") == "2026-01-15 08:05 CST"


def test_a_date_alone_is_the_districts_calendar_day() -> None:
    late_evening_in_chicago = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)
    assert shown_day(late_evening_in_chicago, "America/Chicago") == "2026-12-01"
    assert shown_day(late_evening_in_chicago, "UTC") == "2026-12-02"
    assert shown_day(datetime(2026, 12, 2, 3, 30), "Asia/Tokyo") == "2026-12-02"  # naive: UTC
    assert shown_day(None, "UTC") == ""


def test_typed_times_are_read_on_the_district_clock_and_round_trip() -> None:
    typed = datetime(2026, 3, 2, 8, 15)  # what a form sends: no zone
    instant = from_wall_clock(typed, "America/Chicago")
    assert instant == datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
    assert to_wall_clock(instant, "America/Chicago") == typed
    # The hour clocks go back happens twice: the first of the two is meant.
    twice = from_wall_clock(datetime(2026, 11, 1, 1, 30), "America/Chicago")
    assert twice == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # still CDT


def test_a_day_filter_starts_at_the_districts_midnight() -> None:
    assert day_start(date(2026, 9, 1), "America/Chicago") == datetime(2026, 9, 1, 5, 0, tzinfo=UTC)
    filters = parse_filters({"recorded_from": "2026-09-01"}, "Europe/London")
    assert filters.time_zone == "Europe/London"
    assert "time_zone" not in filters.as_args() and filters.active


def test_an_unknown_zone_is_refused_with_a_clear_message() -> None:
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ConfigError, match="BWC_TIME_ZONE must be an IANA time zone"):
            Settings(time_zone=bad).check()
    Settings(time_zone="America/Chicago").check()
