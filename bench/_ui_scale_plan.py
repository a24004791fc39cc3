"""The generated history as numpy arrays, from one seeded generator: when each recording
happened and on which camera, the district's incidents, and the custody events that
followed each recording (docking, fixity sweeps, people viewing and annotating it).

Recordings fall on school days (weekends and the summer less), mostly in school hours;
cameras differ in how much they record. Each item's custody chain starts as the
service's does (received, verified, then the dock's wipe report), gets a fixity event
every sweep, and a heavy-tailed number of human events (negative binomial): most items
are seen a few times, a few in a big incident dozens of times. The human counts are
nudged so the item events add up to exactly the requested total."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

# Event kinds of the schedule (indices into CUSTODY_TYPES in _ui_scale_custody).
RECEIVED, VERIFIED, WIPED, FIXITY, FIXITY_FAILED = 0, 1, 2, 3, 4
STREAMED, DOWNLOADED, TAGGED, UNTAGGED, CATEGORISED, BOOKMARKED, LINKED, EXPORTED = range(5, 13)
INCIDENT = 13  # incident.created: a ledger event in no item's chain
HUMAN = np.array(
    [STREAMED, DOWNLOADED, TAGGED, UNTAGGED, CATEGORISED, BOOKMARKED, LINKED, EXPORTED]
)
HUMAN_WEIGHTS = np.array([0.44, 0.08, 0.16, 0.02, 0.08, 0.10, 0.09, 0.03])
FLAGS = ("clock_skew", "nonstandard_filename", "missing_sidecar")
DAY = 86_400.0

NOTE_WORDS = (
    "student altercation near lockers staff intervened verbal warning given parent "
    "contacted handed to administration follow up requested nothing of note camera "
    "knocked accidental activation bodycam test recording visitor refused to sign in "
    "escorted off campus vehicle blocking fire lane removed smell of smoke reported "
    "search conducted with consent item recovered returned to owner injury first aid "
    "nurse called ambulance not required counselor present interview recorded"
).split()
TITLE_BEHAVIOURS = (
    "Fight",
    "Altercation",
    "Vandalism",
    "Theft",
    "Trespass",
    "Threat",
    "Medical call",
    "Missing student",
    "Vape found",
    "Weapon report",
    "Bullying report",
    "Disturbance",
    "Traffic collision",
    "Suspicious person",
    "Fire alarm",
    "Lockdown drill",
)
TITLE_PLACES = (
    "east corridor",
    "cafeteria",
    "bus loop",
    "parking lot",
    "gymnasium",
    "library",
    "football field",
    "main entrance",
    "stairwell B",
    "science wing",
    "playground",
    "restrooms",
    "bleachers",
    "front office",
    "portable classrooms",
    "crosswalk",
)


@dataclass
class Recordings:
    n: int
    camera: np.ndarray  # index into World.cameras
    school: np.ndarray  # index into World.schools
    wearer: np.ndarray  # index into World.wearers, -1: pool camera and no badge given
    dock: np.ndarray  # index into World.docks
    start: np.ndarray  # epoch seconds
    end: np.ndarray
    ingested: np.ndarray
    timed: np.ndarray  # the camera gave a start time
    size: np.ndarray
    offset_ms: np.ndarray
    flag: np.ndarray  # index into FLAGS, -1: none
    note: np.ndarray  # -1: no note, else a seed for its words
    file_no: np.ndarray  # the camera's file counter


@dataclass
class Incidents:
    n: int
    school: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    created: np.ndarray
    number: list[str]
    title: list[str]
    by_school: list[np.ndarray]  # incident indices per school, by start time


@dataclass
class Schedule:
    item: np.ndarray  # item index (incident index for INCIDENT)
    kind: np.ndarray
    time: np.ndarray
    item_events: int
    tampered: np.ndarray  # item indices whose last fixity check failed


def _ranks(counts: np.ndarray) -> np.ndarray:
    """1, 2, … counts[0], 1, 2, … counts[1], …: each run's position, vectorised."""
    total = int(counts.sum())
    firsts = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(firsts, counts) + 1


