"""Demo data: two schools and one enrolled demo user per role, with printable logins.

Generated passwords and TOTP secrets are kept in $BWC_DATA_DIR/demo-logins.json (mode
0600) so that running `make run` again prints the same logins for the same data. They are
demo credentials for a local embedded install; production never runs `bwc demo`."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pyotp

from app.accounts import admin as accounts
from app.accounts import totp
from app.accounts.signin import find_user
from app.db import Database
from app.devices import find_camera, register_camera
from app.settings import Settings
from evidence.roles import Grant, Role

LOGINS_FILE = "demo-logins.json"
SCHOOLS = (("NHS", "Northgate High School"), ("SMS", "Southfield Middle School"))


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: str
    school: str | None
    badge: str | None = None


DEMO_USERS = (
    DemoUser("demo-wearer", "Sam Rivera (SRO)", "wearer", "NHS", "SRO-0001"),
    DemoUser("demo-supervisor", "Alex Morgan", "supervisor", "NHS"),
    DemoUser("demo-records", "Jordan Lee", "records", None),
    DemoUser("demo-oversight", "Casey Patel", "oversight", None),
    DemoUser("demo-admin", "Robin Okafor", "admin", None),
)


#: Demo cameras: one assigned to the demo wearer, one pooled, both at Northgate.
DEMO_CAMERAS = (("BWC-0002", "NHS", "SRO-0001"), ("BWC-0003", "NHS", None))


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    school: str | None
    password: str
    totp_secret: str


def _load(path: Path) -> dict[str, Login]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {item["username"]: Login(**item) for item in raw}


def _save(path: Path, logins: dict[str, Login]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump([asdict(login) for login in logins.values()], handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def seed(database: Database, data_dir: Path, *, now: datetime) -> list[Login]:
    """Create what is missing of the demo data; return every demo login."""
    path = data_dir / LOGINS_FILE
    logins = _load(path)
    with database.transaction() as session:
        district = accounts.only_district(session)
        schools = {}
        for code, name in SCHOOLS:
            school = accounts.find_school(session, district.id, code)
            if school is None:
                school = accounts.create_school(
                    session, district, code, name, actor=accounts.CLI_ACTOR, now=now
                )
            schools[code] = school
        for spec in DEMO_USERS:
            if find_user(session, spec.username) is not None:
                if spec.username not in logins:
                    raise RuntimeError(
                        f"{spec.username} exists but {path} is missing; its login cannot "
                        "be shown. Remove the data dir to start the demo afresh."
                    )
                continue
            login = Login(
                spec.username,
                spec.role,
                spec.school,
                password=secrets.token_urlsafe(12),
                totp_secret=totp.new_secret(),
            )
            school_id = schools[spec.school].id if spec.school else None
            accounts.create_user(
                session,
                district,
                username=spec.username,
                display_name=spec.display_name,
                password=login.password,
                grants=[Grant(Role(spec.role), school_id)],
                actor=accounts.CLI_ACTOR,
                now=now,
                totp_secret=login.totp_secret,
                badge=spec.badge,
            )
            logins[spec.username] = login
        for serial, school_code, badge in DEMO_CAMERAS:
            if find_camera(session, district.id, serial) is None:
                register_camera(
                    session,
                    district,
                    schools[school_code],
                    serial,
                    profile="bwc-msc/1",
                    actor=accounts.CLI_ACTOR,
                    now=now,
                    wearer_badge=badge,
                )
        # Written before the commit: a crash in between leaves the file, not users
        # whose passwords nobody knows.
        _save(path, logins)
    return [logins[spec.username] for spec in DEMO_USERS]


def current_code(data_dir: Path, username: str, *, now: datetime) -> str:
    """The current TOTP code of a demo user, so the demo can be tried without a phone."""
    login = _load(data_dir / LOGINS_FILE).get(username)
    if login is None:
        raise LookupError(f"{username} is not a demo user here; run `bwc demo` first")
    return str(pyotp.TOTP(login.totp_secret).at(now))


def describe(logins: list[Login], settings: Settings) -> str:
    lines = [
        "",
        f"BWC Evidence demo: http://{settings.host}:{settings.port}/",
        "",
        "Demo logins (add the TOTP secret to an authenticator app, or print the "
        "current code with `.venv/bin/bwc demo-code USERNAME`):",
        "",
        f"  {'username':<17} {'role':<11} {'school':<7} {'password':<18} TOTP secret",
    ]
    for login in logins:
        lines.append(
            f"  {login.username:<17} {login.role:<11} {login.school or '-':<7} "
            f"{login.password:<18} {login.totp_secret}"
        )
    lines.append("")
    return "\n".join(lines)
