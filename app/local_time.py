"""Times as people at the district read and type them.

Everything stored, logged and put in the ledger is UTC. Pages show times in the
district's zone (BWC_TIME_ZONE) with its abbreviation, so "08:15 CST" on the incident
page is what the school's clocks said; times and dates typed into forms are read in
that zone. A wall-clock time that happens twice (the hour after clocks go back) is
read as the first of the two; one that never happens (the hour skipped in spring) as
the same clock reading before the change. Neither is guessed silently elsewhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def shown(moment: datetime | None, zone_name: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """moment in the district's zone, with the zone's abbreviation ("" for None)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # stored times are UTC; a driver may drop the zone
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone(zone_name))
    return f"{local.strftime(fmt)} {local.tzname()}"


def shown_day(moment: datetime | None, zone_name: str) -> str:
    """The district's calendar date of moment, as 2026-12-01 ("" for None): a date
    alone carries no zone abbreviation, but it is still the district's day, not UTC's."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone(zone_name)).date().isoformat()


def from_wall_clock(reading: datetime, zone_name: str) -> datetime:
    """A time typed into a form (no zone) as the UTC instant it names."""
    return reading.replace(tzinfo=zone(zone_name), fold=0).astimezone(UTC)


def to_wall_clock(moment: datetime, zone_name: str) -> datetime:
    """A stored time as a form shows it: the district's clock reading, no zone."""
    return moment.astimezone(zone(zone_name)).replace(tzinfo=None)


def day_start(day: date, zone_name: str) -> datetime:
    """The UTC instant the district's day begins (midnight there)."""
    return from_wall_clock(datetime.combine(day, time.min), zone_name)
