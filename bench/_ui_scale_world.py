"""The district the UI benchmark runs in: what `bwc init` and the admin commands make,
through the same functions, dated before the generated history, and signing in through
the real forms with the Flask test client.

Forty schools, each with its wearers (school resource officers, a camera each), a few
pooled cameras, two docks and a supervisor; records officers for the whole district.
The two people the benchmark signs in as are a supervisor of three schools and a
records officer. Wearers are inserted as rows (a wearer need not have an account);
schools, cameras, docks and users go through app.accounts.admin and app.devices, so
their audit events and ledger leaves are the service's own."""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp

from app.accounts import admin as accounts
from app.db import Database, upgrade
from app.devices import create_dock, register_camera
from app.settings import Settings
from app.vault import Vault, encode_wrapped, ensure_keyring, item_context
from audit.adapters import ledger_sql
from audit.adapters.checkpoints_sql import create_signer_file
from evidence.adapters.sql.items import Category, Tag
from evidence.adapters.sql.org import User, Wearer
from evidence.roles import Grant, Role

PASSWORD = "bench password, never used elsewhere"  # noqa: S105  (throwaway accounts)
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')

FIRST = (
    "Alex Sam Jordan Casey Robin Morgan Taylor Jamie Riley Avery Quinn Drew Kim Lee Pat "
    "Chris Dana Jesse Kerry Shay Toni Noel Rene Jude Sky Rowan Emery Harper Remy Blair"
).split()
LAST = (
    "Rivera Morgan Lee Patel Okafor Nguyen Garcia Smith Jones Brown Khan Singh Murphy Kelly "
    "Walsh Cohen Silva Rossi Novak Berg Larsen Moreau Dubois Costa Lopez Ito Sato Kim Park"
).split()
PLACES = (
    "Northgate Southfield Eastbrook Westmoor Riverside Hillcrest Oakwood Lakeside "
    "Greenway Ashford Brookline Cedar Elmstead Fairview Glenwood Highbury Ivybridge "
    "Kingsley Linden Maplewood"
).split()
CATEGORIES = (
    ("Incident", 2555),
    ("Use of force", 3650),
    ("Arrest", 3650),
    ("Safeguarding", 3650),
    ("Complaint", 2555),
    ("Medical", 1825),
    ("Traffic", 730),
    ("Trespass", 1095),
    ("Routine patrol", 90),
    ("Training", 90),
    ("Test recording", 30),
    ("Accidental", 30),
)


@dataclass(frozen=True)
class Person:
    """Someone the benchmark signs in as."""

    username: str
    secret: str
    user_id: int
    school_ids: tuple[int, ...]  # empty: the whole district


@dataclass
class World:
    settings: Settings
    district_id: int
    log_id: int
    created_at: datetime
    schools: list[int]  # school ids, in order
    school_codes: list[str]
    wearers: list[tuple[int, int]]  # (wearer id, school index)
    cameras: list[tuple[int, int, int, str]]  # (camera id, school index, wearer index|-1, serial)
    docks: list[tuple[int, int, str]]  # (dock id, school index, pseudonym)
    supervisors: list[tuple[int, str]]  # per school index: (user id, pseudonym)
    records: list[tuple[int, str]]  # records officers (user id, pseudonym)
    categories: list[tuple[int, str]]
    tags: list[tuple[int, str]]
    key_version: str
    wrapped_key_bytes: int
    people: dict[str, Person] = field(default_factory=dict)