def _day_weights(t0: float, days: int) -> np.ndarray:
    weights = np.ones(days)
    for d in range(days):
        moment = datetime.fromtimestamp(t0 + d * DAY, UTC)
        if moment.weekday() >= 5:
            weights[d] = 0.08
        elif moment.month in (7, 8) or (moment.month == 12 and moment.day > 20):
            weights[d] = 0.25
    return weights / weights.sum()


def _school_times(rng: np.random.Generator, t0: float, days: int, n: int) -> np.ndarray:
    day = rng.choice(days, size=n, p=_day_weights(t0, days))
    hour = np.clip(rng.normal(11.5, 2.6, n), 6.5, 20.0)
    return t0 + day * DAY + hour * 3600.0


def recordings(
    rng: np.random.Generator,
    n: int,
    t0: float,
    t1: float,
    cameras: list[tuple[int, int, int, str]],
    wearers: list[tuple[int, int]],
    docks: list[tuple[int, int, str]],
) -> Recordings:
    days = int((t1 - t0) // DAY) - 3  # every item docked before the end of the history
    activity = rng.lognormal(0.0, 0.6, len(cameras))
    camera = rng.choice(len(cameras), size=n, p=activity / activity.sum()).astype(np.int32)
    cam_school = np.array([c[1] for c in cameras], dtype=np.int32)
    cam_wearer = np.array([c[2] for c in cameras], dtype=np.int32)
    school = cam_school[camera]
    wearer = cam_wearer[camera].copy()
    schools = int(cam_school.max()) + 1
    dock = np.empty(n, dtype=np.int32)
    pooled = wearer < 0
    for s in range(schools):
        here = school == s
        own_docks = np.array([i for i, d in enumerate(docks) if d[1] == s])
        dock[here] = rng.choice(own_docks, size=int(here.sum()))
        # A pool camera's recording names its wearer by the badge given at docking,
        # three times in four.
        badge = here & pooled & (rng.random(n) < 0.75)
        own_wearers = np.array([i for i, w in enumerate(wearers) if w[1] == s])
        wearer[badge] = rng.choice(own_wearers, size=int(badge.sum()))
    start = _school_times(rng, t0, days, n) + rng.uniform(0, 60, n)
    duration = np.clip(rng.lognormal(np.log(240.0), 0.9, n), 10.0, 3600.0)
    end = start + duration
    delay = rng.exponential(4 * 3600.0, n) + 1200.0
    delay += np.where(rng.random(n) < 0.15, rng.uniform(1, 3, n) * DAY, 0.0)
    ingested = np.minimum(end + delay, t1 - 3600.0)
    flag = np.full(n, -1, dtype=np.int8)
    roll = rng.random(n)
    flag[roll < 0.02] = 0
    flag[(roll >= 0.02) & (roll < 0.023)] = 1
    flag[(roll >= 0.023) & (roll < 0.025)] = 2
    offset = np.round(rng.normal(0, 400, n)).astype(np.int64)
    skew = flag == 0
    offset[skew] = (
        rng.choice([-1, 1], skew.sum()) * rng.uniform(10, 300, skew.sum()) * 1e3
    ).astype(np.int64)
    size = (duration * 5e5 * rng.lognormal(0, 0.2, n)).astype(np.int64)
    note = np.where(rng.random(n) < 0.08, rng.integers(0, 2**31 - 1, n), -1)
    order = np.lexsort((start, camera))
    file_no = np.empty(n, dtype=np.int32)
    file_no[order] = _ranks(np.bincount(camera, minlength=len(cameras)))
    return Recordings(
        n=n,
        camera=camera,
        school=school,
        wearer=wearer,
        dock=dock,
        start=start,
        end=end,
        ingested=ingested,
        timed=rng.random(n) >= 0.01,
        size=size,
        offset_ms=offset,
        flag=flag,
        note=note,
        file_no=file_no,
    )


def note_text(seed: int) -> str:
    local = np.random.default_rng(seed)
    words = local.choice(NOTE_WORDS, size=int(local.integers(4, 14)))
    return " ".join(words).capitalize() + "."


def incidents(
    rng: np.random.Generator, schools: int, per_school_year: float, t0: float, t1: float
) -> Incidents:
    days = int((t1 - t0) // DAY) - 3
    counts = rng.poisson(per_school_year * days / 365.0, schools)
    school = np.repeat(np.arange(schools, dtype=np.int32), counts)
    n = int(counts.sum())
    starts = _school_times(rng, t0, days, n)
    order = np.argsort(starts, kind="stable")
    school, starts = school[order], starts[order]
    ends = starts + rng.uniform(5, 90, n) * 60
    created = starts + rng.uniform(0.5, 30, n) * 3600
    numbers: list[str] = []
    per_year: dict[int, int] = {}
    for t in starts.tolist():
        year = datetime.fromtimestamp(t, UTC).year
        per_year[year] = per_year.get(year, 0) + 1
        numbers.append(f"INC-{year}-{per_year[year]:05d}")
    behaviour = rng.integers(0, len(TITLE_BEHAVIOURS), n)
    place = rng.integers(0, len(TITLE_PLACES), n)
    titles = [
        f"{TITLE_BEHAVIOURS[b]} in the {TITLE_PLACES[p]}"
        for b, p in zip(behaviour, place, strict=True)
    ]
    by_school = [np.flatnonzero(school == s) for s in range(schools)]
    return Incidents(n, school, starts, ends, created, numbers, titles, by_school)


def schedule(
    rng: np.random.Generator,
    rec: Recordings,
    inc: Incidents,
    target: int,
    t1: float,
    fixity_days: float,
    tampered: int,
) -> Schedule:
    """Every custody event of every item (exactly `target` of them) plus the incidents'
    creation events, ordered by time."""
    n = rec.n
    items = np.arange(n, dtype=np.int32)
    base_t = [
        rec.ingested,
        rec.ingested + rng.uniform(0.2, 3, n),
        rec.ingested + rng.uniform(10, 60, n),
    ]
    period = fixity_days * DAY
    sweeps = np.floor((t1 - rec.ingested) / period).astype(np.int64)
    f_item = np.repeat(items, sweeps)
    f_j = _ranks(sweeps)
    f_t = np.minimum(rec.ingested[f_item] + f_j * period + rng.uniform(0, 5 * DAY, len(f_item)), t1)
    f_kind = np.full(len(f_item), FIXITY, dtype=np.int8)
    eligible = np.flatnonzero(sweeps > 0)
    bad = rng.choice(eligible, size=min(tampered, len(eligible)), replace=False)
    last = np.flatnonzero(np.isin(f_item, bad) & (f_j == sweeps[f_item]))
    f_kind[last] = FIXITY_FAILED
    human_total = target - 3 * n - len(f_item)
    if human_total < 0:
        raise ValueError("fixity sweeps alone exceed the requested events; sweep less often")
    mean = human_total / max(1, n)
    counts = rng.poisson(mean * rng.gamma(0.5, 2.0, n))
    diff = human_total - int(counts.sum())
    while diff:
        if diff > 0:
            np.add.at(counts, rng.integers(0, n, diff), 1)
        else:
            having = np.flatnonzero(counts > 0)
            pick = rng.choice(having, size=min(-diff, len(having)), replace=False)
            counts[pick] -= 1
        diff = human_total - int(counts.sum())
    h_item = np.repeat(items, counts)
    soon = rng.random(len(h_item)) < 0.5
    delay = np.where(
        soon, rng.exponential(2 * DAY, len(h_item)), rng.exponential(60 * DAY, len(h_item))
    )
    h_t = rec.ingested[h_item] + 120 + delay
    late = h_t >= t1
    h_t[late] = rec.ingested[h_item[late]] + rng.random(late.sum()) * (
        t1 - rec.ingested[h_item[late]]
    )
    h_kind = rng.choice(HUMAN, size=len(h_item), p=HUMAN_WEIGHTS).astype(np.int8)
    item = np.concatenate([items, items, items, f_item, h_item, np.arange(inc.n)]).astype(np.int32)
    kind = np.concatenate(
        [
            np.full(n, RECEIVED, np.int8),
            np.full(n, VERIFIED, np.int8),
            np.full(n, WIPED, np.int8),
            f_kind,
            h_kind,
            np.full(inc.n, INCIDENT, np.int8),
        ]
    )
    time = np.concatenate([*base_t, f_t, h_t, inc.created])
    order = np.argsort(time, kind="stable")
    return Schedule(item[order], kind[order], time[order], target, np.sort(bad))