def _name(rng: Any) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def tag_names(count: int) -> list[str]:
    """Tag names as a district would grow them: places, behaviours and events."""
    base = (
        "fight corridor cafeteria bus-stop parking-lot gym library playground stairwell "
        "entrance football basketball assembly dismissal arrival lunch detention vape "
        "weapon-check trespass theft vandalism graffiti bullying threat medical injury "
        "fire-drill lockdown parent visitor search restraint de-escalation complaint "
        "welfare-check missing-student truancy alcohol drugs knife phone-theft "
        "locker-search hallway classroom restroom bleachers concert graduation prom "
        "field-trip bus crosswalk traffic-stop collision tow warning citation arrest "
        "escort interview statement witness evidence-handover cctv-request "
        "disclosure-request court legal-hold training test accidental"
    ).split()
    names = list(base)
    n = 1
    while len(names) < count:
        names.append(f"{PLACES[n % len(PLACES)].lower()}-{n:03d}")
        n += 1
    return names[:count]


def sign_in(client: Any, person: Person, *, step_offset: int = 0) -> None:
    """Password, then TOTP, through the real forms (as tests/e2e/conftest.py does)."""

    def token(path: str) -> str:
        page = client.get(path)
        match = _CSRF.search(page.get_data(as_text=True))
        if page.status_code != 200 or not match:
            raise RuntimeError(f"no CSRF token on {path} ({page.status_code})")
        return match.group(1)

    first = client.post(
        "/login",
        data={"csrf_token": token("/login"), "username": person.username, "password": PASSWORD},
    )
    if first.status_code != 302 or not first.headers["Location"].endswith("/login/code"):
        raise RuntimeError(f"password step failed for {person.username}: {first.status_code}")
    code = pyotp.TOTP(person.secret).at(time.time() + 30 * step_offset)
    done = client.post("/login/code", data={"csrf_token": token("/login/code"), "code": code})
    if done.status_code != 302:
        raise RuntimeError(f"TOTP step failed for {person.username}: {done.status_code}")


def build_world(
    data_dir: Path,
    database_url: str,
    *,
    created_at: datetime,
    schools: int,
    wearers_per_school: int,
    pooled_per_school: int,
    docks_per_school: int,
    records_officers: int,
    tags: int,
    rng: Any,
) -> World:
    """Initialise the service in data_dir on database_url and build the organisation."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=secrets.token_urlsafe(48),
        checkpoint_seconds=0,
    )
    now = created_at
    # What `bwc init` does (app/cli.py cmd_init), with the time passed in.
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    create_signer_file(settings.ledger_key_file or data_dir / "k", settings.ledger_origin_prefix)
    Path(settings.storage_url.removeprefix("file://")).mkdir(parents=True, mode=0o700)
    ensure_keyring(settings, now)
    upgrade(database_url)
    vault = Vault(settings)
    database = Database(database_url)
    try:
        with database.transaction() as session:
            vault.ensure_ingest_key(session, now)
            district = accounts.create_district(
                session,
                "bench",
                "Bench Unified School District",
                actor=accounts.CLI_ACTOR,
                now=now,
                ledger_origin_prefix=settings.ledger_origin_prefix,
            )
            world = _organisation(
                session,
                district,
                settings,
                now,
                schools,
                wearers_per_school,
                pooled_per_school,
                docks_per_school,
                records_officers,
                tags,
                rng,
            )
        probe = vault.keys.wrap(os.urandom(32), item_context("0" * 36, "0" * 32))
        world.key_version = probe.version
        world.wrapped_key_bytes = len(probe.blob)
        assert encode_wrapped(probe)  # the format items store
    finally:
        database.dispose()
    return world


def _organisation(
    session: Any,
    district: Any,
    settings: Settings,
    now: datetime,
    n_schools: int,
    wearers_per_school: int,
    pooled_per_school: int,
    docks_per_school: int,
    n_records: int,
    n_tags: int,
    rng: Any,
) -> World:
    cli = accounts.CLI_ACTOR
    school_rows = []
    for n in range(n_schools):
        kind = ("High School", "Middle School", "Elementary School")[n % 3]
        place = PLACES[n % len(PLACES)] + ("" if n < len(PLACES) else " Park")
        school_rows.append(
            accounts.create_school(
                session, district, f"S{n + 1:02d}", f"{place} {kind}", actor=cli, now=now
            )
        )
    wearer_rows: list[Wearer] = []
    for index, school in enumerate(school_rows):
        for k in range(wearers_per_school):
            wearer_rows.append(
                Wearer(
                    district_id=district.id,
                    school_id=school.id,
                    badge=f"SRO-{index + 1:02d}{k + 1:03d}",
                    display_name=_name(rng),
                    created_at=now,
                )
            )
    session.add_all(wearer_rows)
    session.flush()
    school_index = {s.id: i for i, s in enumerate(school_rows)}
    wearers = [(w.id, school_index[w.school_id]) for w in wearer_rows]
    cameras: list[tuple[int, int, int, str]] = []
    serial = 0
    for w_index, wearer in enumerate(wearer_rows):
        serial += 1
        camera = register_camera(
            session,
            district,
            school_rows[school_index[wearer.school_id]],
            f"BWC-{serial:05d}",
            profile="bwc-msc/1",
            actor=cli,
            now=now,
            wearer_badge=wearer.badge,
        )
        cameras.append((camera.id, school_index[wearer.school_id], w_index, camera.serial))
    for index, school in enumerate(school_rows):
        for _ in range(pooled_per_school):
            serial += 1
            camera = register_camera(
                session,
                district,
                school,
                f"BWC-{serial:05d}",
                profile="bwc-msc/1",
                actor=cli,
                now=now,
            )
            cameras.append((camera.id, index, -1, camera.serial))
    docks = []
    for index, school in enumerate(school_rows):
        for k in range(docks_per_school):
            dock, _token = create_dock(
                session, district, school, f"{school.code}-dock-{k + 1}", actor=cli, now=now
            )
            docks.append((dock.id, index, dock.pseudonym))
    people: dict[str, Person] = {}

    def user(username: str, grants: list[Grant], school_ids: tuple[int, ...]) -> User:
        secret = pyotp.random_base32()
        row = accounts.create_user(
            session,
            district,
            username=username,
            display_name=_name(rng),
            password=PASSWORD,
            grants=grants,
            actor=cli,
            now=now,
            totp_secret=secret,
        )
        people[username] = Person(username, secret, row.id, school_ids)
        return row

    supervisors = []
    for school in school_rows:
        row = user(f"supervisor-{school.code.lower()}", [Grant(Role.SUPERVISOR, school.id)], ())
        supervisors.append((row.id, row.pseudonym))
    records = []
    for k in range(n_records):
        row = user(f"records-{k + 1}", [Grant(Role.RECORDS)], ())
        records.append((row.id, row.pseudonym))
    three = tuple(s.id for s in school_rows[:3])
    user("bench-supervisor", [Grant(Role.SUPERVISOR, s) for s in three], three)
    row = user("bench-records", [Grant(Role.RECORDS)], ())
    records.append((row.id, row.pseudonym))
    user("bench-admin", [Grant(Role.ADMIN)], ())
    category_rows = [
        Category(district_id=district.id, name=name, retention_days=days, created_at=now)
        for name, days in CATEGORIES
    ]
    tag_rows = [Tag(district_id=district.id, name=name) for name in tag_names(n_tags)]
    session.add_all(category_rows + tag_rows)
    session.flush()
    log = ledger_sql.log_of(session, district.id)
    return World(
        settings=settings,
        district_id=district.id,
        log_id=log.id,
        created_at=now,
        schools=[s.id for s in school_rows],
        school_codes=[s.code for s in school_rows],
        wearers=wearers,
        cameras=cameras,
        docks=docks,
        supervisors=supervisors,
        records=records,
        categories=[(c.id, c.name) for c in category_rows],
        tags=[(t.id, t.name) for t in tag_rows],
        key_version="",
        wrapped_key_bytes=0,
        people=people,
    )


def history_window(end: datetime, days: int) -> tuple[datetime, datetime, datetime]:
    """(organisation created, first recording, last recording) for a history of `days`."""
    start = end - timedelta(days=days)
    return start - timedelta(days=7), start, end
